package pipeline

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotter"
)

// radiusSweepReport is a hand-built sweep over three radii, given out of order
// (0.03, 0.01, 0.02), of 4 samples with methods ibp and crown and attack pgd. The
// summaries are set by hand to values a real run could not confuse: each method
// and the empirical accuracy fall with the radius, differently.
func radiusSweepReport() *Report {
	f := func(v float64) *float64 { return &v }
	zero := 0
	run := func(radius float64, emp, ibp, crown float64) RadiusRun {
		return RadiusRun{Radius: radius, Samples: make([]Sample, 4), Summary: Summary{
			N: 4, CleanAccuracy: 0.75, EmpiricalAccuracy: f(emp), FalsifiedCertificates: &zero,
			CertifiedAccuracy: map[string]float64{"ibp": ibp, "crown": crown}}}
	}
	r := &Report{Model: "models/mnist <small>.onnx", Norm: LInf, Methods: []string{"ibp", "crown"}, Attacks: []string{"pgd"},
		Sweep: []RadiusRun{run(0.03, 0.25, 0, 0.25), run(0.01, 0.75, 0.5, 0.75), run(0.02, 0.5, 0.25, 0.5)}}
	r.Radius, r.Samples, r.Summary = r.Sweep[0].Radius, r.Sweep[0].Samples, r.Sweep[0].Summary
	return r
}

func seriesByName(all []series) map[string]series {
	m := map[string]series{}
	for _, s := range all {
		m[s.name] = s
	}
	return m
}

func TestRadiusSeries(t *testing.T) {
	r := radiusSweepReport()
	xmax := radiusRange(r.Runs())
	if math.Abs(xmax-0.0315) > 1e-12 {
		t.Errorf("x range to %v, want 1.05 × 0.03", xmax)
	}
	got := seriesByName(r.radiusSeries(xmax))
	want := map[string]plotter.XYs{
		"clean":            {{X: 0, Y: 0.75}, {X: xmax, Y: 0.75}},
		"empirical (pgd)":  {{X: 0.01, Y: 0.75}, {X: 0.02, Y: 0.5}, {X: 0.03, Y: 0.25}},
		"certified: ibp":   {{X: 0.01, Y: 0.5}, {X: 0.02, Y: 0.25}, {X: 0.03, Y: 0}},
		"certified: crown": {{X: 0.01, Y: 0.75}, {X: 0.02, Y: 0.5}, {X: 0.03, Y: 0.25}},
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want the %d of %v", keys(got), len(want), want)
	}
	for name, pts := range want {
		s, ok := got[name]
		if !ok {
			t.Errorf("no series %q", name)
			continue
		}
		if !sameXYs(s.pts, pts) {
			t.Errorf("series %q = %v, want %v", name, s.pts, pts)
		}
	}
	// And against the summaries themselves: every run's value is on its curve.
	for _, run := range r.Sweep {
		for m, acc := range run.Summary.CertifiedAccuracy {
			if !hasPoint(got["certified: "+m].pts, run.Radius, acc) {
				t.Errorf("certified: %s lacks (%v, %v)", m, run.Radius, acc)
			}
		}
		if !hasPoint(got["empirical (pgd)"].pts, run.Radius, *run.Summary.EmpiricalAccuracy) {
			t.Errorf("empirical lacks radius %v", run.Radius)
		}
	}
}

func keys(m map[string]series) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sameXYs(a, b plotter.XYs) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i].X-b[i].X) > 1e-12 || a[i].Y != b[i].Y {
			return false
		}
	}
	return true
}

func hasPoint(pts plotter.XYs, x, y float64) bool {
	for _, p := range pts {
		if p.X == x && p.Y == y {
			return true
		}
	}
	return false
}

// stepAt evaluates a post-step series at x: the value of the last point left of
// x (the value of point i holds on (x_i, x_{i+1}]), the first point's at x = 0.
func stepAt(pts plotter.XYs, x float64) float64 {
	v := pts[0].Y
	for _, p := range pts[1:] {
		if p.X < x {
			v = p.Y
		}
	}
	return v
}

// The smoothed classifier's curve matches the summary's curve at every radius of
// it inside the figure, and a count of the samples done here; the smoothing method
// has no per-radius line of its own.
func TestRadiusSeriesSmoothing(t *testing.T) {
	var samples []Sample
	for i := range 10 {
		// Sample i is certified at L2 radius 0.1·i, but 3 and 7 are abstentions.
		samples = append(samples, Sample{Index: i, Label: 1, Predicted: 1, Certified: map[string]bool{"smoothing": true},
			Smoothing: &Smoothing{Prediction: 1, Radius: 0.1 * float64(i), Abstain: i == 3 || i == 7}})
	}
	r := &Report{Model: "m.onnx", Norm: L2, Methods: []string{"smoothing"}, Samples: samples,
		Smoothing: &SmoothingParams{Method: "smoothing", Sigma: 0.25, N0: 10, N: 100, Alpha: 0.001}}
	summarize(r)
	r.Sweep = []RadiusRun{{Radius: 0.5, Samples: samples, Summary: r.Summary}, {Radius: 1, Samples: samples, Summary: r.Summary}}
	xmax := radiusRange(r.Runs())
	all := seriesByName(r.radiusSeries(xmax))
	if _, ok := all["certified: smoothing"]; ok {
		t.Error("the smoothing method has a per-radius line; it should be the smoothed classifier's curve")
	}
	s, ok := all["smoothed classifier, certified (σ = 0.25)"]
	if !ok || s.kind != stepSeries {
		t.Fatalf("no smoothing step series in %v", keys(all))
	}
	checked := 0
	for _, p := range r.Summary.SmoothingCurve {
		if p.Radius > xmax {
			continue
		}
		want := 0
		for i := range 10 {
			if i != 3 && i != 7 && 0.1*float64(i) >= p.Radius {
				want++
			}
		}
		if got := stepAt(s.pts, p.Radius); got != p.Accuracy || got != float64(want)/10 {
			t.Errorf("curve at %v = %v, want summary %v = %d/10", p.Radius, got, p.Accuracy, want)
		}
		checked++
	}
	if checked != 5 { // 0, 0.25, 0.5, 0.75, 1 ≤ 1.05
		t.Errorf("checked %d curve points, want 5", checked)
	}
	if last := s.pts[len(s.pts)-1]; last.X != xmax {
		t.Errorf("curve ends at %v, want the figure's edge %v", last.X, xmax)
	}
}

func TestRadiusPlot(t *testing.T) {
	r := radiusSweepReport()
	p, err := r.RadiusPlot()
	if err != nil {
		t.Fatal(err)
	}
	if p.X.Label.Text != "L∞ radius" || p.Y.Label.Text != "accuracy" || !strings.Contains(p.Title.Text, "mnist <small>.onnx") {
		t.Errorf("title %q, axes %q, %q", p.Title.Text, p.X.Label.Text, p.Y.Label.Text)
	}
	var b bytes.Buffer
	if err := r.WriteRadiusPNG(&b); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got.X != 576 || got.Y != 384 {
		t.Errorf("PNG of %v pixels, want 576x384", got)
	}
	if c := distinctColors(img, 10); c < 5 {
		t.Errorf("PNG has %d colours: want the 4 curves and the text", c)
	}
}

// A single radius is drawn as markers (a line needs two points): each swept
// series has a scatter of its one point.
func TestRadiusPlotSingleRadius(t *testing.T) {
	emp := 0.5
	r := &Report{Model: "m.onnx", Norm: L2, Radius: 0.5, Methods: []string{"crown"}, Attacks: []string{"pgd"},
		Summary: Summary{N: 2, CleanAccuracy: 1, EmpiricalAccuracy: &emp, CertifiedAccuracy: map[string]float64{"crown": 0.5}}}
	p, err := r.RadiusPlot()
	if err != nil {
		t.Fatal(err)
	}
	scatters := 0
	for i, s := range r.radiusSeries(p.X.Max) {
		ps, _, err := s.plotters(i)
		if err != nil {
			t.Fatal(err)
		}
		for _, pl := range ps {
			if sc, ok := pl.(*plotter.Scatter); ok {
				scatters++
				if len(sc.XYs) != 1 || sc.XYs[0].X != 0.5 || sc.XYs[0].Y != 0.5 {
					t.Errorf("%s: scatter %v, want the point (0.5, 0.5)", s.name, sc.XYs)
				}
			}
		}
	}
	if scatters != 2 || p.X.Label.Text != "L2 radius" || p.X.Max <= 0.5 {
		t.Errorf("%d scatters (want 2: empirical, crown), x label %q, x max %v", scatters, p.X.Label.Text, p.X.Max)
	}
	r.Radius = math.NaN()
	if _, err := r.RadiusPlot(); err == nil {
		t.Error("a NaN radius should be an error")
	}
}

// distinctColors counts the colours of img, stopping at limit.
func distinctColors(img image.Image, limit int) int {
	seen := map[color.RGBA64]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[color.RGBA64{R: uint16(r), G: uint16(g), B: uint16(bl), A: uint16(a)}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}
