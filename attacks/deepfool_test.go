package attacks

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// mnWideL2 is a domain that never clips the linear tests' points; DeepFool's push
// (1e-4 of the domain's width per step) is then 1e-3.
var mnWideL2 = Budget{Norm: L2, Eps: 0, Lo: -5, Hi: 5}

const mnWidePush = 1e-3

// TestDeepFoolLinearBinaryClosedForm: on z_1 − z_0 = w·x + b the result is one
// step, x + (1+η)·(|f(x)|/‖w‖₂ + p)·w/‖w‖₂ (L2) or x + (1+η)·(|f(x)|/‖w‖₁ + p)·sign(w)
// (L∞), at distance (1+η)(|f(x)|/‖w‖₂ + p) or (1+η)(|f(x)|/‖w‖₁ + p), where p is the
// reference code's push of 1e-4 × the domain's width.
func TestDeepFoolLinearBinaryClosedForm(t *testing.T) {
	w0 := []float64{0.5, -1, 2, 0.25}
	w1 := []float64{-1, 1.5, 0.5, 1}
	b := []float64{1, -0.5}
	g := linearModel(t, [][]float64{w0, w1}, b)
	xs := [][]float64{{0.2, 0.1, 0.9, 0.3}, {0.7, 0.3, 0.6, 0.1}, {-1, -2, 0.5, 2}}
	for _, norm := range []Norm{L2, LInf} {
		for _, overshoot := range []float64{0.02, 0.1} {
			for _, x := range xs {
				z := mnAffineLogits([][]float64{w0, w1}, b, x)
				y := mnArgmax(z)
				o := 1 - y
				f := z[o] - z[y] // < 0
				w := make([]float64, len(x))
				n2, n1 := 0.0, 0.0
				for i := range w {
					w[i] = []([]float64){w0, w1}[o][i] - []([]float64){w0, w1}[y][i]
					n2 += w[i] * w[i]
					n1 += math.Abs(w[i])
				}
				want := make([]float64, len(x))
				wantDist := 0.0
				for i := range x {
					if norm == L2 {
						want[i] = x[i] + (1+overshoot)*(-f/math.Sqrt(n2)+mnWidePush)*w[i]/math.Sqrt(n2)
					} else {
						want[i] = x[i] + (1+overshoot)*(-f/n1+mnWidePush)*deepFoolSign(w[i])
					}
				}
				if norm == L2 {
					wantDist = (1 + overshoot) * (math.Abs(f)/math.Sqrt(n2) + mnWidePush)
				} else {
					wantDist = (1 + overshoot) * (math.Abs(f)/n1 + mnWidePush)
				}
				bud := mnWideL2
				bud.Norm = norm
				a := DeepFool{Budget: bud, Overshoot: overshoot}
				r, err := a.MinNorm(context.Background(), g, nets.FromData(append([]float64(nil), x...), 1, len(x)), []int{y})
				if err != nil {
					t.Fatal(err)
				}
				if !r.Success[0] {
					t.Fatalf("%v η=%g x=%v: no success", norm, overshoot, x)
				}
				for i := range want {
					if math.Abs(r.Adv.Data[i]-want[i]) > 1e-12 {
						t.Fatalf("%v η=%g x=%v: adv %v, want %v", norm, overshoot, x, r.Adv.Data, want)
					}
				}
				if math.Abs(r.Dist[0]-wantDist) > 1e-12 {
					t.Fatalf("%v η=%g x=%v: distance %g, want %g", norm, overshoot, x, r.Dist[0], wantDist)
				}
				// One forward pass plus one step of 2 class gradients, then the check
				// at the new point (2 more).
				if r.Queries[0] != 5 {
					t.Errorf("%v: %d queries, want 5", norm, r.Queries[0])
				}
			}
		}
	}
}

// TestDeepFoolLinearMulticlassNearestHyperplane: on an affine K-class model one
// step reaches the nearest pairwise boundary: x + (1+η)(|f_l|/‖w_l‖ + p)·w_l/‖w_l‖
// with l = argmin_k |f_k|/‖w_k‖, and the result is classified as l.
func TestDeepFoolLinearMulticlassNearestHyperplane(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const k, d, rows = 5, 6, 40
	w := make([][]float64, k)
	for j := range w {
		w[j] = make([]float64, d)
		for i := range w[j] {
			w[j][i] = rng.NormFloat64()
		}
	}
	b := make([]float64, k)
	for j := range b {
		b[j] = rng.NormFloat64()
	}
	g := linearModel(t, w, b)
	x := nets.NewTensor(rows, d)
	labels := make([]int, rows)
	for r := 0; r < rows; r++ {
		for i := 0; i < d; i++ {
			x.Data[r*d+i] = rng.NormFloat64()
		}
		labels[r] = mnArgmax(mnAffineLogits(w, b, x.Data[r*d:(r+1)*d]))
	}
	a := NewDeepFool(mnWideL2, 1)
	res, err := a.MinNorm(context.Background(), g, x, labels)
	if err != nil {
		t.Fatal(err)
	}
	pred := mnPredictions(t, g, res.Adv)
	for r := 0; r < rows; r++ {
		xr := x.Data[r*d : (r+1)*d]
		y := labels[r]
		dist, l := mnClosestBoundaryL2(w, b, xr, y)
		if !res.Success[r] {
			t.Fatalf("row %d: no success", r)
		}
		if want := 1.02 * (dist + mnWidePush); math.Abs(res.Dist[r]-want) > 1e-9*(1+dist) {
			t.Errorf("row %d: distance %g, want 1.02 × (%g + %g) = %g", r, res.Dist[r], dist, mnWidePush, want)
		}
		if pred[r] != l {
			t.Errorf("row %d: adversarial class %d, want the nearest boundary's %d", r, pred[r], l)
		}
		z := mnAffineLogits(w, b, xr)
		n2 := 0.0
		for i := range xr {
			v := w[l][i] - w[y][i]
			n2 += v * v
		}
		for i := range xr {
			want := xr[i] + 1.02*((z[y]-z[l])/math.Sqrt(n2)+mnWidePush)*(w[l][i]-w[y][i])/math.Sqrt(n2)
			if math.Abs(res.Adv.Data[r*d+i]-want) > 1e-9 {
				t.Fatalf("row %d: adv[%d] = %g, want %g", r, i, res.Adv.Data[r*d+i], want)
			}
		}
	}
}

// TestDeepFoolBudget: Attack keeps a point only inside the budget; MinNorm ignores
// Eps; a misclassified row is its own adversarial point at distance 0.
func TestDeepFoolBudget(t *testing.T) {
	w := [][]float64{{1, 0}, {0, 1}}
	g := linearModel(t, w, []float64{0, 0})
	// Row 0: class 0 at distance 0.5/√2 from the boundary (z0−z1 = 0.5,
	// ‖w1−w0‖ = √2), reached in one step of length 1.02·(0.5/√2 + 1e-4).
	// Row 1: misclassified (label 0, z1 > z0).
	x := nets.FromData([]float64{0.75, 0.25, 0.25, 0.75}, 2, 2)
	labels := []int{0, 0}
	min := (0.5/math.Sqrt2 + 1e-4) * 1.02
	for _, c := range []struct {
		eps  float64
		succ bool
	}{{min * 0.99, false}, {min * 1.01, true}} {
		a := NewDeepFool(Budget{Norm: L2, Eps: c.eps, Lo: 0, Hi: 1}, 1)
		r, err := a.Attack(context.Background(), g, x, labels)
		if err != nil {
			t.Fatal(err)
		}
		if r.Success[0] != c.succ || !r.Success[1] || r.Dist[1] != 0 {
			t.Fatalf("eps %g: success %v dist %v, want [%v true], dist[1] = 0", c.eps, r.Success, r.Dist, c.succ)
		}
		if c.succ && math.Abs(r.Dist[0]-min) > 1e-12 {
			t.Fatalf("eps %g: distance %g, want %g", c.eps, r.Dist[0], min)
		}
		if !c.succ && (r.Adv.Data[0] != 0.75 || r.Adv.Data[1] != 0.25) {
			t.Fatalf("failed row not reset to x: %v", r.Adv.Data[:2])
		}
		m, err := a.MinNorm(context.Background(), g, x, labels)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Success[0] || math.Abs(m.Dist[0]-min) > 1e-12 {
			t.Fatalf("MinNorm: success %v distance %g, want true %g", m.Success[0], m.Dist[0], min)
		}
	}
}

func TestDeepFoolErrors(t *testing.T) {
	g := linearModel(t, [][]float64{{1, 0}, {0, 1}}, []float64{0, 0})
	x := nets.FromData([]float64{0.75, 0.25}, 1, 2)
	ctx := context.Background()
	if _, err := NewDeepFool(Budget{Norm: L2, Lo: 0, Hi: 1}, 1).MinNorm(ctx, mnScoresOnly{g}, x, []int{0}); err == nil {
		t.Error("black-box model accepted")
	}
	if _, err := NewDeepFool(Budget{Norm: L1, Lo: 0, Hi: 1}, 1).MinNorm(ctx, g, x, []int{0}); err == nil {
		t.Error("L1 budget accepted")
	}
	if _, err := NewDeepFool(Budget{Norm: L2, Lo: 0, Hi: 1}, 1).MinNorm(ctx, g, x, []int{0, 1}); err == nil {
		t.Error("label count mismatch accepted")
	}
	if _, err := NewDeepFool(Budget{Norm: L2, Lo: 0, Hi: 1}, 1).MinNorm(ctx, g, x, []int{2}); err == nil {
		t.Error("label 2 of 2 classes accepted")
	}
	if _, err := (DeepFool{Budget: Budget{Norm: L2, Lo: 0, Hi: 1}, Overshoot: -1}).MinNorm(ctx, g, x, []int{0}); err == nil {
		t.Error("negative overshoot accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := NewDeepFool(Budget{Norm: L2, Lo: 0, Hi: 1}, 1).MinNorm(cctx, g, x, []int{0}); err == nil {
		t.Error("cancelled context ignored")
	}
}

// TestDeepFoolShippedMLP: on the shipped MLP every correctly classified row is
// fooled, at a positive distance, and the result does not depend on the number of
// cores.
func TestDeepFoolShippedMLP(t *testing.T) {
	g, x, labels := shippedMLP(t, 40)
	for _, norm := range []Norm{L2, LInf} {
		a := NewDeepFool(Budget{Norm: norm, Lo: 0, Hi: 1}, 1)
		r, err := a.MinNorm(context.Background(), g, x, labels)
		if err != nil {
			t.Fatal(err)
		}
		clean := mnPredictions(t, g, x)
		pred := mnPredictions(t, g, r.Adv)
		for i := range labels {
			if clean[i] == labels[i] && (!r.Success[i] || r.Dist[i] <= 0 || pred[i] == labels[i]) {
				t.Errorf("%v row %d: success %v, distance %g, class %d (label %d)", norm, i, r.Success[i], r.Dist[i], pred[i], labels[i])
			}
			if r.Adv.Data[i] < 0 || r.Adv.Data[i] > 1 {
				t.Fatalf("outside the domain")
			}
		}
		med, n := MedianDist(r)
		t.Logf("deepfool %v: median distance %.4f over %d of %d rows", norm, med, n, len(labels))
		if !(med > 0) {
			t.Errorf("%v: median distance %g", norm, med)
		}
		if norm == L2 {
			old := runtime.GOMAXPROCS(1)
			r1, err := a.MinNorm(context.Background(), g, x, labels)
			runtime.GOMAXPROCS(old)
			if err != nil {
				t.Fatal(err)
			}
			for i := range r.Adv.Data {
				if r.Adv.Data[i] != r1.Adv.Data[i] {
					t.Fatalf("result depends on GOMAXPROCS at value %d", i)
				}
			}
		}
	}
}
