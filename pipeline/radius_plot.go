package pipeline

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// seriesKind says how a series of the accuracy-versus-radius figure is drawn.
type seriesKind int

const (
	// sweepSeries is one value per radius of the sweep: a line through markers,
	// so that a sweep of a single radius still shows its points.
	sweepSeries seriesKind = iota
	// referenceSeries is a flat line (the clean accuracy, which does not depend
	// on the radius).
	referenceSeries
	// stepSeries is a post-step line (the smoothed classifier's exact curve).
	stepSeries
)

// series is one curve of the accuracy-versus-radius figure: its legend name, how
// it is drawn, and its points (radius, accuracy as a fraction of N).
type series struct {
	name string
	kind seriesKind
	pts  plotter.XYs
}

// radiusRange is the x range of the accuracy-versus-radius figure: from 0 (where
// certified accuracy meets clean accuracy) to the largest radius evaluated, with
// 5% room so the markers there are whole; 1 when every radius is 0.
func radiusRange(runs []RadiusRun) float64 {
	top := 0.0
	for _, run := range runs {
		top = math.Max(top, run.Radius)
	}
	if top == 0 {
		return 1
	}
	return 1.05 * top
}

// sortedRuns is the report's runs by increasing radius (a sweep is kept in the
// order given on the command line, which need not be sorted).
func (r *Report) sortedRuns() []RadiusRun {
	runs := slices.Clone(r.Runs())
	slices.SortStableFunc(runs, func(a, b RadiusRun) int {
		switch {
		case a.Radius < b.Radius:
			return -1
		case a.Radius > b.Radius:
			return 1
		}
		return 0
	})
	return runs
}

// radiusSeries is the data of the accuracy-versus-radius figure, read from the
// runs' summaries: the clean accuracy as a flat reference; the empirical accuracy
// at every radius where attacks ran; the certified accuracy of each method at every
// radius (all methods but randomized smoothing, whose certificate is of another
// classifier); and, when smoothing ran, the smoothed classifier's exact certified
// accuracy by L2 radius, from the samples of the first run (it does not depend on
// the sweep's radius), up to the figure's right edge xmax. Accuracies that are no
// number (a run of no samples) are left out.
func (r *Report) radiusSeries(xmax float64) []series {
	runs := r.sortedRuns()
	first := r.Runs()[0]
	var out []series
	if c := first.Summary.CleanAccuracy; finite(c) {
		out = append(out, series{name: "clean", kind: referenceSeries, pts: plotter.XYs{{X: 0, Y: c}, {X: xmax, Y: c}}})
	}

	var emp plotter.XYs
	for _, run := range runs {
		if a := run.Summary.EmpiricalAccuracy; a != nil && finite(*a) {
			emp = append(emp, plotter.XY{X: run.Radius, Y: *a})
		}
	}
	if len(emp) > 0 {
		name := "empirical"
		if len(r.Attacks) > 0 {
			name += " (" + strings.Join(r.Attacks, ", ") + ")"
		}
		out = append(out, series{name: name, kind: sweepSeries, pts: emp})
	}

	for _, m := range r.tableMethods() {
		var pts plotter.XYs
		for _, run := range runs {
			if a, ok := run.Summary.CertifiedAccuracy[m]; ok && finite(a) {
				pts = append(pts, plotter.XY{X: run.Radius, Y: a})
			}
		}
		if len(pts) > 0 {
			out = append(out, series{name: "certified: " + m, kind: sweepSeries, pts: pts})
		}
	}

	if first.Summary.SmoothingCurve != nil {
		name := "smoothed classifier, certified"
		if p := r.Smoothing; p != nil {
			name += fmt.Sprintf(" (σ = %g)", p.Sigma)
		}
		if r.Norm != L2 {
			name += ", at L2 radius"
		}
		out = append(out, series{name: name, kind: stepSeries, pts: smoothingSteps(first.Samples, xmax)})
	}
	return out
}

// finite reports whether an accuracy can be drawn: a run of no samples has
// accuracies 0/0, which are no point of the figure.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// normLabel names the radius of norm for an axis.
func normLabel(norm Norm) string {
	switch norm {
	case LInf:
		return "L∞ radius"
	case L2:
		return "L2 radius"
	case "":
		return "radius"
	}
	return string(norm) + " radius"
}

// RadiusPlot draws accuracy against the radius of the threat model, one curve per
// quantity of radiusSeries: certified accuracy per method and empirical accuracy
// at each radius of the run (markers joined by lines, sorted by radius), the clean
// accuracy as a dashed flat line, and the smoothed classifier's certified accuracy
// as a step curve when randomized smoothing ran. Certified accuracy is a lower
// bound and empirical accuracy an upper bound of the model's true robust accuracy
// at each radius, so the gap between them is what the verifiers leave open. The
// title names the model; the x axis the norm.
func (r *Report) RadiusPlot() (*plot.Plot, error) {
	runs := r.Runs()
	for _, run := range runs {
		if math.IsNaN(run.Radius) || math.IsInf(run.Radius, 0) || run.Radius < 0 {
			return nil, fmt.Errorf("radius plot: radius %g: want a finite value >= 0", run.Radius)
		}
	}
	xmax := radiusRange(runs)
	all := r.radiusSeries(xmax)

	p := plot.New()
	n := runs[0].Summary.N
	p.Title.Text = fmt.Sprintf("Accuracy vs %s: %s (%d samples)", normLabel(r.Norm), filepath.Base(r.Model), n)
	p.X.Label.Text = normLabel(r.Norm)
	p.Y.Label.Text = "accuracy"
	p.X.Min, p.X.Max = 0, xmax
	p.Y.Min, p.Y.Max = 0, 1
	p.Y.Tick.Marker = percentTicks()
	p.Add(plotter.NewGrid())

	swept := 0
	for _, s := range all {
		ps, thumbs, err := s.plotters(swept)
		if err != nil {
			return nil, fmt.Errorf("radius plot: %s: %w", s.name, err)
		}
		if s.kind == sweepSeries {
			swept++
		}
		p.Add(ps...)
		p.Legend.Add(s.name, thumbs...)
	}
	p.Legend.Top, p.Legend.Left = legendCorner(all, xmax)
	p.Legend.XOffs, p.Legend.YOffs = legendOffsets(p.Legend.Top, p.Legend.Left)
	// Room for the legend beyond 0%..100% (the ticks stop there), so that it
	// covers no curve: the clean accuracy often runs along 100%.
	room := 0.02 + legendRowHeight*float64(len(all))
	if p.Legend.Top {
		p.Y.Max = 1 + room
	} else {
		p.Y.Min = -room
	}
	return p, nil
}

// legendRowHeight is one legend row's height in accuracy units, on the
// CurvePlotHeight figure.
const legendRowHeight = 0.075

// percentTicks marks accuracy from 0 to 1 as 0% to 100%, labelled every 20%, as
// the tables print it.
func percentTicks() plot.ConstantTicks {
	var ticks plot.ConstantTicks
	for i := 0; i <= 10; i++ {
		t := plot.Tick{Value: float64(i) / 10}
		if i%2 == 0 {
			t.Label = fmt.Sprintf("%d%%", 10*i)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// plotters draws the series: a grey dashed line for the reference, a purple
// post-step line for the smoothing curve, and for the i-th swept series a line
// through markers of the i-th colour and shape of plotutil's palette. The
// thumbnails are its legend entry's.
func (s series) plotters(i int) ([]plot.Plotter, []plot.Thumbnailer, error) {
	switch s.kind {
	case referenceSeries, stepSeries:
		l, err := plotter.NewLine(s.pts)
		if err != nil {
			return nil, nil, err
		}
		if s.kind == referenceSeries {
			l.Color = color.Gray{Y: 90}
			l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
			l.Width = vg.Points(1.2)
		} else {
			l.StepStyle = plotter.PostStep
			l.Color = color.RGBA{R: 148, G: 103, B: 189, A: 255}
			l.Width = vg.Points(1.5)
		}
		return []plot.Plotter{l}, []plot.Thumbnailer{l}, nil
	}
	l, sc, err := plotter.NewLinePoints(s.pts)
	if err != nil {
		return nil, nil, err
	}
	c := plotutil.Color(i)
	l.Color, l.Width = c, vg.Points(1.5)
	sc.Color, sc.Shape, sc.Radius = c, plotutil.Shape(i), vg.Points(3.5)
	return []plot.Plotter{l, sc}, []plot.Thumbnailer{l, sc}, nil
}

// legendCorner picks the corner of the plot area whose quarter (left or right
// half, top or bottom 40%) holds the fewest points of the curves, sampled along
// each segment, so that the legend hides as little data as it can. Ties go to
// bottom left, where accuracy-versus-radius curves, which start high and fall,
// rarely pass.
func legendCorner(all []series, xmax float64) (top, left bool) {
	type corner struct{ top, left bool }
	count := map[corner]int{}
	add := func(x, y float64) {
		l := x < xmax/2
		switch {
		case y > 0.6:
			count[corner{true, l}]++
		case y < 0.4:
			count[corner{false, l}]++
		}
	}
	for _, s := range all {
		for i, p := range s.pts {
			add(p.X, p.Y)
			if i == 0 {
				continue
			}
			q := s.pts[i-1]
			for k := 1; k < 16; k++ {
				t := float64(k) / 16
				y := q.Y + t*(p.Y-q.Y)
				if s.kind == stepSeries {
					y = p.Y
				}
				add(q.X+t*(p.X-q.X), y)
			}
		}
	}
	best := corner{false, true}
	for _, c := range []corner{{false, false}, {true, true}, {true, false}} {
		if count[c] < count[best] {
			best = c
		}
	}
	return best.top, best.left
}

// legendOffsets moves the legend off the axes into the plot area.
func legendOffsets(top, left bool) (x, y vg.Length) {
	const pad = 4
	x, y = vg.Points(pad), vg.Points(pad)
	if !left {
		x = -x
	}
	if top {
		y = -y
	}
	return x, y
}

// WriteRadiusPNG writes RadiusPlot as a PNG of CurvePlotWidth by CurvePlotHeight
// (576 by 384 pixels).
func (r *Report) WriteRadiusPNG(w io.Writer) error {
	p, err := r.RadiusPlot()
	if err != nil {
		return err
	}
	return writePNG(w, p, "radius plot")
}
