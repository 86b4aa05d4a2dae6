package pipeline

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// fakeSmoothed is a SmoothedMethod whose record is f(q); certified as the real one
// decides: the label predicted with a radius of at least the run's radius.
type fakeSmoothed struct {
	name string
	f    func(q Query) Smoothing
}

func (m fakeSmoothed) Name() string { return m.name }
func (m fakeSmoothed) Smoothing() SmoothingParams {
	return SmoothingParams{Sigma: 0.5, N0: 10, N: 100, Alpha: 0.01}
}
func (m fakeSmoothed) Certify(_ context.Context, _ nets.Classifier, q Query) (Certificate, error) {
	rec := m.f(q)
	ok := !rec.Abstain && rec.Prediction == q.Label && rec.Radius >= q.Region.Radius
	return Certificate{Certified: ok, Margin: math.Inf(-1), Smoothing: &rec}, nil
}

// fakeRecord: abstain on every seventh sample; predict the label except on every
// fourth; radius 0.1·(index mod 13); the audit "changes" the prediction of every
// eleventh certified sample and abstains on every ninth.
func fakeRecord(q Query) Smoothing {
	if q.Index%7 == 6 {
		return Smoothing{Prediction: -1, Abstain: true}
	}
	rec := Smoothing{Prediction: q.Label, Radius: 0.1 * float64(q.Index%13)}
	if q.Index%4 == 1 {
		rec.Prediction = (q.Label + 1) % 3
	}
	if rec.Prediction == q.Label && rec.Radius >= q.Region.Radius {
		rec.Attack = &SmoothingAttack{Distance: rec.Radius, Prediction: rec.Prediction}
		switch {
		case q.Index%11 == 0:
			rec.Attack.Prediction, rec.Attack.Changed = (q.Label+2)%3, true
		case q.Index%9 == 0:
			rec.Attack.Prediction, rec.Attack.Abstain = -1, true
		}
	}
	return rec
}

func TestSmoothedMethodRun(t *testing.T) {
	m, x, y := setup(4)
	// L∞ radius 0.5: the corner attack (optimal on the linear model) breaks many
	// samples; smoothing compares its L2 radii with 0.5 as the issue asks.
	const radius = 0.5
	sm := fakeSmoothed{"smoothing", fakeRecord}
	atk := cornerAttack{name: "corner", radius: radius, domain: Domain{0, 1}}
	rep, err := Run(context.Background(), Config{Model: m, X: x, Labels: y, Radius: radius, Norm: LInf, Domain: Domain{0, 1},
		Seed: 5, Methods: []Method{sm, exactMethod{"exact"}}, Attacks: []Attack{atk}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Smoothing == nil || *rep.Smoothing != (SmoothingParams{Method: "smoothing", Sigma: 0.5, N0: 10, N: 100, Alpha: 0.01}) {
		t.Errorf("report smoothing %+v", rep.Smoothing)
	}
	certified, misclassifiedCertified, broken, attacked, changed, abstained := 0, 0, 0, 0, 0, 0
	for _, s := range rep.Samples {
		if s.Smoothing == nil {
			t.Fatalf("sample %d (correct %v): no smoothing record; smoothing runs on every sample", s.Index, s.Correct())
		}
		q := Query{Index: s.Index, Label: s.Label, Region: Region{Radius: radius}}
		want := fakeRecord(q)
		if got := *s.Smoothing; got.Prediction != want.Prediction || got.Abstain != want.Abstain || got.Radius != want.Radius {
			t.Errorf("sample %d: record %+v, want %+v", s.Index, got, want)
		}
		ok := !want.Abstain && want.Prediction == s.Label && want.Radius >= radius
		if s.Certified["smoothing"] != ok {
			t.Errorf("sample %d: certified.smoothing %v, want %v", s.Index, s.Certified["smoothing"], ok)
		}
		if ok {
			certified++
			if !s.Correct() {
				misclassifiedCertified++
			}
		}
		if a := s.Smoothing.Attack; a != nil {
			attacked++
			if a.Changed {
				changed++
			}
			if a.Abstain {
				abstained++
			}
		}
		if ok && s.Attacks["corner"] {
			broken++ // an adversarial example of the model, not of g
		}
		if len(s.Falsified) > 0 {
			t.Errorf("sample %d: falsified %v", s.Index, s.Falsified)
		}
	}
	if f := rep.Summary.FalsifiedCertificates; f == nil || *f != 0 {
		t.Errorf("falsified certificates %v, want 0", f)
	}
	if misclassifiedCertified == 0 || broken == 0 || changed == 0 || abstained == 0 {
		t.Fatalf("test data degenerate: %d certified samples the model misclassifies, %d the attack broke, %d changed, %d abstained", misclassifiedCertified, broken, changed, abstained)
	}
	if got := rep.Summary.CertifiedAccuracy["smoothing"]; got != float64(certified)/float64(len(y)) {
		t.Errorf("certified accuracy %v, want %d/%d", got, certified, len(y))
	}
	if got := rep.Summary.SmoothingAudit; got == nil || *got != (SmoothingAuditSummary{Attacked: attacked, Changed: changed, Abstained: abstained, Alpha: 0.01}) {
		t.Errorf("audit summary %+v, want %d attacked, %d changed, %d abstained", got, attacked, changed, abstained)
	}
	// The curve at radius r counts the samples with a correct prediction and radius ≥ r.
	for _, p := range rep.Summary.SmoothingCurve {
		c := 0
		for i := range x.Shape[0] {
			rec := fakeRecord(Query{Index: i, Label: y[i], Region: Region{Radius: radius}})
			if !rec.Abstain && rec.Prediction == y[i] && rec.Radius >= p.Radius {
				c++
			}
		}
		if p.Accuracy != float64(c)/float64(len(y)) {
			t.Errorf("curve at %g: %v, want %d/%d", p.Radius, p.Accuracy, c, len(y))
		}
	}

	// Tables: one SMOOTHING column (the record), the audit rows and the curve.
	var b bytes.Buffer
	if err := rep.WriteTables(&b, true); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	header := out[:strings.Index(out, "\n├")]
	if strings.Count(header, "SMOOTHING") != 1 || !strings.Contains(header, "EXACT") {
		t.Errorf("per-sample header:\n%s", header)
	}
	for _, s := range []string{"certified accuracy: smoothing", "smoothing audit: prediction changed", strconv.Itoa(changed) + " of " + strconv.Itoa(attacked) + " certified",
		"L2 RADIUS", "σ = 0.5, n0 = 10, n = 100, α = 0.01"} {
		if !strings.Contains(out, s) {
			t.Errorf("tables lack %q:\n%s", s, out)
		}
	}

	// The JSON has the fields, and decodes to the same report.
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"smoothing":{"method":"smoothing"`, `"smoothing_curve":[{"radius":0,"accuracy":`, `"smoothing_audit":{"attacked":`, `"attack":{"distance":`} {
		if !bytes.Contains(raw, []byte(s)) {
			t.Errorf("JSON lacks %s", s)
		}
	}
}

func TestTwoSmoothedMethods(t *testing.T) {
	m, x, y := setup(1)
	_, err := Run(context.Background(), Config{Model: m, X: x, Labels: y, Norm: L2, Domain: Domain{0, 1},
		Methods: []Method{fakeSmoothed{"s1", fakeRecord}, fakeSmoothed{"s2", fakeRecord}}})
	if err == nil || !strings.Contains(err.Error(), `two randomized-smoothing methods, "s1" and "s2"`) {
		t.Errorf("error %v", err)
	}
}

func TestSmoothingCurve(t *testing.T) {
	rec := func(label, pred int, abstain bool, r float64) Sample {
		return Sample{Label: label, Smoothing: &Smoothing{Prediction: pred, Abstain: abstain, Radius: r}}
	}
	tests := []struct {
		name    string
		samples []Sample
		radii   []float64 // want
		acc     []float64 // want
	}{
		{"none certified", []Sample{{Label: 1}, rec(1, -1, true, 0), rec(2, 1, false, 0.7)},
			[]float64{0, 0.25, 0.5, 0.75, 1, 1.25, 1.5}, []float64{0, 0, 0, 0, 0, 0, 0}},
		{"Table 1 like", []Sample{rec(0, 0, false, 0.3), rec(1, 1, false, 0.25), rec(2, 2, false, 0.1), rec(3, 3, false, 1.9),
			rec(4, 5, false, 2.5), rec(5, -1, true, 0), {Label: 6}, rec(7, 7, false, 0.75)},
			[]float64{0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2},
			[]float64{5. / 8, 4. / 8, 2. / 8, 2. / 8, 1. / 8, 1. / 8, 1. / 8, 1. / 8, 0}},
		{"radius on the grid", []Sample{rec(0, 0, false, 2)}, []float64{0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25},
			[]float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
	}
	for _, tc := range tests {
		radii := CurveRadii(tc.samples)
		curve := SmoothingCurve(tc.samples, radii)
		if len(curve) != len(tc.radii) {
			t.Errorf("%s: radii %v, want %v", tc.name, radii, tc.radii)
			continue
		}
		for i, p := range curve {
			if p.Radius != tc.radii[i] || p.Accuracy != tc.acc[i] {
				t.Errorf("%s: point %d is %+v, want {%v %v}", tc.name, i, p, tc.radii[i], tc.acc[i])
			}
		}
	}
}

func TestSmoothingFiles(t *testing.T) {
	var samples []Sample
	for i := range 20 {
		samples = append(samples, Sample{Index: i, Label: i % 3, Smoothing: &Smoothing{Prediction: i % 3, Radius: 0.07 * float64(i)}})
	}
	rep := &Report{Model: "dir/model.onnx", Methods: []string{"smoothing"}, Samples: samples,
		Smoothing: &SmoothingParams{Method: "smoothing", Sigma: 0.5, N0: 100, N: 1000, Alpha: 0.001}}
	summarize(rep)

	var b bytes.Buffer
	if err := rep.WriteSmoothingCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(rep.Summary.SmoothingCurve)+1 || strings.Join(rows[0], ",") != "radius,certified_accuracy" {
		t.Fatalf("CSV %v", rows)
	}
	for i, p := range rep.Summary.SmoothingCurve {
		r, err1 := strconv.ParseFloat(rows[i+1][0], 64)
		a, err2 := strconv.ParseFloat(rows[i+1][1], 64)
		// Radius 0.07·i ≥ r for i ≥ r/0.07: 20 − ceil(r/0.07) samples, computed
		// apart from the curve code.
		want := 0
		for j := range 20 {
			if 0.07*float64(j) >= p.Radius {
				want++
			}
		}
		if err1 != nil || err2 != nil || r != p.Radius || a != p.Accuracy || a != float64(want)/20 {
			t.Errorf("CSV row %v: want %v,%v (%d/20)", rows[i+1], p.Radius, p.Accuracy, want)
		}
	}

	b.Reset()
	if err := rep.WriteSmoothingPNG(&b); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got.X != 576 || got.Y != 384 {
		t.Errorf("PNG of %v pixels, want 576x384", got)
	}
	p, err := rep.SmoothingPlot()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Title.Text, "σ = 0.5") || !strings.Contains(p.Title.Text, "model.onnx") || p.X.Label.Text != "L2 radius" || p.Y.Label.Text != "certified accuracy" {
		t.Errorf("plot title %q, axes %q, %q", p.Title.Text, p.X.Label.Text, p.Y.Label.Text)
	}

	none := &Report{Samples: samples}
	summarize(none)
	if none.Summary.SmoothingCurve != nil || none.WriteSmoothingCSV(&b) == nil || none.WriteSmoothingPNG(&b) == nil {
		t.Errorf("without smoothing: curve %v, and the files should be errors", none.Summary.SmoothingCurve)
	}
}
