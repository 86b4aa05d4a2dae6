package defenses

import (
	"math"
	"testing"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// The quantiser maps every pixel to its nearest level j/(k−1) (found here by
// search over the levels), the wrapper's logits are the network's on the quantised
// image, its naive gradient is exactly 0, and BPDA's gradient is the network's
// gradient at the quantised image.
func TestShatteredQuantiseAndGradients(t *testing.T) {
	cnn := testGraph(t, "mnist_cnn.onnx")
	x, y := testMNIST(t, 0, 20)
	// Off-domain values are clipped first.
	x.Data[0], x.Data[1] = -0.2, 1.3
	for _, k := range []int{2, 4, 11} {
		s := Shattered{Net: cnn, Levels: k, Shape: []int{1, 28, 28}}
		hand := x.Clone()
		for i, v := range hand.Data {
			best := 0.0
			for j := 0; j < k; j++ {
				l := float64(j) / float64(k-1)
				if math.Abs(l-v) < math.Abs(best-v) {
					best = l
				}
			}
			hand.Data[i] = best
		}
		q := x.Clone()
		s.QuantiseInPlace(q)
		for i := range q.Data {
			if math.Abs(q.Data[i]-hand.Data[i]) > 1e-15 {
				t.Fatalf("k=%d: q(%g) = %g, nearest level %g", k, x.Data[i], q.Data[i], hand.Data[i])
			}
		}
		z, want := testLogits(t, s, x), testLogits(t, cnn, hand)
		for i := range z.Data {
			if math.Abs(z.Data[i]-want.Data[i]) > 1e-12 {
				t.Fatalf("k=%d: logit %d = %g, network on the quantised input %g", k, i, z.Data[i], want.Data[i])
			}
		}
		vals, g, err := s.LossGrad(x, y, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantVals, _, _ := nets.CrossEntropy{}.Eval(want, y)
		for i := range vals {
			if math.Abs(vals[i]-wantVals[i]) > 1e-12 {
				t.Fatalf("k=%d: loss %d = %g, want %g", k, i, vals[i], wantVals[i])
			}
		}
		for i, v := range g.Data {
			if v != 0 {
				t.Fatalf("k=%d: naive gradient value %d is %g, want exactly 0", k, i, v)
			}
		}
		tgt, err := s.AdaptiveTarget()
		if err != nil || tgt.Name != "bpda" {
			t.Fatalf("adaptive target %q, %v", tgt.Name, err)
		}
		if _, ok := tgt.Model.(attacks.BPDA); !ok {
			t.Fatalf("adaptive model is a %T", tgt.Model)
		}
		_, gb, err := tgt.Model.LossGrad(x, y, nets.CrossEntropy{})
		if err != nil {
			t.Fatal(err)
		}
		_, gw, _ := cnn.LossGrad(hand, y, nets.CrossEntropy{})
		nonzero := 0
		for i := range gb.Data {
			if math.Abs(gb.Data[i]-gw.Data[i]) > 1e-12 {
				t.Fatalf("k=%d: BPDA gradient %d = %g, network's at q(x) %g", k, i, gb.Data[i], gw.Data[i])
			}
			if gb.Data[i] != 0 {
				nonzero++
			}
		}
		if nonzero < len(gb.Data)/4 {
			t.Errorf("k=%d: only %d of %d BPDA gradient values are non-zero", k, nonzero, len(gb.Data))
		}
	}
}

// THE EXHIBIT (Athalye, Carlini & Wagner 2018, Sec. 3.1 and 4.1): at L∞ ε = 0.3 on
// 100 test images, PGD following the quantised CNN's own (zero) gradient leaves it
// almost untouched; PGD through BPDA, its points judged by the wrapper, breaks it.
// Measured: clean 1.00, naive 0.97, BPDA 0.00 (4 levels); with 2 levels the
// binarised CNN is genuinely harder at 0.3 (BPDA leaves 0.78), so 4 it is.
func TestShatteredExhibit(t *testing.T) {
	x, y := testMNIST(t, 0, 100)
	s := Shattered{Net: testGraph(t, "mnist_cnn.onnx"), Levels: 4, Shape: []int{1, 28, 28}}
	clean, naive, adaptive := ensTestExhibit(t, s, x, y, 0.3)
	t.Logf("shattered (4 levels), eps 0.3: clean %.2f, naive PGD %.2f, BPDA PGD %.2f", clean, naive, adaptive)
	if clean < 0.95 || naive < 0.9 || adaptive > 0.1 {
		t.Errorf("clean %.2f, naive %.2f, adaptive %.2f: want clean >= 0.95, naive >= 0.90 (masked), adaptive <= 0.10", clean, naive, adaptive)
	}
}

// Shattered specs: levels required and at least 2, one network, strict params.
func TestShatteredSpec(t *testing.T) {
	dir := t.TempDir()
	cnn := testAbs(t, "mnist_cnn.onnx")
	specErrors(t, []struct{ name, body, want string }{
		{"no levels", `{"kind": "shattered", "model": "` + cnn + `"}`, `give "levels"`},
		{"one level", `{"kind": "shattered", "model": "` + cnn + `", "params": {"levels": 1}}`, "levels 1: want at least 2"},
		{"fractional", `{"kind": "shattered", "model": "` + cnn + `", "params": {"levels": 2.5}}`, "params:"},
		{"unknown", `{"kind": "shattered", "model": "` + cnn + `", "params": {"levels": 4, "bits": 2}}`, `unknown field "bits"`},
		{"models", `{"kind": "shattered", "models": ["` + cnn + `", "` + cnn + `"], "params": {"levels": 4}}`, `one network in "model"`},
	})
	m, err := Load(writeSpec(t, dir, "ok.json", `{"kind": "shattered", "model": "`+cnn+`", "params": {"levels": 4}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := m.(Shattered); !ok || s.Levels != 4 {
		t.Fatalf("loaded %#v", m)
	}
}
