package attacks

import (
	"context"
	"math"
	"testing"
)

// hsjLinear is a HopSkipJump row on the linear model's row at distance t from the
// boundary, with a radius too small to stop the searches.
func hsjLinear(t *testing.T, norm Norm, dist float64) (bbLinear, *hsjRow) {
	lin := newBBLinear(t, dist)
	d := len(lin.w)
	a, err := NewHopSkipJump(Budget{Norm: norm, Eps: 1e-3, Lo: 0, Hi: 1}, 1).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	o := newBBOracle(lin.g, []int{d}, a.Budget, lin.x.Data[:d], 0, 1<<30)
	return lin, newHSJRow(a, o, RowRand(1, 0))
}

// TestHSJBoundary: the binary search lands on the misclassified side of the linear
// boundary, within the precision θ of it: for L2 on the segment x → p, whose
// crossing is at λ* = m(x)/(m(x) − m(p)) = t/(t + s) for p = x − (t+s)·sign(w);
// for L∞ on the box path clip(p, x − α, x + α), which crosses at α* = t.
func TestHSJBoundary(t *testing.T) {
	const dist, over = 0.05, 0.15
	for _, norm := range []Norm{L2, LInf} {
		lin, h := hsjLinear(t, norm, dist)
		x := h.o.x
		p := make([]float64, len(x))
		for j := range p {
			p[j] = x[j] - (dist+over)*math.Copysign(1, lin.w[j])
		}
		d0 := Distance(norm, p, x)
		post, err := h.boundary(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if post != d0 {
			t.Errorf("%v: distance before the search %g, want %g", norm, post, d0)
		}
		got := Distance(norm, p, x)
		want, tol := dist/(dist+over)*d0, h.theta*d0 // λ* on the segment, scaled to a distance
		if norm == LInf {
			want, tol = dist, h.theta*min(d0, 1)
		}
		if got < want || got > want+tol+1e-15 {
			t.Errorf("%v: boundary point at distance %.10g, want [%.10g, %.10g]", norm, got, want, want+tol)
		}
		z, _, err := bbLogits(lin.g, []int{len(x)}, p, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !bbFooled(z, 0) {
			t.Errorf("%v: boundary point not misclassified (logits %v)", norm, z)
		}
	}
}

// TestHSJEstimate: at a point of the linear boundary the Monte Carlo estimate
// points along the boundary's normal towards the misclassified side, −w/‖w‖, and
// has unit length.
func TestHSJEstimate(t *testing.T) {
	for _, norm := range []Norm{L2, LInf} {
		lin, h := hsjLinear(t, norm, 0.05)
		x := h.o.x
		p := make([]float64, len(x))
		for j := range p {
			p[j] = x[j] - 0.05*math.Copysign(1, lin.w[j]) // on the boundary
		}
		grad := make([]float64, len(x))
		if err := h.estimate(p, 0.01, 2000, grad); err != nil {
			t.Fatal(err)
		}
		dot, gg := 0.0, 0.0
		for j := range grad {
			dot -= grad[j] * lin.w[j]
			gg += grad[j] * grad[j]
		}
		if cos := dot / lin.l2; cos < 0.9 || math.Abs(gg-1) > 1e-12 {
			t.Errorf("%v: cosine with the normal %.3f, |ĝ|² = %g", norm, cos, gg)
		}
		if h.o.used != 2000 {
			t.Errorf("%v: %d queries, want 2000", norm, h.o.used)
		}
	}
}

// TestHSJMLP: with labels only and 3000 queries, HopSkipJump (L∞) breaks most
// shipped-MLP samples a white-box PGD breaks at ε = 0.1 (Check has verified each
// success is within the radius).
func TestHSJMLP(t *testing.T) {
	b := Budget{Norm: LInf, Eps: 0.1, Lo: 0, Hi: 1}
	bbAgainstPGD(t, HopSkipJump{Budget: b, Queries: 3000, Seed: 1}, b, 8, 0.6, 3000)
}
