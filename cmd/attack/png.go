package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/nets"
)

// gridGap is the white margin between the images of the grid, in PNG pixels.
const gridGap = 2

// imageShape reads a per-sample shape as an image: [1,H,W] (grey) or [3,H,W] (RGB).
func imageShape(shape []int) (c, h, w int, err error) {
	if len(shape) != 3 || (shape[0] != 1 && shape[0] != 3) || shape[1] < 1 || shape[2] < 1 {
		return 0, 0, 0, fmt.Errorf("the grid needs image inputs [1,H,W] or [3,H,W]; the samples have shape %s", cli.FmtShape(shape))
	}
	return shape[0], shape[1], shape[2], nil
}

// gridSize is the size of the PNG for rows samples of H×W at scale s: three
// images a row (original, perturbation, adversarial), gridGap between and around.
func gridSize(rows, h, w, s int) (width, height int) {
	return 3*w*s + 4*gridGap, rows*h*s + (rows+1)*gridGap
}

// writeGrid writes the first rows samples of x and adv as a PNG: per sample, the
// original, the perturbation adv − x and the adversarial example, each pixel drawn
// s×s. Values map [lo,hi] to black..white; the perturbation maps [−m, m] to
// black..white with m = max|adv − x| over the sample (grey = no change), so even a
// small perturbation is visible — compare magnitudes with the printed distances.
func writeGrid(path string, x, adv *nets.Tensor, rows, s int, lo, hi float64) error {
	c, h, w, err := imageShape(x.Shape[1:])
	if err != nil {
		return err
	}
	width, height := gridSize(rows, h, w, s)
	img := image.NewNRGBA(image.Rect(0, 0, width, height))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	per := c * h * w
	level := func(v, a, b float64) uint8 {
		t := (v - a) / (b - a)
		return uint8(math.Round(255 * min(max(t, 0), 1)))
	}
	draw := func(row, col int, pix func(ch, i, j int) uint8) {
		x0 := gridGap + col*(w*s+gridGap)
		y0 := gridGap + row*(h*s+gridGap)
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				var rgb [3]uint8
				for k := range rgb {
					rgb[k] = pix(min(k, c-1), i, j)
				}
				col := color.NRGBA{R: rgb[0], G: rgb[1], B: rgb[2], A: 255}
				for di := 0; di < s; di++ {
					for dj := 0; dj < s; dj++ {
						img.SetNRGBA(x0+j*s+dj, y0+i*s+di, col)
					}
				}
			}
		}
	}
	for r := 0; r < rows; r++ {
		xr, ar := x.Data[r*per:(r+1)*per], adv.Data[r*per:(r+1)*per]
		m := 0.0
		for k := range xr {
			m = math.Max(m, math.Abs(ar[k]-xr[k]))
		}
		at := func(v []float64) func(ch, i, j int) uint8 {
			return func(ch, i, j int) uint8 { return level(v[(ch*h+i)*w+j], lo, hi) }
		}
		draw(r, 0, at(xr))
		draw(r, 1, func(ch, i, j int) uint8 {
			if m == 0 {
				return 128
			}
			k := (ch*h+i)*w + j
			return level(ar[k]-xr[k], -m, m)
		})
		draw(r, 2, at(ar))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
