package defenses

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
)

// JPEG is JPEG compression as an input transformation defense (Dziugaite,
// Ghahramani & Roy, "A study of the effect of JPG compression on adversarial
// images", 2016; Guo et al., "Countering Adversarial Images using Input
// Transformations", ICLR 2018; Das et al., "Keeping the Bad Guys Out", 2017): each
// image is rounded to 8 bits, v = round(255·clip(x, 0, 1)), encoded with the
// standard library's image/jpeg at Quality (a grey JPEG for one channel, a YCbCr
// 4:2:0 one for three), decoded, and mapped back to [0, 1] as v'/255. Lower quality
// quantises the DCT coefficients more coarsely and removes more high-frequency
// detail (and perturbation); quality 100 still moves pixels by a few levels (the
// colour conversion and the DCT round).
//
// t is piecewise constant in x (its input is rounded to 8 bits first, then the
// codec is deterministic), so its derivative is 0 almost everywhere: a wrapper
// around it has zero naive gradient, and its adaptive target is BPDA with the
// identity backward pass (Athalye, Carlini & Wagner, ICML 2018, Section 4.1.1; their
// Section 5 breaks Guo et al.'s JPEG and bit-depth defenses this way).
//
// Quality must be from 1 to 100.
type JPEG struct {
	Quality int
}

// defaultJPEGQuality is the quality of a "jpeg" spec that gives none: image/jpeg's
// own default.
const defaultJPEGQuality = jpeg.DefaultQuality

// Name implements Transform.
func (JPEG) Name() string { return "jpeg" }

func (j JPEG) check() error {
	if j.Quality < 1 || j.Quality > 100 {
		return fmt.Errorf("jpeg: quality %d: want 1 to 100", j.Quality)
	}
	return nil
}

// jpegLevel rounds a value in [0, 1] (clipped) to an 8-bit level.
func jpegLevel(v float64) uint8 {
	return uint8(math.Round(min(max(v, 0), 1) * 255))
}

// Apply implements Transform for c = 1 (grey) or 3 (RGB) channels.
func (j JPEG) Apply(dst, src []float64, c, h, w int) error {
	if err := j.check(); err != nil {
		return err
	}
	if len(src) != c*h*w || len(dst) != c*h*w {
		return fmt.Errorf("jpeg: %d and %d values for a %d×%d×%d image", len(dst), len(src), c, h, w)
	}
	if c != 1 && c != 3 {
		return fmt.Errorf("jpeg: %d channels; want 1 (grey) or 3 (RGB)", c)
	}
	for i, v := range src {
		if math.IsNaN(v) {
			return fmt.Errorf("jpeg: NaN input at value %d", i)
		}
	}
	rect := image.Rect(0, 0, w, h)
	var img image.Image
	if c == 1 {
		g := image.NewGray(rect)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				g.Pix[y*g.Stride+x] = jpegLevel(src[y*w+x])
			}
		}
		img = g
	} else {
		rgb := image.NewRGBA(rect)
		p := h * w
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				o := y*rgb.Stride + 4*x
				rgb.Pix[o] = jpegLevel(src[y*w+x])
				rgb.Pix[o+1] = jpegLevel(src[p+y*w+x])
				rgb.Pix[o+2] = jpegLevel(src[2*p+y*w+x])
				rgb.Pix[o+3] = 255
			}
		}
		img = rgb
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: j.Quality}); err != nil {
		return fmt.Errorf("jpeg: encode: %w", err)
	}
	dec, err := jpeg.Decode(&buf)
	if err != nil {
		return fmt.Errorf("jpeg: decode: %w", err)
	}
	if b := dec.Bounds(); b.Dx() != w || b.Dy() != h {
		return fmt.Errorf("jpeg: decoded %v for a %d×%d image", b, w, h)
	}
	org := dec.Bounds().Min
	switch d := dec.(type) {
	case *image.Gray:
		if c != 1 {
			return fmt.Errorf("jpeg: decoded a grey image for %d channels", c)
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				dst[y*w+x] = float64(d.Pix[y*d.Stride+x]) / 255
			}
		}
	default:
		p := h * w
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				px := color.RGBAModel.Convert(dec.At(org.X+x, org.Y+y)).(color.RGBA)
				if c == 1 {
					dst[y*w+x] = float64(color.GrayModel.Convert(px).(color.Gray).Y) / 255
					continue
				}
				dst[y*w+x] = float64(px.R) / 255
				dst[p+y*w+x] = float64(px.G) / 255
				dst[2*p+y*w+x] = float64(px.B) / 255
			}
		}
	}
	return nil
}

// buildJPEG makes a "jpeg" wrapper: {"quality": 1..100 (default 75)}.
func buildJPEG(l *Loader, s Spec) (Model, error) {
	p := struct {
		Quality int `json:"quality"`
	}{Quality: defaultJPEGQuality}
	if err := l.Params(s, &p); err != nil {
		return nil, err
	}
	j := JPEG{Quality: p.Quality}
	if err := j.check(); err != nil {
		return nil, err
	}
	return buildTransformed(l, s, j)
}
