package nets

import (
	"math"
	"strings"
	"testing"
)

// Two steps on one weight w0 = 1 with gradients 0.5 then −0.25, η = 0.1, against
// values worked out by hand from the update rules in sgd.go's doc comment.
func TestSGDTwoSteps(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  SGD
		want float64
	}{
		// w1 = 1 − 0.1·0.5, w2 = w1 + 0.1·0.25.
		{"plain", SGD{}, 0.975},
		// v1 = 0.5 + 0.01 = 0.51, w1 = 0.949; v2 = 0.9·0.51 − 0.25 + 0.00949 = 0.21849.
		{"momentum+decay", SGD{Momentum: 0.9, WeightDecay: 0.01}, 0.927151},
		// w1 = 1 − 0.1·(0.51 + 0.459) = 0.9031; g2 = −0.240969, v2 = 0.218031,
		// w2 = 0.9031 − 0.1·(−0.240969 + 0.1962279).
		{"nesterov+decay", SGD{Momentum: 0.9, WeightDecay: 0.01, Nesterov: true}, 0.90757411},
	} {
		w := FromData([]float64{1}, 1)
		opt := tc.opt
		for _, g := range []float64{0.5, -0.25} {
			if err := opt.Step([]*Tensor{w}, []*Tensor{FromData([]float64{g}, 1)}, 0.1); err != nil {
				t.Fatal(err)
			}
		}
		if math.Abs(w.Data[0]-tc.want) > 1e-15 {
			t.Errorf("%s: w = %.17g, want %.17g", tc.name, w.Data[0], tc.want)
		}
	}
}

// Adam's first two steps in closed form: with zero initial moments the
// bias-corrected estimates are m̂₁ = g₁, v̂₁ = g₁² (so the first step is −η·g/(|g|+ε),
// about −η·sign g), and m̂₂ = (β₁g₁ + g₂)/(1+β₁), v̂₂ = (β₂g₁² + g₂²)/(1+β₂).
func TestAdamClosedForm(t *testing.T) {
	const lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
	w0 := []float64{1, -2, 0.5, 3}
	g1 := []float64{0.1, -0.3, 0, 4}
	g2 := []float64{-0.2, -0.1, 0.05, 4}
	opt := NewAdam()
	w := FromData(append([]float64(nil), w0...), 4)
	if err := opt.Step([]*Tensor{w}, []*Tensor{FromData(g1, 4)}, lr); err != nil {
		t.Fatal(err)
	}
	w1 := make([]float64, 4)
	for i := range w0 {
		w1[i] = w0[i] - lr*g1[i]/(math.Abs(g1[i])+eps)
		if math.Abs(w.Data[i]-w1[i]) > 1e-14 {
			t.Errorf("step 1, w[%d] = %.17g, want %.17g", i, w.Data[i], w1[i])
		}
	}
	if err := opt.Step([]*Tensor{w}, []*Tensor{FromData(g2, 4)}, lr); err != nil {
		t.Fatal(err)
	}
	for i := range w0 {
		m := (b1*g1[i] + g2[i]) / (1 + b1)
		v := (b2*g1[i]*g1[i] + g2[i]*g2[i]) / (1 + b2)
		want := w1[i] - lr*m/(math.Sqrt(v)+eps)
		if math.Abs(w.Data[i]-want) > 1e-14 {
			t.Errorf("step 2, w[%d] = %.17g, want %.17g", i, w.Data[i], want)
		}
	}
}

func TestOptimizerErrors(t *testing.T) {
	p := []*Tensor{NewTensor(2)}
	for _, tc := range []struct {
		name   string
		opt    Optimizer
		params []*Tensor
		grads  []*Tensor
		want   string
	}{
		{"sgd count", &SGD{}, p, nil, "1 params, 0 gradients"},
		{"sgd size", &SGD{}, p, []*Tensor{NewTensor(3)}, "has gradient"},
		{"sgd nil grad", &SGD{}, p, []*Tensor{nil}, "has gradient"},
		{"sgd momentum", &SGD{Momentum: 1}, p, []*Tensor{NewTensor(2)}, "momentum"},
		{"adam zero value", &Adam{}, p, []*Tensor{NewTensor(2)}, "ε 0"},
		{"adam beta", &Adam{Beta1: 1, Beta2: 0.9, Eps: 1}, p, []*Tensor{NewTensor(2)}, "β₁ 1"},
	} {
		err := tc.opt.Step(tc.params, tc.grads, 0.1)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	// Once an optimizer has state, the number of params may not change.
	for _, opt := range []Optimizer{&SGD{Momentum: 0.5}, NewAdam()} {
		if err := opt.Step(p, []*Tensor{NewTensor(2)}, 0.1); err != nil {
			t.Fatal(err)
		}
		two := []*Tensor{NewTensor(2), NewTensor(2)}
		if err := opt.Step(two, two, 0.1); err == nil || !strings.Contains(err.Error(), "state for 1 params") {
			t.Errorf("%T: error %v on a changed param list", opt, err)
		}
	}
}

func TestCosineLR(t *testing.T) {
	s := CosineLR(1, 2)
	for _, tc := range []struct {
		step int
		want float64
	}{
		{0, 0.5}, {1, 1}, // warm-up
		{2, 1},                               // cos 0
		{7, 0.5},                             // cos(π·5/10)
		{12, 0},                              // cos π (one past the last step)
		{4, 0.5 * (1 + math.Cos(math.Pi/5))}, // cos(π·2/10)
	} {
		if got := s(tc.step, 12); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("step %d: %v, want %v", tc.step, got, tc.want)
		}
	}
	if got := ConstantLR(0.3)(5, 10); got != 0.3 {
		t.Errorf("ConstantLR: %v", got)
	}
}
