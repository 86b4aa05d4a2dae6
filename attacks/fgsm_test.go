package attacks

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// wbSignStep is the closed form of one L∞ sign step on a 2-class linear model: the
// CE gradient is p_j·(w_j − w_y), so the step is x + s·sign(w_j − w_y), clipped to
// the ε-box around x0 and to [0, 1].
func wbSignStep(x0, x, wy, wj []float64, s, eps float64) []float64 {
	p := make([]float64, len(x))
	for i := range x {
		d := wj[i] - wy[i]
		v := x[i]
		if d > 0 {
			v += s
		} else if d < 0 {
			v -= s
		}
		p[i] = min(max(v, x0[i]-eps, 0), x0[i]+eps, 1)
	}
	return p
}

// TestFGSMLinearClosedForm: on z = W·x + b with two classes FGSM is
// clip(x + ε·sign(w_j − w_y)) exactly — coordinates where w_j = w_y stay, and
// coordinates pushed past the domain are clipped to 0 or 1 — and it succeeds iff
// that point is misclassified (checked on the closed-form logits).
func TestFGSMLinearClosedForm(t *testing.T) {
	w := [][]float64{{1, -2, 0, 2, -1}, {-1, 1, 0, -1, 1}} // w_0 = w_1 = 0 at coordinate 2: exactly zero gradient there
	x := []float64{0.5, 0.97, 0.3, 0.02, 0.5}
	const eps = 0.1
	// Margin z0 − z1 at x is b0 − 2.85; FGSM lowers it by 0.55 (0.09 and 0.06
	// of it lost to clipping: unclipped it would be 0.7).
	for _, c := range []struct {
		b0      float64
		success bool
	}{{2.85 + 0.3, true}, {2.85 + 0.6, false}} {
		b := []float64{c.b0, 0}
		g := linearModel(t, w, b)
		want := wbSignStep(x, x, w[0], w[1], eps, eps)
		if got := wbArgmax(wbLinLogits(w, b, want)) != 0; got != c.success {
			t.Fatalf("test set-up: closed-form success %v, want %v", got, c.success)
		}
		xs := nets.FromData(append([]float64(nil), x...), 1, 5)
		r := wbRun(t, NewFGSM(Budget{Norm: LInf, Eps: eps, Lo: 0, Hi: 1}, 1), g, xs, []int{0})
		if r.Success[0] != c.success {
			t.Fatalf("b0=%g: success %v, want %v", c.b0, r.Success[0], c.success)
		}
		if !c.success {
			continue // Adv is reset to x by Check (tested in wbRun)
		}
		for i := range want {
			if math.Abs(r.Adv.Data[i]-want[i]) > 1e-15 {
				t.Fatalf("adv %v, want %v", r.Adv.Data, want)
			}
		}
		if r.Adv.Data[1] != 1 || r.Adv.Data[3] != 0 || r.Adv.Data[2] != x[2] {
			t.Fatalf("clipping / zero-gradient coordinates wrong: %v", r.Adv.Data)
		}
		if math.Abs(r.Dist[0]-eps) > 1e-15 || r.Queries[0] != 1 {
			t.Fatalf("dist %g queries %d", r.Dist[0], r.Queries[0])
		}
	}
}

// TestFGSMSucceedsIffEps: FGSM is optimal on a 2-class linear model (the sign
// vertex minimises the margin over the box; ε·u minimises it over the L2 ball), so it
// succeeds iff ε exceeds the closed-form distance margin/‖w_y − w_j‖_* (L1 for L∞,
// L2 for L2), for x in the interior of the domain.
func TestFGSMSucceedsIffEps(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []Norm{LInf, L2} {
		for trial := 0; trial < 5; trial++ {
			dist := 0.02 + 0.03*r.Float64()
			if n == L2 {
				dist *= 3
			}
			w, b, x := wbRandomLinear(r, 2, 6, n, dist)
			if d := wbLinMinDist(n, w, b, x, 0); math.Abs(d-dist) > 1e-12 {
				t.Fatalf("set-up: distance %g, want %g", d, dist)
			}
			g := linearModel(t, w, b)
			for _, f := range []float64{0.97, 1.03} {
				xs := nets.FromData(append([]float64(nil), x...), 1, len(x))
				res := wbRun(t, NewFGSM(Budget{Norm: n, Eps: f * dist, Lo: 0, Hi: 1}, 1), g, xs, []int{0})
				if res.Success[0] != (f > 1) {
					t.Fatalf("%v, ε = %g × distance: success %v", n, f, res.Success[0])
				}
				if f > 1 && n == L2 {
					// Adv = x + ε·(w_1 − w_0)/‖w_1 − w_0‖₂.
					u := wbDiff(w[1], w[0])
					nu := wbDual(L2, u)
					for i := range x {
						if want := x[i] + f*dist*u[i]/nu; math.Abs(res.Adv.Data[i]-want) > 1e-12 {
							t.Fatalf("L2 adv[%d] = %g, want %g", i, res.Adv.Data[i], want)
						}
					}
				}
			}
		}
	}
}

// TestRFGSMLinearClosedForm: R+FGSM is x' = clip(x + α·sign(n)) with n the normal
// draws of RowRand(seed, row), then clip(x' + (ε − α)·sign(w_j − w_y)) into the box.
func TestRFGSMLinearClosedForm(t *testing.T) {
	w := [][]float64{{1, -2, 0.5, 2, -1}, {-1, 1, 0.3, -1, 1}}
	b := []float64{2.85 + 0.1, 0}
	x := []float64{0.5, 0.97, 0.3, 0.02, 0.5}
	g := linearModel(t, w, b)
	const eps, seed = 0.1, 7
	a := NewRFGSM(Budget{Norm: LInf, Eps: eps, Lo: 0, Hi: 1}, seed)
	if a.Alpha != eps/2 {
		t.Fatalf("default α %g, want ε/2", a.Alpha)
	}
	rr := RowRand(seed, 0)
	x1 := make([]float64, len(x))
	for i := range x {
		x1[i] = min(max(x[i]+a.Alpha*math.Copysign(1, rr.NormFloat64()), 0), 1)
	}
	want := wbSignStep(x, x1, w[0], w[1], eps-a.Alpha, eps)
	if wbArgmax(wbLinLogits(w, b, want)) == 0 {
		t.Fatal("set-up: closed-form point not adversarial")
	}
	res := wbRun(t, a, g, nets.FromData(append([]float64(nil), x...), 1, 5), []int{0})
	if !res.Success[0] {
		t.Fatal("R+FGSM failed")
	}
	for i := range want {
		if math.Abs(res.Adv.Data[i]-want[i]) > 1e-15 {
			t.Fatalf("adv %v, want %v", res.Adv.Data, want)
		}
	}
}
