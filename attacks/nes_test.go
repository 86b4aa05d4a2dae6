package attacks

import (
	"math"
	"testing"
)

// TestNESEstimate: for a linear margin L(x) = w·x + c both estimators are unbiased,
// E ĝ = w (E uuᵀ = I for Gaussian and Rademacher u), with relative error about
// √(d/pairs); with 2000 pairs in 16 dimensions it is well within 25%. The estimate
// spends exactly its n queries.
func TestNESEstimate(t *testing.T) {
	lin := newBBLinear(t, 0.3) // far from the boundary: no sample point is adversarial
	d := len(lin.w)
	x := lin.x.Data[:d]
	for _, rademacher := range []bool{false, true} {
		e := estimatedPGD{name: "test", samples: 4000, h: 0.01, rademacher: rademacher}
		o := newBBOracle(lin.g, []int{d}, Budget{Norm: LInf, Eps: 0.1, Lo: 0, Hi: 1}, x, 0, 1<<30)
		g := make([]float64, d)
		if err := e.estimate(o, x, RowRand(1, 0), make([]float64, e.samples/2*d), make([]float64, e.samples*d), g); err != nil {
			t.Fatal(err)
		}
		diff, norm := 0.0, 0.0
		for j := range g {
			diff += (g[j] - lin.w[j]) * (g[j] - lin.w[j])
			norm += lin.w[j] * lin.w[j]
		}
		if rel := math.Sqrt(diff / norm); rel > 0.25 {
			t.Errorf("rademacher %v: relative error %.3f of the estimate %v of %v", rademacher, rel, g, lin.w)
		}
		if o.used != e.samples {
			t.Errorf("rademacher %v: %d queries, want %d", rademacher, o.used, e.samples)
		}
	}
}

// TestDescend: one L∞ step moves each coordinate by the step against the sign of
// g (none where g = 0), one L2 step by step·g/‖g‖₂, both then projected.
func TestDescend(t *testing.T) {
	x := []float64{0.5, 0.5, 0.5, 0.02}
	adv := append([]float64(nil), x...)
	bbDescend(Budget{Norm: LInf, Eps: 0.1, Lo: 0, Hi: 1}, adv, x, []float64{1, -2, 0, 3}, 0.05)
	want := []float64{0.45, 0.55, 0.5, 0} // the last clipped to the domain
	for j := range want {
		if math.Abs(adv[j]-want[j]) > 1e-15 {
			t.Fatalf("L∞ step: %v, want %v", adv, want)
		}
	}
	adv = append([]float64(nil), x...)
	bbDescend(Budget{Norm: L2, Eps: 1, Lo: 0, Hi: 1}, adv, x, []float64{3, 0, -4, 0}, 0.5)
	want = []float64{0.2, 0.5, 0.9, 0.02}
	for j := range want {
		if math.Abs(adv[j]-want[j]) > 1e-15 {
			t.Fatalf("L2 step: %v, want %v", adv, want)
		}
	}
}

// TestNESMLP: NES and SPSA (10 000 queries) break at least 80% of the shipped-MLP
// samples a white-box PGD breaks at ε = 0.1.
func TestNESMLP(t *testing.T) {
	b := Budget{Norm: LInf, Eps: 0.1, Lo: 0, Hi: 1}
	bbAgainstPGD(t, NewNES(b, 1), b, 8, 0.8, 10000)
	bbAgainstPGD(t, NewSPSA(b, 1), b, 8, 0.8, 10000)
}
