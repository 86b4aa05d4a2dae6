package pipeline

import (
	"fmt"
	"image/color"
	"io"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// The size of the curve's PNG: 6 by 4 inches at gonum/plot's 96 dpi, 576 by 384
// pixels.
const (
	CurvePlotWidth  = 6 * vg.Inch
	CurvePlotHeight = 4 * vg.Inch
)

// SmoothingPlot draws the certified accuracy of the smoothed classifier against
// the L2 radius, as Figure 1 of Cohen, Rosenfeld & Kolter (2019): the exact step
// function r ↦ #{samples certified at r}/N, which falls by 1/N just past each
// sample's certified radius, with the summary's curve points (CurveStep apart)
// marked. The title names σ and the model. It is an error when smoothing did not run.
func (r *Report) SmoothingPlot() (*plot.Plot, error) {
	if r.Smoothing == nil || r.Summary.SmoothingCurve == nil {
		return nil, fmt.Errorf("plot: randomized smoothing did not run")
	}
	n := len(r.Samples)
	curve := r.Summary.SmoothingCurve
	xmax := curve[len(curve)-1].Radius
	line, err := plotter.NewLine(smoothingSteps(r.Samples, xmax))
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	line.StepStyle = plotter.PostStep
	line.Width = vg.Points(1.5)
	line.Color = color.RGBA{R: 31, G: 119, B: 180, A: 255}

	marks := make(plotter.XYs, len(curve))
	for i, p := range curve {
		marks[i] = plotter.XY{X: p.Radius, Y: p.Accuracy}
	}
	sc, err := plotter.NewScatter(marks)
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	sc.Color = line.Color

	p := plot.New()
	sp := r.Smoothing
	p.Title.Text = fmt.Sprintf("Randomized smoothing, σ = %g: %s\n(%d samples, n0 = %d, n = %d, α = %g)",
		sp.Sigma, filepath.Base(r.Model), n, sp.N0, sp.N, sp.Alpha)
	p.X.Label.Text = "L2 radius"
	p.Y.Label.Text = "certified accuracy"
	p.X.Min, p.X.Max = 0, xmax
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid(), line, sc)
	return p, nil
}

// smoothingSteps is the exact certified accuracy of the smoothed classifier,
// r ↦ #{samples certified at r}/N, on [0, xmax], as the points of a post-step
// line: the value of point i holds on (x_i, x_{i+1}], so that at a sample's
// certified radius the sample still counts (certified at r means radius >= r)
// and just past it the curve falls by 1/N. The last point is at xmax.
func smoothingSteps(samples []Sample, xmax float64) plotter.XYs {
	n := len(samples)
	var radii []float64
	for i := range samples {
		if smoothCertifiedAt(&samples[i], 0) {
			radii = append(radii, samples[i].Smoothing.Radius)
		}
	}
	sort.Float64s(radii)
	steps := plotter.XYs{{X: 0, Y: curveFrac(len(radii), n)}}
	for i, rad := range radii {
		if rad > xmax {
			break
		}
		steps = append(steps, plotter.XY{X: rad, Y: curveFrac(len(radii)-1-i, n)})
	}
	return append(steps, plotter.XY{X: xmax, Y: steps[len(steps)-1].Y})
}

func curveFrac(c, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(c) / float64(n)
}

// WriteSmoothingPNG writes SmoothingPlot as a PNG of CurvePlotWidth by
// CurvePlotHeight.
func (r *Report) WriteSmoothingPNG(w io.Writer) error {
	p, err := r.SmoothingPlot()
	if err != nil {
		return err
	}
	return writePNG(w, p, "plot")
}

// writePNG draws p as a PNG of CurvePlotWidth by CurvePlotHeight into w; what
// names the figure in errors.
func writePNG(w io.Writer, p *plot.Plot, what string) error {
	wt, err := p.WriterTo(CurvePlotWidth, CurvePlotHeight, "png")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := wt.WriteTo(w); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
