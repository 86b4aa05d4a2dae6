package attacks

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// gaussianNoise is the transformation t(x) = x + σ·n, n ~ N(0, I).
func gaussianNoise(sigma float64) func(dst, x []float64, rng *rand.Rand) {
	return func(dst, x []float64, rng *rand.Rand) {
		for i, v := range x {
			dst[i] = v + sigma*rng.NormFloat64()
		}
	}
}

// TestEOTAveragesDraws: on the MLP behind additive Gaussian noise, EOT's gradient
// equals the mean of the per-draw gradients ∇(L∘f)(x + n_s), each computed alone,
// its loss the mean loss and its logits the mean logits; the draws are fresh per
// sample and reproducible.
func TestEOTAveragesDraws(t *testing.T) {
	g, x, labels := shippedMLP(t, 4)
	const n = 6
	e := EOT{Net: g, Transform: gaussianNoise(0.1), Samples: n, Seed: 11}
	draws, err := e.Draws(x)
	if err != nil {
		t.Fatal(err)
	}
	per := x.Len() / 4
	// Each draw is x + noise of about σ = 0.1, and no two draws coincide.
	for i := 0; i < 4; i++ {
		for s := 0; s < n; s++ {
			d := draws.Data[(i*n+s)*per : (i*n+s+1)*per]
			sq := 0.0
			for j, v := range d {
				sq += (v - x.Data[i*per+j]) * (v - x.Data[i*per+j])
			}
			if sd := math.Sqrt(sq / float64(per)); sd < 0.08 || sd > 0.12 {
				t.Fatalf("row %d draw %d: noise of standard deviation %g, want ≈ 0.1", i, s, sd)
			}
			if s > 0 && d[0] == draws.Data[(i*n+s-1)*per] {
				t.Fatalf("row %d: draws %d and %d coincide", i, s-1, s)
			}
		}
	}
	vals, grad, err := e.LossGrad(x, labels, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	z, err := e.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		wantV := 0.0
		wantG := make([]float64, per)
		wantZ := make([]float64, 10)
		for s := 0; s < n; s++ {
			d := nets.FromData(append([]float64(nil), draws.Data[(i*n+s)*per:(i*n+s+1)*per]...), x.Row(0).Shape...)
			v, gr, err := g.LossGrad(d, labels[i:i+1], nets.CrossEntropy{})
			if err != nil {
				t.Fatal(err)
			}
			zs, err := g.Logits(d)
			if err != nil {
				t.Fatal(err)
			}
			wantV += v[0] / n
			for j := range wantG {
				wantG[j] += gr.Data[j] / n
			}
			for j := range wantZ {
				wantZ[j] += zs.Data[j] / n
			}
		}
		if math.Abs(vals[i]-wantV) > 1e-12 {
			t.Errorf("row %d: loss %g, want the mean %g", i, vals[i], wantV)
		}
		for j := range wantG {
			if math.Abs(grad.Data[i*per+j]-wantG[j]) > 1e-12 {
				t.Fatalf("row %d: gradient[%d] %g, want the mean %g", i, j, grad.Data[i*per+j], wantG[j])
			}
		}
		for j := range wantZ {
			if math.Abs(z.Data[i*10+j]-wantZ[j]) > 1e-12 {
				t.Fatalf("row %d: logit %d %g, want the mean %g", i, j, z.Data[i*10+j], wantZ[j])
			}
		}
	}
	// Reproducible, independent of the rest of the batch and of the cores (up to
	// the rounding of the network's sums, which may depend on the batch).
	old := runtime.GOMAXPROCS(1)
	_, alone, err := e.LossGrad(x.Row(2), labels[2:3], nets.CrossEntropy{})
	runtime.GOMAXPROCS(old)
	if err != nil {
		t.Fatal(err)
	}
	for j := 0; j < per; j++ {
		if math.Abs(alone.Data[j]-grad.Data[2*per+j]) > 1e-12 {
			t.Fatalf("gradient of row 2 alone differs at %d: %g vs %g in the batch", j, alone.Data[j], grad.Data[2*per+j])
		}
	}
	// A different point gets different draws.
	moved := x.Row(0).Clone()
	moved.Data[0] += 1e-3
	d2, _ := e.Draws(moved)
	if d2.Data[1] == draws.Data[1] {
		t.Error("a moved point reuses the draws of the original")
	}
}

// TestEOTLinearExpectation: on an affine model the expected logits under zero-mean
// noise are W·x + b, and the EOT gradient of z_k is exactly w_k whatever the draws.
func TestEOTLinearExpectation(t *testing.T) {
	w := [][]float64{{1, -2, 0.5}, {0.3, 0.3, -1}}
	b := []float64{0.1, -0.2}
	e := EOT{Net: linearModel(t, w, b), Transform: gaussianNoise(0.05), Samples: 4000, Seed: 1}
	x := nets.FromData([]float64{0.2, 0.4, 0.6}, 1, 3)
	z, err := e.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	want := mnAffineLogits(w, b, x.Data)
	for k := range want {
		// Standard error 0.05·‖w_k‖/√4000 < 0.002.
		if math.Abs(z.Data[k]-want[k]) > 0.01 {
			t.Errorf("mean logit %d: %g, want ≈ %g", k, z.Data[k], want[k])
		}
	}
	_, grad, err := e.LossGrad(x, []int{1}, logitOfLabel{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range w[1] {
		if math.Abs(grad.Data[i]-w[1][i]) > 1e-12 {
			t.Errorf("∇z_1[%d] = %g, want %g", i, grad.Data[i], w[1][i])
		}
	}
}

func TestEOTErrors(t *testing.T) {
	g, x, labels := shippedMLP(t, 2)
	for name, e := range map[string]EOT{
		"no transform":     {Net: g},
		"no network":       {Transform: gaussianNoise(0.1)},
		"negative samples": {Net: g, Transform: gaussianNoise(0.1), Samples: -1},
	} {
		if _, _, err := e.LossGrad(x, labels, nets.CrossEntropy{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, _, err := (EOT{Net: g, Transform: gaussianNoise(0.1)}).LossGrad(x, labels[:1], nets.CrossEntropy{}); err == nil {
		t.Error("label count mismatch accepted")
	}
}
