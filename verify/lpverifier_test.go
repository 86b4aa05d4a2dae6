package verify

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/verify/lp"
)

// lpSlack is how far below the exact LP optimum a reported LP bound may be:
// lpTolerance plus the simplex's own tolerances.
const lpSlack = 1e-5

// TestLPHandNet: net A (y = relu(x1 + x2 + 0.5) − relu(x1 − x2 + 0.25) on [0,1]²)
// worked by hand. z1 = x1 + x2 + 0.5 ∈ [0.5, 2.5] is stably active (h1 = z1);
// z2 = x1 − x2 + 0.25 ∈ [−0.75, 1.25] is unstable, relaxed to h2 ≥ 0, h2 ≥ z2,
// h2 ≤ 1.25(z2 + 0.75)/2 = 0.625(z2 + 0.75).
//
//	min y:  h2 at its upper line: y = z1 − 0.625(z2 + 0.75) = 0.375x1 + 1.625x2 − 0.125,
//	        least at x = (0, 0): −0.125 (the true minimum is 0.25);
//	min −y: h2 at its lower hull max(0, z2), which is exact: −2.25 = −max y, at (1, 0).
//
// Around x = (0.5, 0.2) with radius 0.01 both neurons are active, y = 2x2 + 0.25
// and the LP is exact: min y = 0.63, min −y = −0.67.
func TestLPHandNet(t *testing.T) {
	g := netA(t)
	s := bounds.Spec{C: [][]float64{{1}, {-1}}, D: []float64{0, 0}}
	for _, tc := range []struct {
		r    Region
		want []float64
	}{
		{unitRegion(), []float64{-0.125, -2.25}},
		{LinfRegion(nets.FromData([]float64{0.5, 0.2}, 1, 2), 0.01, 0, 1), []float64{0.63, -0.67}},
	} {
		for _, v := range []LP{{}, {All: true}} {
			got, _, points, err := v.lpBounds(context.Background(), g, tc.r, []bounds.Spec{s})
			if err != nil {
				t.Fatal(err)
			}
			for row, w := range tc.want {
				if b := got[0][row]; b > w+1e-12 || b < w-lpSlack {
					t.Errorf("%s: row %d: LP bound %v, want %v", v.Name(), row, b, w)
				}
			}
			if points[0] == nil {
				t.Errorf("%s: no minimiser", v.Name())
			}
		}
	}
}

// TestLPStableExact: with a radius so small that no ReLU is unstable, the network
// is affine on the box and the LP is exact: the spec value of the network at the
// LP's minimiser equals the LP bound, and is the least over the box's vertices
// computed from finite differences of the network (exact for an affine map).
func TestLPStableExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	g, err := nets.MLP(rng, []int{3}, 8, 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	x := nets.FromData([]float64{0.3, 0.6, 0.4}, 1, 3)
	const radius = 1e-4
	r := LinfRegion(x, radius, 0, 1)
	s := bounds.Spec{C: [][]float64{{1, -1, 0}, {0, 1, -1}, {-1, 0, 1}}, D: []float64{0.1, 0, -0.2}}
	crown, err := bounds.CROWN(g, bounds.Box{Lo: r.Lo, Hi: r.Hi}, []bounds.Spec{s}, bounds.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fc1", "fc2"} { // the pre-activations
		box := crown.Nodes[name]
		if box.Lo == nil {
			t.Fatalf("no bounds of %q", name)
		}
		for i, lo := range box.Lo.Data {
			if lo < 0 && box.Hi.Data[i] > 0 {
				t.Fatalf("value %q element %d unstable: pick a smaller radius", name, i)
			}
		}
	}
	got, _, points, err := LP{}.lpBounds(context.Background(), g, r, []bounds.Spec{s})
	if err != nil {
		t.Fatal(err)
	}
	f := func(p []float64) []float64 {
		y, err := g.Logits(nets.FromData(append([]float64(nil), p...), 1, 3))
		if err != nil {
			t.Fatal(err)
		}
		return y.Data
	}
	// min over the box of row·f = row·f(x) − Σ_i radius·|∂(row·f)/∂x_i|.
	const h = 1e-3
	f0 := f(x.Data)
	for row, c := range s.C {
		val := func(y []float64) float64 {
			v := s.D[row]
			for j, cj := range c {
				v += cj * y[j]
			}
			return v
		}
		want := val(f0)
		for i := range x.Data {
			p := append([]float64(nil), x.Data...)
			p[i] += h
			want -= radius * math.Abs((val(f(p))-val(f0))/h)
		}
		if b := got[0][row]; math.Abs(b-want) > lpSlack {
			t.Errorf("row %d: LP bound %v, exact minimum %v", row, b, want)
		}
	}
	// The minimiser of the worst row attains the worst bound.
	worst := math.Inf(1)
	for _, b := range got[0] {
		worst = min(worst, b)
	}
	v, err := specValue(s, f(points[0]))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(v-worst) > lpSlack {
		t.Errorf("spec value %v at the LP minimiser, LP bound %v", v, worst)
	}
}

// checkLPDominates asserts, per spec row, LP ≥ CROWN and LP ≥ α-CROWN (the LP
// uses α-CROWN's pre-activation bounds and the convex hull of each ReLU, so it is
// at least as tight as any linear relaxation with those bounds), LP-all ≥ LP, and
// soundness: no point of pts (rows of r's samples, [n·m, ...]) has a spec value
// below LP-all's bound.
func checkLPDominates(t *testing.T, g *nets.Graph, r Region, specs []bounds.Spec, all bool, pts func(i int) *nets.Tensor) {
	t.Helper()
	ctx := context.Background()
	box := bounds.Box{Lo: r.Lo, Hi: r.Hi}
	crown, err := bounds.CROWN(g, box, specs, bounds.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lpb, alpha, _, err := LP{}.lpBounds(ctx, g, r, specs)
	if err != nil {
		t.Fatal(err)
	}
	final := lpb
	if all {
		if final, _, _, err = (LP{All: true}).lpBounds(ctx, g, r, specs); err != nil {
			t.Fatal(err)
		}
	}
	for i := range specs {
		for row := range specs[i].C {
			if lpb[i][row] < crown.Lower[i][row]-lpSlack || lpb[i][row] < alpha[i][row]-lpSlack {
				t.Errorf("sample %d row %d: LP %v below CROWN %v or α-CROWN %v", i, row, lpb[i][row], crown.Lower[i][row], alpha[i][row])
			}
			if final[i][row] < lpb[i][row]-lpSlack {
				t.Errorf("sample %d row %d: LP-all %v below LP %v", i, row, final[i][row], lpb[i][row])
			}
		}
		p := pts(i)
		y, err := g.Logits(p)
		if err != nil {
			t.Fatal(err)
		}
		k := y.Len() / y.Batch()
		for q := 0; q < y.Batch(); q++ {
			for row, c := range specs[i].C {
				v := specs[i].D[row]
				for j, cj := range c {
					v += cj * y.Data[q*k+j]
				}
				if v < final[i][row]-1e-9 {
					t.Fatalf("sample %d row %d: point %d has spec value %v below the LP bound %v: UNSOUND", i, row, q, v, final[i][row])
				}
			}
		}
	}
}

// randomPoints returns m points of sample i's box: its vertices' worth of random
// corners and uniform points.
func randomPoints(rng *rand.Rand, r Region, i, m int) *nets.Tensor {
	per := r.Lo.Len() / r.Lo.Batch()
	lo, hi := r.Lo.Data[i*per:(i+1)*per], r.Hi.Data[i*per:(i+1)*per]
	p := nets.NewTensor(append([]int{m}, r.Lo.Shape[1:]...)...)
	for q := 0; q < m; q++ {
		for j := range lo {
			u := rng.Float64()
			if q%2 == 0 { // a corner
				u = float64(rng.IntN(2))
			}
			p.Data[q*per+j] = lo[j] + u*(hi[j]-lo[j])
		}
	}
	return p
}

// TestLPDominatesRandom: random small ReLU MLPs, random boxes.
func TestLPDominatesRandom(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		d := 2 + rng.IntN(4)
		g, err := nets.MLP(rng, []int{d}, 6+rng.IntN(6), 6+rng.IntN(6), 4)
		if err != nil {
			t.Fatal(err)
		}
		const n = 3
		x := nets.NewTensor(n, d)
		for i := range x.Data {
			x.Data[i] = rng.Float64()
		}
		r := LinfRegion(x, 0.05+0.2*rng.Float64(), 0, 1)
		specs := make([]bounds.Spec, n)
		for i := range specs {
			if specs[i], err = bounds.RobustnessSpec(4, rng.IntN(4)); err != nil {
				t.Fatal(err)
			}
		}
		checkLPDominates(t, g, r, specs, true, func(i int) *nets.Tensor { return randomPoints(rng, r, i, 400) })
	}
}

// TestLPMNIST: the shipped MLP, radius 0.02: LP ≥ CROWN, α-CROWN; LP-all ≥ LP
// (on one sample, it is slow); no random or PGD point beats the bound; the
// verdicts agree with the margins and counterexamples are real.
func TestLPMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST model")
	}
	const n, radius = 3, 0.02
	g, labels, specs, r := shippedMLPSamples(t, n, radius)
	rng := rand.New(rand.NewPCG(3, 3))
	pgd := minSpecPGD(t, g, r, labels, specs, rng)
	res, err := LP{}.VerifyBatch(context.Background(), g, r, specs)
	if err != nil {
		t.Fatal(err)
	}
	for i, rs := range res {
		if pgd[i] < rs.Margin {
			t.Errorf("sample %d: PGD reached %v below the LP margin %v: UNSOUND", i, pgd[i], rs.Margin)
		}
		if (rs.Verdict == Verified) != (rs.Margin > 0) {
			t.Errorf("sample %d: verdict %v with margin %v", i, rs.Verdict, rs.Margin)
		}
		if rs.Verdict == Falsified {
			checkCounterexample(t, g, r.Row(i), specs[i], rs.Counterexample)
		}
	}
	checkLPDominates(t, g, r, specs, false, func(i int) *nets.Tensor { return randomPoints(rng, r, i, 50) })
	one := r.Row(0)
	checkLPDominates(t, g, one, specs[:1], true, func(int) *nets.Tensor { return randomPoints(rng, one, 0, 50) })
}

// TestLPUnsupported: a nonlinearity other than Relu is refused, naming the node.
func TestLPUnsupported(t *testing.T) {
	g := netA(t)
	for _, n := range g.Nodes {
		if n.Name == "h1" {
			n.Op = nets.Sigmoid{}
		}
	}
	_, err := LP{}.VerifyBatch(context.Background(), g, unitRegion(), []bounds.Spec{{C: [][]float64{{1}}, D: []float64{0}}})
	if !errors.Is(err, bounds.ErrUnsupported) {
		t.Fatalf("got %v, want bounds.ErrUnsupported", err)
	}
	if !contains(err.Error(), `"h1"`) {
		t.Errorf("error %q does not name the node", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestLPVerdicts: on net A, y > 0 over [0,1]² (true min 0.25): LP alone gives
// −0.125, so Unknown; y + 0.2 > 0 is verified (0.075); −y + 1 > 0 is falsified.
func TestLPVerdicts(t *testing.T) {
	g := netA(t)
	for _, tc := range []struct {
		d    float64
		c    float64
		want Verdict
	}{{0, 1, Unknown}, {0.2, 1, Verified}, {1, -1, Falsified}} {
		s := bounds.Spec{C: [][]float64{{tc.c}}, D: []float64{tc.d}}
		res, err := LP{}.Verify(context.Background(), g, unitRegion(), s)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != tc.want {
			t.Errorf("%v·y + %v: %v (margin %v), want %v", tc.c, tc.d, res.Verdict, res.Margin, tc.want)
		}
		if res.Verdict == Falsified {
			checkCounterexample(t, g, unitRegion(), s, res.Counterexample)
		}
	}
}

// TestLPSafeBound: the dual-based safe bound is within 1e-7 of the solver's
// objective on a relaxation (the duals are used with the right sign), never above
// it by more than rounding, and a perturbed dual vector still gives a valid (lower)
// bound.
func TestLPSafeBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	g, err := nets.MLP(rng, []int{4}, 10, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	x := nets.FromData([]float64{0.2, 0.5, 0.7, 0.4}, 1, 4)
	r := LinfRegion(x, 0.2, 0, 1)
	net, err := extractLPNet(g, []int{4})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := bounds.RobustnessSpec(3, 0)
	res, err := bounds.CROWN(g, bounds.Box{Lo: r.Lo, Hi: r.Hi}, []bounds.Spec{s}, bounds.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lo, hi [][]float64
	for _, name := range net.pre {
		lo, hi = append(lo, res.Nodes[name].Lo.Data), append(hi, res.Nodes[name].Hi.Data)
	}
	relax := buildRelax(net, r.Lo.Data, r.Hi.Data, lo, hi, len(net.pre), false)
	solver := lp.New()
	defer solver.Close()
	if err := solver.Load(relax.p); err != nil {
		t.Fatal(err)
	}
	obj := make([]float64, relax.p.NumCols())
	for j := range obj {
		obj[j] = rng.NormFloat64()
	}
	if err := solver.SetObjective(obj); err != nil {
		t.Fatal(err)
	}
	sol, err := solver.Solve()
	if err != nil {
		t.Fatal(err)
	}
	if len(sol.Duals) != relax.p.NumRows() {
		t.Fatalf("%d duals for %d rows", len(sol.Duals), relax.p.NumRows())
	}
	b := relax.safeBound(obj, sol)
	if b > sol.Objective+1e-9 || b < sol.Objective-1e-7 {
		t.Errorf("safe bound %v, objective %v", b, sol.Objective)
	}
	for i := range sol.Duals {
		sol.Duals[i] += 0.1 * rng.NormFloat64()
	}
	if pb := relax.safeBound(obj, sol); pb > sol.Objective+1e-9 {
		t.Errorf("perturbed duals: bound %v above the optimum %v: UNSOUND", pb, sol.Objective)
	}
}

// TestLPExtract: the affine layers read off by probing, composed with ReLU in
// plain Go, reproduce the network's logits, for the shipped MLP and CNN (the CNN
// exercises Conv and Flatten between ReLUs).
func TestLPExtract(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST models")
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for _, path := range []string{"../testdata/mnist_mlp.onnx", "../testdata/mnist_cnn.onnx"} {
		g, err := nets.ReadONNX(path)
		if err != nil {
			t.Fatal(err)
		}
		net, err := extractLPNet(g, []int{1, 28, 28})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		x := nets.NewTensor(1, 1, 28, 28)
		for i := range x.Data {
			x.Data[i] = rng.Float64()
		}
		want, err := g.Logits(x)
		if err != nil {
			t.Fatal(err)
		}
		v := x.Data
		for k, a := range net.affine {
			z := make([]float64, len(a.b))
			for o := range z {
				z[o] = a.b[o]
				for i, w := range a.W[o*a.in : (o+1)*a.in] {
					z[o] += w * v[i]
				}
				if k < len(net.pre) {
					z[o] = max(z[o], 0)
				}
			}
			v = z
		}
		for j, y := range want.Data {
			if math.Abs(v[j]-y) > 1e-9*(1+math.Abs(y)) {
				t.Errorf("%s: logit %d: extracted %v, network %v", path, j, v[j], y)
			}
		}
	}
}
