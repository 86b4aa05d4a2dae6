package attacks

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// Helpers of the gradient-attack tests (FGSM, R+FGSM, BIM, MI-FGSM, PGD, APGD,
// APGD-T, AutoAttack).

// wbLinLogits is z = W·x + b, computed independently of nets.
func wbLinLogits(w [][]float64, b, x []float64) []float64 {
	z := make([]float64, len(w))
	for k := range w {
		z[k] = b[k]
		for i := range x {
			z[k] += w[k][i] * x[i]
		}
	}
	return z
}

func wbArgmax(z []float64) int {
	best := 0
	for j, v := range z {
		if v > z[best] {
			best = j
		}
	}
	return best
}

// wbDual is ‖v‖_* for the dual norm of n: ‖v‖₁ for L∞, ‖v‖₂ for L2.
func wbDual(n Norm, v []float64) float64 {
	s := 0.0
	for _, a := range v {
		if n == LInf {
			s += math.Abs(a)
		} else {
			s += a * a
		}
	}
	if n == L2 {
		s = math.Sqrt(s)
	}
	return s
}

func wbDiff(a, b []float64) []float64 {
	d := make([]float64, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	return d
}

// wbLinMinDist is the closed-form distance from x to the nearest misclassified
// point of the linear model for label y, in norm n, ignoring the domain: the union
// of the half-spaces z_j ≥ z_y, so min_{j≠y} (z_y − z_j)/‖w_y − w_j‖_*.
func wbLinMinDist(n Norm, w [][]float64, b, x []float64, y int) float64 {
	z := wbLinLogits(w, b, x)
	best := math.Inf(1)
	for j := range w {
		if j != y {
			best = math.Min(best, (z[y]-z[j])/wbDual(n, wbDiff(w[y], w[j])))
		}
	}
	return best
}

// wbRandomLinear draws a k-class linear model on d inputs and a point x in
// [0.3, 0.7]^d classified as 0 whose nearest other class is at distance dist in
// norm n (closed form); returns the weights, bias and x. Classes 2, 3, ... get a
// bias of −1000: far in logits and in distance, they only shape the DLR
// denominators, so class 1 is both the nearest and the runner-up.
func wbRandomLinear(r *rand.Rand, k, d int, n Norm, dist float64) ([][]float64, []float64, []float64) {
	w := make([][]float64, k)
	for c := range w {
		w[c] = make([]float64, d)
		for i := range w[c] {
			w[c][i] = r.NormFloat64()
		}
	}
	x := make([]float64, d)
	for i := range x {
		x[i] = 0.3 + 0.4*r.Float64()
	}
	// With bias b_0 = B, class 1 is at distance (a + B)/c, a = (w_0 − w_1)·x,
	// c = ‖w_0 − w_1‖_*: solve for B.
	b := make([]float64, k)
	z := wbLinLogits(w, b, x)
	b[0] = math.Inf(-1)
	b[0] = dist*wbDual(n, wbDiff(w[0], w[1])) - (z[0] - z[1])
	for j := 2; j < k; j++ {
		b[j] = -1000
	}
	return w, b, x
}

func wbRun(t *testing.T, a Detailed, m nets.Classifier, x *nets.Tensor, labels []int) *Result {
	t.Helper()
	r, err := a.Attack(context.Background(), m, x, labels)
	if err != nil {
		t.Fatalf("%s: %v", a.Name(), err)
	}
	// Every result re-verified independently of the attack's own Check call.
	b := wbBudgetOf(a)
	per := x.Len() / x.Shape[0]
	again, err := Check(m, b, x, r.Adv, labels, r.Queries)
	if err != nil {
		t.Fatalf("%s: result fails Check: %v", a.Name(), err)
	}
	for i := range labels {
		if again.Success[i] != r.Success[i] {
			t.Fatalf("%s: row %d success %v, Check says %v", a.Name(), i, r.Success[i], again.Success[i])
		}
		if !r.Success[i] {
			for q := 0; q < per; q++ {
				if r.Adv.Data[i*per+q] != x.Data[i*per+q] {
					t.Fatalf("%s: failed row %d not reset to x", a.Name(), i)
				}
			}
		}
	}
	return r
}

func wbBudgetOf(a Attack) Budget {
	switch v := a.(type) {
	case FGSM:
		return v.Budget
	case RFGSM:
		return v.Budget
	case BIM:
		return v.Budget
	case MIFGSM:
		return v.Budget
	case PGD:
		return v.Budget
	case APGD:
		return v.Budget
	case APGDT:
		return v.Budget
	case AutoAttack:
		return v.Budget
	}
	panic("wbBudgetOf: unknown attack")
}

// wbRobustAcc is the fraction of rows the attack did not break.
func wbRobustAcc(r *Result) float64 {
	k := 0
	for _, s := range r.Success {
		if !s {
			k++
		}
	}
	return float64(k) / float64(len(r.Success))
}

// wbWithProcs runs f with GOMAXPROCS set to p.
func wbWithProcs(p int, f func()) {
	old := runtime.GOMAXPROCS(p)
	defer runtime.GOMAXPROCS(old)
	f()
}

func TestWBCheckRejects(t *testing.T) {
	g := linearModel(t, [][]float64{{1, 0}, {0, 1}}, []float64{0, 0})
	x := nets.FromData([]float64{0.5, 0.2}, 1, 2)
	b := Budget{Norm: LInf, Eps: 0.1, Lo: 0, Hi: 1}
	ctx := context.Background()
	cases := []struct {
		name string
		a    Detailed
		m    nets.Classifier
		x    *nets.Tensor
		y    []int
	}{
		{"l1 budget", NewFGSM(Budget{Norm: L1, Eps: 1, Lo: 0, Hi: 1}, 1), g, x, []int{0}},
		{"label count", NewPGD(b, 1), g, x, []int{0, 1}},
		{"outside domain", NewBIM(b, 1), g, nets.FromData([]float64{1.5, 0.2}, 1, 2), []int{0}},
		{"not differentiable", NewAPGD(b, 1), wbScoresOnly{g}, x, []int{0}},
		{"negative eps", NewMIFGSM(Budget{Norm: LInf, Eps: -1, Lo: 0, Hi: 1}, 1), g, x, []int{0}},
		{"zero steps", PGD{Budget: b, Restarts: 1}, g, x, []int{0}},
		{"label range", NewFGSM(b, 1), g, x, []int{7}},
		{"dlr on 2 classes", APGD{Budget: b, Iters: 5, Restarts: 1, Loss: DLR{}, Rho: 0.75, Momentum: 0.75}, g, x, []int{0}},
		{"apgd-t on 2 classes", NewAPGDT(b, 1), g, x, []int{0}},
		{"rfgsm alpha > eps", RFGSM{Budget: b, Alpha: 0.2}, g, x, []int{0}},
	}
	for _, c := range cases {
		if _, err := c.a.Attack(ctx, c.m, c.x, c.y); err == nil {
			t.Errorf("%s: no error", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
}

// wbScoresOnly hides a model's gradients.
type wbScoresOnly struct{ m nets.Classifier }

func (s wbScoresOnly) Logits(x *nets.Tensor) (*nets.Tensor, error) { return s.m.Logits(x) }

func TestWBCancelled(t *testing.T) {
	g, x, y := shippedMLP(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := Budget{Norm: LInf, Eps: 0.1, Lo: 0, Hi: 1}
	for _, a := range []Detailed{NewFGSM(b, 1), NewPGD(b, 1), NewAPGD(b, 1), NewAutoAttack(b, 1)} {
		if _, err := a.Attack(ctx, g, x, y); err == nil {
			t.Errorf("%s: no error on a cancelled context", a.Name())
		}
	}
}

// TestWBDeterministicAcrossCores: the same seed gives bit-identical adversarial
// examples, successes and query counts with 1 and 2 cores, for every attack (short
// runs on 16 images of the shipped MLP, at an ε where some rows survive, so that
// restarts and targets actually run).
func TestWBDeterministicAcrossCores(t *testing.T) {
	g, x, y := shippedMLP(t, 16)
	for _, norm := range []Norm{LInf, L2} {
		b := Budget{Norm: norm, Eps: 0.04, Lo: 0, Hi: 1}
		if norm == L2 {
			b.Eps = 0.8
		}
		pgd := NewPGD(b, 3)
		pgd.Steps, pgd.Restarts = 10, 3
		pgdNoStop := pgd
		pgdNoStop.EarlyStop, pgdNoStop.Loss = false, nets.Margin{}
		apgd := NewAPGD(b, 3)
		apgd.Iters, apgd.Restarts = 15, 2
		apgdt := NewAPGDT(b, 3)
		apgdt.Iters, apgdt.Targets = 10, 3
		list := []Detailed{NewFGSM(b, 3), NewRFGSM(b, 3), NewBIM(b, 3), NewMIFGSM(b, 3), pgd, pgdNoStop, apgd, apgdt}
		ens := AutoAttack{Budget: b, Attacks: []Attack{apgd, apgdt}}
		if norm == LInf {
			sq := NewSquare(b, 3)
			sq.Queries = 100
			ens.Attacks = append(ens.Attacks, sq)
		}
		list = append(list, ens)
		for _, a := range list {
			var r1, r2 *Result
			wbWithProcs(1, func() { r1 = wbRun(t, a, g, x, y) })
			wbWithProcs(2, func() { r2 = wbRun(t, a, g, x, y) })
			if !slices.Equal(r1.Adv.Data, r2.Adv.Data) || !slices.Equal(r1.Success, r2.Success) || !slices.Equal(r1.Queries, r2.Queries) {
				t.Errorf("%s %v: results differ between 1 and 2 cores", a.Name(), norm)
			}
		}
		// Not vacuous: another seed moves PGD's random starts, so its points.
		other := pgd
		other.Seed = 4
		if r1, r2 := wbRun(t, pgd, g, x, y), wbRun(t, other, g, x, y); slices.Equal(r1.Adv.Data, r2.Adv.Data) {
			t.Errorf("%v: PGD with seeds 3 and 4 found identical points", norm)
		}
	}
}
