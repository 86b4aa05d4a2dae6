package defenses

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// transformTestSpec writes a spec file around the shipped CNN and returns its path.
func transformTestSpec(t testing.TB, kind, model, params string) string {
	t.Helper()
	if model == "" {
		model = cnnPath(t)
	}
	body := `{"kind": "` + kind + `", "model": "` + model + `"`
	if params != "" {
		body += `, "params": ` + params
	}
	return writeSpec(t, t.TempDir(), kind+".json", body+"}")
}

// TestTransformLoad loads each kind from a spec and checks its logits against f(t(x))
// computed by hand, row by row, with the transformation the params name.
func TestTransformLoad(t *testing.T) {
	x, _ := testMNIST(t, 0, 5)
	net := testCNN(t)
	blur, err := NewBlur(1.5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if blur.Radius != 5 {
		t.Fatalf("default radius for σ=1.5: %d, want ⌈4.5⌉ = 5", blur.Radius)
	}
	for _, tc := range []struct {
		kind, params string
		t            Transform
		adaptive     string
	}{
		{"blur", `{"sigma": 1.5}`, blur, "exact"},
		{"blur", ``, Blur{Sigma: 1, Radius: 3}, "exact"},
		{"blur", `{"sigma": 0.7, "radius": 1}`, Blur{Sigma: 0.7, Radius: 1}, "exact"},
		{"jpeg", `{"quality": 20}`, JPEG{Quality: 20}, "bpda"},
		{"jpeg", ``, JPEG{Quality: 75}, "bpda"},
		{"bit-depth", `{"bits": 4}`, BitDepth{Bits: 4}, "bpda"},
		{"bit-depth", ``, BitDepth{Bits: 1}, "bpda"},
	} {
		m, err := Load(transformTestSpec(t, tc.kind, "", tc.params))
		if err != nil {
			t.Fatalf("%s %s: %v", tc.kind, tc.params, err)
		}
		tr, ok := m.(*Transformed)
		if !ok {
			t.Fatalf("%s: a %T, want *Transformed", tc.kind, m)
		}
		if tr.T != tc.t {
			t.Errorf("%s %s: transformation %#v, want %#v", tc.kind, tc.params, tr.T, tc.t)
		}
		shape, err := m.InputShape()
		if err != nil || !nets.SameShape(shape, []int{1, 28, 28}) {
			t.Errorf("%s: input shape %v, %v", tc.kind, shape, err)
		}
		got, err := m.Logits(x)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < x.Shape[0]; i++ {
			tx := nets.NewTensor(1, 1, 28, 28)
			if err := tc.t.Apply(tx.Data, x.Row(i).Data, 1, 28, 28); err != nil {
				t.Fatal(err)
			}
			want, err := net.Logits(tx)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(got.Row(i).Data, want.Data); d > 1e-9 {
				t.Errorf("%s %s row %d: logits differ from f(t(x)) by %g", tc.kind, tc.params, i, d)
			}
		}
		at, err := m.(Adaptive).AdaptiveTarget()
		if err != nil || at.Name != tc.adaptive {
			t.Errorf("%s: adaptive target %q, %v; want %q", tc.kind, at.Name, err, tc.adaptive)
		}
	}
}

// TestTransformNaiveAndBPDA checks the gradients: through the quantisers (bit-depth,
// JPEG) the naive gradient is exactly zero with the true loss values, while the
// BPDA target's gradient is the base network's gradient at t(x); through blur the
// adaptive target is the wrapper itself.
func TestTransformNaiveAndBPDA(t *testing.T) {
	x, labels := testMNIST(t, 0, 6)
	net := testCNN(t)
	for _, tr := range []Transform{BitDepth{Bits: 1}, BitDepth{Bits: 3}, JPEG{Quality: 75}, JPEG{Quality: 10}} {
		m, err := NewTransformed(tr, net)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := m.Apply(x)
		if err != nil {
			t.Fatal(err)
		}
		wantVals, wantGrad, err := net.LossGrad(tx, labels, nets.CrossEntropy{})
		if err != nil {
			t.Fatal(err)
		}
		vals, grad, err := m.LossGrad(x, labels, nets.CrossEntropy{})
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(vals, wantVals); d > 1e-9 {
			t.Errorf("%#v: naive loss values differ from L(f(t(x))) by %g", tr, d)
		}
		if d := maxAbsDiff(grad.Data, make([]float64, grad.Len())); d != 0 || !nets.SameShape(grad.Shape, x.Shape) {
			t.Errorf("%#v: naive gradient of shape %v has max |g| = %g, want exactly 0", tr, grad.Shape, d)
		}
		at, err := m.AdaptiveTarget()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := at.Model.(attacks.BPDA); !ok || at.Name != "bpda" {
			t.Fatalf("%#v: adaptive target %q is a %T, want bpda", tr, at.Name, at.Model)
		}
		bv, bg, err := at.Model.LossGrad(x, labels, nets.CrossEntropy{})
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(bv, wantVals); d > 1e-9 {
			t.Errorf("%#v: BPDA loss values differ by %g", tr, d)
		}
		if d := maxAbsDiff(bg.Data, wantGrad.Data); d > 1e-12 {
			t.Errorf("%#v: BPDA gradient differs from ∇f at t(x) by %g", tr, d)
		}
		if d := maxAbsDiff(wantGrad.Data, make([]float64, wantGrad.Len())); d < 1e-6 {
			t.Errorf("%#v: ∇f at t(x) is %g everywhere, a vacuous comparison", tr, d)
		}
	}
	m, err := NewTransformed(Blur{Sigma: 1, Radius: 3}, net)
	if err != nil {
		t.Fatal(err)
	}
	at, err := m.AdaptiveTarget()
	if err != nil || at.Name != "exact" || at.Model != nets.Differentiable(m) {
		t.Errorf("blur: adaptive target %q %T, %v; want the wrapper itself, \"exact\"", at.Name, at.Model, err)
	}
}

// TestTransformShapes rejects batches that are not [batch, 1 or 3, H, W] images of
// the network's size, and networks that do not take images.
func TestTransformShapes(t *testing.T) {
	m, err := NewTransformed(BitDepth{Bits: 1}, testCNN(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		shape []int
		want  string
	}{
		{[]int{2, 784}, "want a batch of images [batch, C, H, W]"},
		{[]int{2, 2, 28, 28}, "has 2 channels; want 1 (grey) or 3 (RGB)"},
		{[]int{2, 1, 28, 27}, "the network takes [batch [1 28 28]]"},
		{[]int{2, 3, 28, 28}, "the network takes [batch [1 28 28]]"},
	} {
		_, err := m.Logits(nets.NewTensor(tc.shape...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("input %v: error %v, want one containing %q", tc.shape, err, tc.want)
		}
		_, _, err = m.LossGrad(nets.NewTensor(tc.shape...), make([]int, tc.shape[0]), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("input %v: LossGrad error %v, want one containing %q", tc.shape, err, tc.want)
		}
	}
	mlp, err := nets.MLP(rand.New(rand.NewPCG(1, 2)), []int{784}, 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTransformed(JPEG{Quality: 50}, mlp); err == nil || !strings.Contains(err.Error(), "works on images [C, H, W]") {
		t.Errorf("a network on [784]: error %v", err)
	}
}

// TestTransformSpecErrors loads bad specs: each error names the problem.
func TestTransformSpecErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no_such_model.onnx")
	for _, tc := range []struct {
		kind, model, params string
		want                string
	}{
		{"blur", missing, `{"sigma": 1}`, "no_such_model.onnx"},
		{"jpeg", missing, ``, "no_such_model.onnx"},
		{"bit-depth", missing, ``, "no_such_model.onnx"},
		{"blur", "", `{"sigma": 1, "size": 3}`, `unknown field "size"`},
		{"jpeg", "", `{"qualty": 50}`, `unknown field "qualty"`},
		{"bit-depth", "", `{"bit": 2}`, `unknown field "bit"`},
		{"jpeg", "", `{"quality": 0}`, "quality 0: want 1 to 100"},
		{"jpeg", "", `{"quality": 101}`, "quality 101: want 1 to 100"},
		{"bit-depth", "", `{"bits": 9}`, "bits 9: want 1 to 8"},
		{"bit-depth", "", `{"bits": 0}`, "bits 0: want 1 to 8"},
		{"blur", "", `{"sigma": 0}`, "sigma 0: want a finite σ > 0"},
		{"blur", "", `{"sigma": -2}`, "sigma -2: want a finite σ > 0"},
		{"blur", "", `{"sigma": NaN}`, "invalid character 'N'"}, // JSON has no NaN
		{"blur", "", `{"sigma": 1e999}`, "1e999"},
		{"blur", "", `{"sigma": 1, "radius": 0}`, "radius 0: want a kernel half-width from 1 to 100"},
		{"blur", "", `{"sigma": 1, "radius": 101}`, "radius 101: want a kernel half-width from 1 to 100"},
		{"blur", "", `{"sigma": 40}`, "⌈3σ⌉ = 120, more than 100"},
		{"blur", "", `{"sigma": 1, "radius": 1.5}`, "radius"},
	} {
		path := transformTestSpec(t, tc.kind, tc.model, tc.params)
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.kind) {
			t.Errorf("%s %s: error %v, want one naming %q", tc.kind, tc.params, err, tc.want)
		}
	}
	// "models" is for ensembles.
	abs := cnnPath(t)
	path := writeSpec(t, t.TempDir(), "two.json", `{"kind": "jpeg", "models": ["`+abs+`", "`+abs+`"]}`)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), `give "model", not "models"`) {
		t.Errorf("jpeg with models: %v", err)
	}
	// The constructors check as the specs do.
	if _, err := NewBlur(math.NaN(), 0); err == nil || !strings.Contains(err.Error(), "sigma NaN: want a finite σ > 0") {
		t.Errorf("NewBlur(NaN): %v", err)
	}
	if _, err := NewBlur(math.Inf(1), 3); err == nil || !strings.Contains(err.Error(), "sigma +Inf") {
		t.Errorf("NewBlur(+Inf): %v", err)
	}
}

// TestTransformCleanAccuracy measures, with the default params, the clean accuracy
// of each wrapper around the shipped CNN on testdata/mnist-test-1k and its Logits
// throughput, and checks the accuracies against the values measured when the
// wrappers were written (see the report; the undefended CNN is included).
func TestTransformCleanAccuracy(t *testing.T) {
	x, labels := testMNIST(t, 0, 1000)
	for _, tc := range []struct {
		kind   string
		lo, hi float64 // accepted accuracy range
	}{
		{"", 0.984, 0.992},          // measured 0.988
		{"blur", 0.983, 0.991},      // measured 0.987 (σ = 1, r = 3)
		{"jpeg", 0.983, 0.991},      // measured 0.987 (quality 75)
		{"bit-depth", 0.980, 0.988}, // measured 0.984 (1 bit)
	} {
		var m Model
		var err error
		if tc.kind == "" {
			m, err = Load(cnnPath(t))
		} else {
			m, err = Load(transformTestSpec(t, tc.kind, "", ""))
		}
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		z, err := m.Logits(x)
		if err != nil {
			t.Fatal(err)
		}
		el := time.Since(start)
		correct := 0
		for i, p := range z.Argmax() {
			if p == labels[i] {
				correct++
			}
		}
		acc := float64(correct) / float64(len(labels))
		name := tc.kind
		if name == "" {
			name = "none"
		}
		t.Logf("%-9s clean accuracy %.3f, Logits %.0f images/s", name, acc, float64(len(labels))/el.Seconds())
		if acc < tc.lo || acc > tc.hi {
			t.Errorf("%s: clean accuracy %.3f outside [%.3f, %.3f]", name, acc, tc.lo, tc.hi)
		}
	}
}

// TestTransformAttackExhibit is the gradient-masking exhibit: L∞ PGD on the
// quantising wrappers' own (zero) gradients stays at its random start and fools
// the model on few images, while the same PGD on the BPDA target fools it on many;
// on blur the plain attack is already the adaptive one.
func TestTransformAttackExhibit(t *testing.T) {
	x, labels := testMNIST(t, 0, 50)
	net := testCNN(t)
	for _, tc := range []struct {
		t               Transform
		eps             float64
		naiveHi, bpdaLo float64 // success-rate bounds (measured, with slack)
	}{
		// measured: 0.00 naive, 0.38 BPDA (1 bit keeps the pixels below 0.2 and
		// above 0.8, most of an MNIST digit, out of reach at ε = 0.3).
		{BitDepth{Bits: 1}, 0.3, 0.1, 0.25},
		{JPEG{Quality: 75}, 0.15, 0.1, 0.8},       // measured: 0.00, 1.00
		{Blur{Sigma: 1, Radius: 3}, 0.15, 1, 0.8}, // measured: 1.00 on both (same target)
	} {
		m, err := NewTransformed(tc.t, net)
		if err != nil {
			t.Fatal(err)
		}
		at, err := m.AdaptiveTarget()
		if err != nil {
			t.Fatal(err)
		}
		pgd := attacks.NewPGD(attacks.Budget{Norm: attacks.LInf, Eps: tc.eps, Lo: 0, Hi: 1}, 1)
		pgd.Step = tc.eps / 10
		rate := func(target nets.Differentiable) float64 {
			res, err := pgd.Attack(context.Background(), target, x, labels)
			if err != nil {
				t.Fatal(err)
			}
			z, err := m.Logits(res.Adv) // judged on the wrapper itself
			if err != nil {
				t.Fatal(err)
			}
			fooled := 0
			for i, p := range z.Argmax() {
				if p != labels[i] && res.Success[i] {
					fooled++
				}
			}
			return float64(fooled) / float64(len(labels))
		}
		naive, adaptive := rate(m), rate(at.Model)
		t.Logf("%s ε=%.2f: PGD success %.2f on the wrapper's own gradient, %.2f on the %s target", tc.t.Name(), tc.eps, naive, adaptive, at.Name)
		if naive > tc.naiveHi || adaptive < tc.bpdaLo {
			t.Errorf("%s: naive success %.2f (want ≤ %.2f), adaptive %.2f (want ≥ %.2f)", tc.t.Name(), naive, tc.naiveHi, adaptive, tc.bpdaLo)
		}
	}
}

// BenchmarkTransform measures, per wrapper with its default params, the images/s of
// the transformation alone (Apply) and of the wrapper's Logits on 1000 MNIST test
// images around the shipped CNN.
func BenchmarkTransform(b *testing.B) {
	x, _ := testMNIST(b, 0, 1000)
	net := testCNN(b)
	for _, tr := range []Transform{Blur{Sigma: 1, Radius: 3}, JPEG{Quality: 75}, BitDepth{Bits: 1}} {
		m, err := NewTransformed(tr, net)
		if err != nil {
			b.Fatal(err)
		}
		for _, part := range []struct {
			name string
			run  func() error
		}{
			{"apply", func() error { _, err := m.Apply(x); return err }},
			{"logits", func() error { _, err := m.Logits(x); return err }},
		} {
			b.Run(tr.Name()+"/"+part.name, func(b *testing.B) {
				for b.Loop() {
					if err := part.run(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*x.Shape[0])/b.Elapsed().Seconds(), "images/s")
			})
		}
	}
}
