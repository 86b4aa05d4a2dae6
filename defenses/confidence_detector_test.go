package defenses

import (
	"math"
	"testing"

	"github.com/certify-dev/certify/nets"
)

func TestConfidenceDetectorLogits(t *testing.T) {
	g := testCNN(t)
	x, _ := testMNIST(t, 0, 40)
	z, err := g.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	// τ at the median max-probability: about half the rows rejected.
	msp := make([]float64, 40)
	for i := range msp {
		row := z.Data[i*10 : (i+1)*10]
		m, sum := math.Inf(-1), 0.0
		for _, v := range row {
			m = math.Max(m, v)
		}
		for _, v := range row {
			sum += math.Exp(v - m)
		}
		msp[i] = 1 / sum
	}
	tau := 0.999
	d, err := NewConfidenceDetector(g, tau)
	if err != nil {
		t.Fatal(err)
	}
	if d.Reject() != 10 {
		t.Fatalf("Reject %d, want 10", d.Reject())
	}
	zr, err := d.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	pred, rejected := zr.Argmax(), 0
	for i := range msp {
		m := math.Inf(-1)
		for j := 0; j < 10; j++ {
			m = math.Max(m, z.Data[i*10+j])
			if zr.Data[i*11+j] != z.Data[i*10+j] {
				t.Fatalf("row %d: class column %d changed", i, j)
			}
		}
		if want := m + tau - msp[i]; math.Abs(zr.Data[i*11+10]-want) > 1e-12 {
			t.Errorf("row %d: reject column %v, want %v", i, zr.Data[i*11+10], want)
		}
		if (pred[i] == 10) != (msp[i] < tau) {
			t.Errorf("row %d: max probability %v, τ %v, argmax %d", i, msp[i], tau, pred[i])
		}
		if pred[i] == 10 {
			rejected++
		}
	}
	if rejected == 0 || rejected == 40 {
		t.Errorf("%d of 40 rejected at τ = %v: the test wants both kinds", rejected, tau)
	}
}

func TestConfidenceDetectorGradient(t *testing.T) {
	g := testCNN(t)
	x, y := testMNIST(t, 100, 106)
	// τ = 1: every row has s > 0 and the reject column carries the detector's
	// gradient; τ = 0.5: most rows are kept.
	for _, tau := range []float64{1, 0.5} {
		d, err := NewConfidenceDetector(g, tau)
		if err != nil {
			t.Fatal(err)
		}
		for _, loss := range []nets.Loss{nets.CrossEntropy{}, EvasionLoss{Reject: 10}} {
			detDirectional(t, d, x, y, loss, 11, 1e-5)
		}
	}
	// The detector-aware target is the detector with the evasion loss.
	d, _ := NewConfidenceDetector(g, 0.9)
	at, err := d.AdaptiveTarget()
	if err != nil || at.Name != "detector-aware" || at.Model != nets.Differentiable(d) || at.Loss != (EvasionLoss{Reject: 10}) {
		t.Errorf("AdaptiveTarget %+v, %v", at, err)
	}
}

func TestConfidenceDetectorCalibration(t *testing.T) {
	g := testCNN(t)
	cal, _ := testMNIST(t, 0, 500)
	held, _ := testMNIST(t, 500, 1000)
	for _, fpr := range []float64{0.05, 0.1} {
		tau, err := CalibrateConfidence(g, cal, fpr)
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewConfidenceDetector(g, tau)
		if err != nil {
			t.Fatal(err)
		}
		zc, _ := d.Logits(cal)
		zh, _ := d.Logits(held)
		want := math.Ceil(fpr * 500)
		if got := detRate(zc, nil) * 500; got != want {
			t.Errorf("fpr %v: %v calibration rows rejected, want %v (τ = %v)", fpr, got, want, tau)
		}
		if got := detRate(zh, nil); math.Abs(got-fpr) > 0.05 {
			t.Errorf("fpr %v: held-out false-positive rate %v", fpr, got)
		}
		t.Logf("fpr %v: τ = %.6f, held-out false-positive rate %.3f", fpr, tau, detRate(zh, nil))
	}
}

func TestConfidenceDetectorSpec(t *testing.T) {
	cnn := cnnPath(t)
	m, err := Load(writeSpec(t, t.TempDir(), "spec.json", `{"kind":"confidence-detector","model":"`+cnn+`","params":{"threshold":0.9}}`))
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := m.(*ConfidenceDetector); !ok || d.Threshold != 0.9 || d.Reject() != 10 {
		t.Fatalf("Load gave %#v", m)
	}
	specErrors(t, []struct{ name, body, want string }{
		{"negative threshold", `{"kind":"confidence-detector","model":"` + cnn + `","params":{"threshold":-0.1}}`, "threshold -0.1: want a number in [0, 1]"},
		{"threshold above 1", `{"kind":"confidence-detector","model":"` + cnn + `","params":{"threshold":1.5}}`, "threshold 1.5"},
		{"no threshold", `{"kind":"confidence-detector","model":"` + cnn + `"}`, `no "threshold"`},
		{"unknown param", `{"kind":"confidence-detector","model":"` + cnn + `","params":{"threshold":0.5,"bits":1}}`, `unknown field "bits"`},
		{"no model", `{"kind":"confidence-detector","params":{"threshold":0.5}}`, `no model`},
	})
}
