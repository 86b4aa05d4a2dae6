package verify

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/verify/lp"
)

// bruteMin returns the exact minimum over the box [xlo, xhi] of min_row (C·y + D)
// for the two-hidden-layer ReLU net, and its minimiser: for every activation
// pattern, the net is affine on the polytope where that pattern holds, and an LP
// over x alone gives its minimum there (Bunel et al. 2020's ground truth by
// enumeration, feasible for a dozen neurons).
func bruteMin(t *testing.T, net *lpNet, xlo, xhi []float64, s bounds.Spec) (float64, []float64) {
	t.Helper()
	if len(net.affine) != 3 {
		t.Fatalf("want 2 hidden layers, got %d affine maps", len(net.affine))
	}
	n := len(xlo)
	m1, m2 := len(net.affine[0].b), len(net.affine[1].b)
	solver := lp.New()
	defer solver.Close()
	best, arg := math.Inf(1), []float64(nil)
	for pat := 0; pat < 1<<(m1+m2); pat++ {
		on := func(i int) bool { return pat>>i&1 == 1 }
		// Affine maps of x: A (rows × n), c.
		var consA [][]float64
		var consC []float64
		var consOn []bool
		A, c := identityMap(n)
		for k := 0; k < 2; k++ {
			a := net.affine[k]
			zA, zc := compose(a, A, c)
			off := 0
			if k == 1 {
				off = m1
			}
			for o := range zc {
				consA, consC, consOn = append(consA, zA[o]), append(consC, zc[o]), append(consOn, on(off+o))
				if !on(off + o) {
					zA[o], zc[o] = make([]float64, n), 0
				}
			}
			A, c = zA, zc
		}
		yA, yc := compose(net.affine[2], A, c)
		// Columns x; rows: the pattern's sign constraints on z.
		p := &lp.Problem{ColLo: xlo, ColHi: xhi, Obj: make([]float64, n)}
		for i := range consA {
			if consOn[i] {
				p.RowLo, p.RowHi = append(p.RowLo, -consC[i]), append(p.RowHi, math.Inf(1))
			} else {
				p.RowLo, p.RowHi = append(p.RowLo, math.Inf(-1)), append(p.RowHi, -consC[i])
			}
		}
		p.ColStart = []int{0}
		for j := 0; j < n; j++ {
			for i, row := range consA {
				p.RowIndex, p.Values = append(p.RowIndex, i), append(p.Values, row[j])
			}
			p.ColStart = append(p.ColStart, len(p.RowIndex))
		}
		if err := solver.Load(p); err != nil {
			t.Fatal(err)
		}
		for row, cr := range s.C {
			obj := make([]float64, n)
			konst := s.D[row]
			for o, w := range cr {
				konst += w * yc[o]
				for j := range obj {
					obj[j] += w * yA[o][j]
				}
			}
			if err := solver.SetObjective(obj); err != nil {
				t.Fatal(err)
			}
			sol, err := solver.Solve()
			if errors.Is(err, lp.ErrInfeasible) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if v := sol.Objective + konst; v < best {
				best, arg = v, append([]float64(nil), sol.X...)
			}
		}
	}
	return best, arg
}

func identityMap(n int) ([][]float64, []float64) {
	A := make([][]float64, n)
	for i := range A {
		A[i] = make([]float64, n)
		A[i][i] = 1
	}
	return A, make([]float64, n)
}

// compose returns a∘(A·x + c) as rows of x.
func compose(a lpAffine, A [][]float64, c []float64) ([][]float64, []float64) {
	n := len(A[0])
	outA, outC := make([][]float64, len(a.b)), make([]float64, len(a.b))
	for o := range a.b {
		outA[o] = make([]float64, n)
		outC[o] = a.b[o]
		for i := 0; i < a.in; i++ {
			w := a.W[o*a.in+i]
			outC[o] += w * c[i]
			for j := range outA[o] {
				outA[o][j] += w * A[i][j]
			}
		}
	}
	return outA, outC
}

// TestBaBTinyNets: on tiny random ReLU nets (2 inputs, two hidden layers of 4–5),
// with specs shifted so that the exact minimum over the box (by enumeration,
// bruteMin) is ±δ, BaB settles within 2000 domains and its verdict has the sign of
// the exact minimum; its margin never exceeds it; a counterexample is in the box
// and violates the spec.
func TestBaBTinyNets(t *testing.T) {
	ctx := context.Background()
	lo, hi := []float64{-1, -1}, []float64{1, 1}
	r := Region{Lo: nets.FromData(lo, 1, 2), Hi: nets.FromData(hi, 1, 2)}
	for seed := uint64(1); seed <= 6; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		h1, h2 := 4+int(seed%2), 4+int(seed/2%2)
		g, err := nets.MLP(rng, []int{2}, h1, h2, 3)
		if err != nil {
			t.Fatal(err)
		}
		net, err := extractLPNet(g, []int{2})
		if err != nil {
			t.Fatal(err)
		}
		C := [][]float64{{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}, {rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}}
		// Exact minimum of each row alone, then D so that row i's minimum is δ_i.
		m := make([]float64, len(C))
		for i := range C {
			m[i], _ = bruteMin(t, net, lo, hi, bounds.Spec{C: [][]float64{C[i]}, D: []float64{0}})
		}
		for _, delta := range []float64{0.05, 0.01, -0.01, -0.05} {
			s := bounds.Spec{C: C, D: []float64{-m[0] + delta, -m[1] + 0.02}}
			want, arg := bruteMin(t, net, lo, hi, s)
			// The enumeration's minimiser, run through the graph, attains it.
			y, err := g.Logits(nets.FromData(append([]float64(nil), arg...), 1, 2))
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := specValue(s, y.Data); math.Abs(v-want) > 1e-6 {
				t.Fatalf("seed %d: enumeration minimum %v, network at its minimiser %v", seed, want, v)
			}
			res, err := BaB{MaxNodes: 2000}.Verify(ctx, g, r, s)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("seed %d δ %v: exact min %.4f, %v margin %.4f", seed, delta, want, res.Verdict, res.Margin)
			if res.Margin > want+1e-9 {
				t.Errorf("seed %d δ %v: margin %v above the exact minimum %v: UNSOUND", seed, delta, res.Margin, want)
			}
			switch res.Verdict {
			case Unknown:
				t.Errorf("seed %d δ %v: BaB did not settle (exact minimum %v)", seed, delta, want)
			case Verified:
				if want <= 0 {
					t.Errorf("seed %d δ %v: verified, exact minimum %v: UNSOUND", seed, delta, want)
				}
			case Falsified:
				if want > 0 {
					t.Errorf("seed %d δ %v: falsified, exact minimum %v", seed, delta, want)
				}
				checkCounterexample(t, g, r, s, res.Counterexample)
			}
		}
	}
}

// TestBaBMNIST: on the shipped MNIST MLP, 3 samples at L∞ radius 0.02, BaB
// verifies whatever α-CROWN verifies, verifies nothing PGD breaks, and its margin
// is never above a value PGD reaches.
func TestBaBMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST model")
	}
	const n, radius = 3, 0.02
	g, labels, specs, r := shippedMLPSamples(t, n, radius)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alpha, err := AlphaCROWN{}.VerifyBatch(ctx, g, r, specs)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := BaB{MaxNodes: 20}.VerifyBatch(ctx, g, r, specs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bab: %v", time.Since(start))
	worst := minSpecPGD(t, g, r, labels, specs, rand.New(rand.NewPCG(1, 2)))
	for i := range res {
		t.Logf("sample %d: alpha %v %.4f, bab %v %.4f, pgd %.4f", i, alpha[i].Verdict, alpha[i].Margin, res[i].Verdict, res[i].Margin, worst[i])
		if alpha[i].Verdict == Verified && res[i].Verdict != Verified {
			t.Errorf("sample %d: α-CROWN verifies, BaB says %v", i, res[i].Verdict)
		}
		if worst[i] <= 0 && res[i].Verdict == Verified {
			t.Errorf("sample %d: PGD breaks it, BaB verifies: UNSOUND", i)
		}
		if worst[i] < res[i].Margin-1e-9 {
			t.Errorf("sample %d: PGD reached %v below BaB's margin %v: UNSOUND", i, worst[i], res[i].Margin)
		}
		if res[i].Verdict == Falsified {
			checkCounterexample(t, g, r.Row(i), specs[i], res[i].Counterexample)
		}
	}
}
