package defenses

import (
	"math"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// With T = 1000 the wrapper predicts what the CNN predicts, but its cross-entropy
// gradient is exactly 0 on every row whose margin exceeds 745/T (exp underflows),
// which is most of them; the adaptive target (the CNN itself) still has gradients
// there.
func TestSaturatedVanishingGradient(t *testing.T) {
	cnn := testGraph(t, "mnist_cnn.onnx")
	x, y := testMNIST(t, 0, 200)
	const temp = 1000.0
	s := Saturated{Net: cnn, Temperature: temp, Shape: []int{1, 28, 28}}
	z, zs := testLogits(t, cnn, x), testLogits(t, s, x)
	for i := range z.Data {
		if zs.Data[i] != temp*z.Data[i] {
			t.Fatalf("logit %d = %g, want T·%g", i, zs.Data[i], z.Data[i])
		}
	}
	pred, preds := z.Argmax(), zs.Argmax()
	_, g, err := s.LossGrad(x, y, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := s.AdaptiveTarget()
	if err != nil || tgt.Name != "logit-rescale" {
		t.Fatalf("adaptive target %q, %v", tgt.Name, err)
	}
	_, ga, err := tgt.Model.LossGrad(x, y, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	per := x.Len() / x.Shape[0]
	zeroRows, confident := 0, 0
	for i := range y {
		if pred[i] != preds[i] {
			t.Fatalf("row %d: wrapper predicts %d, CNN %d", i, preds[i], pred[i])
		}
		margin := math.Inf(1)
		for j := 0; j < 10; j++ {
			if j != y[i] {
				margin = math.Min(margin, z.Data[i*10+y[i]]-z.Data[i*10+j])
			}
		}
		zero, adaptiveZero := true, true
		for _, v := range g.Data[i*per : (i+1)*per] {
			zero = zero && v == 0
		}
		for _, v := range ga.Data[i*per : (i+1)*per] {
			adaptiveZero = adaptiveZero && v == 0
		}
		if zero {
			zeroRows++
		}
		switch {
		case margin > 760/temp: // every exp(T·(z_j − z_y)) < e^-760 underflows
			confident++
			if !zero {
				t.Errorf("row %d: margin %.3f, yet the gradient is not exactly 0", i, margin)
			}
		case margin < 700/temp:
			if zero {
				t.Errorf("row %d: margin %.3f, yet the gradient is exactly 0", i, margin)
			}
		}
		if adaptiveZero {
			t.Errorf("row %d: the adaptive target's gradient is 0", i)
		}
	}
	t.Logf("T = %g: %d of %d rows have an exactly zero cross-entropy gradient (%d with margin > 0.76)", temp, zeroRows, len(y), confident)
	if zeroRows < len(y)*9/10 {
		t.Errorf("only %d of %d rows have a zero gradient", zeroRows, len(y))
	}
}

// The chain rule through the temperature: at a T that does not saturate (T = 3) the
// wrapper's gradient matches finite differences of its loss CE(T·f(x)).
func TestSaturatedGradient(t *testing.T) {
	cnn := testGraph(t, "mnist_cnn.onnx")
	x, y := testMNIST(t, 0, 3)
	s := Saturated{Net: cnn, Temperature: 3, Shape: []int{1, 28, 28}}
	_, g, err := s.LossGrad(x, y, nil)
	if err != nil {
		t.Fatal(err)
	}
	per := x.Len() / x.Shape[0]
	const h = 1e-6
	for _, idx := range []int{200, 350, 400, 500} {
		xp, xm := x.Clone(), x.Clone()
		for i := range y {
			xp.Data[i*per+idx] += h
			xm.Data[i*per+idx] -= h
		}
		vp, _, _ := s.LossGrad(xp, y, nil)
		vm, _, _ := s.LossGrad(xm, y, nil)
		for i := range y {
			fd := (vp[i] - vm[i]) / (2 * h)
			if an := g.Data[i*per+idx]; math.Abs(fd-an) > 1e-6*math.Max(1, math.Abs(an)) {
				t.Errorf("row %d, pixel %d: gradient %g, finite differences %g", i, idx, an, fd)
			}
		}
	}
}

// THE EXHIBIT (Athalye, Carlini & Wagner 2018, Sec. 3.2; Carlini & Wagner 2017): at
// L∞ ε = 0.3 on 100 test images, PGD on the saturated CNN's own cross-entropy barely
// moves it; PGD on the rescaled logits breaks it. Measured: clean 1.00, naive 0.96,
// logit-rescale 0.00.
func TestSaturatedExhibit(t *testing.T) {
	x, y := testMNIST(t, 0, 100)
	s := Saturated{Net: testGraph(t, "mnist_cnn.onnx"), Temperature: 1000, Shape: []int{1, 28, 28}}
	clean, naive, adaptive := ensTestExhibit(t, s, x, y, 0.3)
	t.Logf("saturated (T = 1000), eps 0.3: clean %.2f, naive PGD %.2f, logit-rescale PGD %.2f", clean, naive, adaptive)
	if clean < 0.95 || naive < 0.9 || adaptive > 0.1 {
		t.Errorf("clean %.2f, naive %.2f, adaptive %.2f: want clean >= 0.95, naive >= 0.90 (masked), adaptive <= 0.10", clean, naive, adaptive)
	}
}

// Saturated specs: temperature finite and > 0 (default 1000), strict params.
func TestSaturatedSpec(t *testing.T) {
	dir := t.TempDir()
	cnn := testAbs(t, "mnist_cnn.onnx")
	specErrors(t, []struct{ name, body, want string }{
		{"zero", `{"kind": "saturated", "model": "` + cnn + `", "params": {"temperature": 0}}`, "temperature 0: want a finite number > 0"},
		{"negative", `{"kind": "saturated", "model": "` + cnn + `", "params": {"temperature": -3}}`, "temperature -3"},
		{"huge", `{"kind": "saturated", "model": "` + cnn + `", "params": {"temperature": 1e400}}`, "params:"},
		{"unknown", `{"kind": "saturated", "model": "` + cnn + `", "params": {"temp": 10}}`, `unknown field "temp"`},
		{"no model", `{"kind": "saturated"}`, `no model`},
	})
	m, err := Load(writeSpec(t, dir, "ok.json", `{"kind": "saturated", "model": "`+cnn+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := m.(Saturated); !ok || s.Temperature != 1000 {
		t.Fatalf("loaded %#v", m)
	}
}
