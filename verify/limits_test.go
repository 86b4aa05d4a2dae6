package verify

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/verify/lp"
)

// TestRelaxSizeByHand: the net 3 → 4 → 5 → 2 with one zero weight in W1 (11
// nonzeros) and W2 full (20), under hand-picked pre-activation bounds: layer 1
// active, inactive, unstable, unstable; layer 2 unstable ×3, active, inactive.
//
//	LP of 2 ReLU layers: columns 3 + 2·4 + 2·5 = 21;
//	  rows 4 + 5 (affine) + (1 + 2·2) + (3·2 + 1) = 21;
//	  nonzeros (4 + 11) + (5 + 20) + (2 + 2·4) + (3·4 + 2) = 64.
//	LP of 1 ReLU layer with layer 2's pre-activations: columns 3 + 8 + 5 = 16;
//	  rows 4 + 5 + 5 = 14; nonzeros 15 + 25 + 10 = 50.
//
// relaxSize gives exactly that, and so does the LP buildRelax builds.
func TestRelaxSizeByHand(t *testing.T) {
	w1 := [][]float64{{1, 2, 0}, {1, -1, 1}, {0.5, 1, 1}, {-1, 1, 2}}
	w2 := make([][]float64, 5)
	for o := range w2 {
		w2[o] = []float64{1, -1, 0.5, float64(o + 1)}
	}
	w3 := [][]float64{{1, 1, 1, 1, 1}, {1, -1, 1, -1, 1}}
	g := dense(t, [][][]float64{w1, w2, w3}, [][]float64{make([]float64, 4), make([]float64, 5), make([]float64, 2)})
	net, err := extractLPNet(g, []int{3})
	if err != nil {
		t.Fatal(err)
	}
	lo := [][]float64{{1, -2, -1, -3}, {-1, -2, -0.5, 0.5, -4}}
	hi := [][]float64{{2, -1, 1, 0.5}, {1, 3, 0.25, 2, -1}}
	xlo, xhi := []float64{0, 0, 0}, []float64{1, 1, 1}
	for _, tc := range []struct {
		layers int
		pre    bool
		want   lpSize
	}{
		{2, false, lpSize{Rows: 21, Cols: 21, Nonzeros: 64}},
		{1, true, lpSize{Rows: 14, Cols: 16, Nonzeros: 50}},
	} {
		if got := relaxSize(net, 3, lo, hi, tc.layers, tc.pre); got != tc.want {
			t.Errorf("layers %d pre %v: relaxSize %+v, want %+v", tc.layers, tc.pre, got, tc.want)
		}
		p := buildRelax(net, xlo, xhi, lo, hi, tc.layers, tc.pre).p
		if built := (lpSize{Rows: len(p.RowLo), Cols: len(p.ColLo), Nonzeros: len(p.Values)}); built != tc.want {
			t.Errorf("layers %d pre %v: built %+v, want %+v", tc.layers, tc.pre, built, tc.want)
		}
	}
	if got := minRelaxNonzeros(net, 2); got != 15+25 {
		t.Errorf("minRelaxNonzeros %d, want 40", got)
	}
}

// TestRelaxSizeMatchesBuilt: on random MLPs under their α-CROWN bounds (a mix
// of stable and unstable neurons), the counted size is the built LP's, for the
// final LP and every LP-all tightening LP.
func TestRelaxSizeMatchesBuilt(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		g, r, specs := randomMLP(t, seed, 1)
		net, lo, hi := alphaBounds(t, g, r, specs)
		K := len(net.pre)
		unstable := 0
		for k := range lo {
			for o := range lo[k] {
				if lo[k][o] < 0 && hi[k][o] > 0 {
					unstable++
				}
			}
		}
		if unstable == 0 {
			t.Fatalf("seed %d: no unstable neuron: the test checks nothing", seed)
		}
		for layers := 0; layers <= K; layers++ {
			for _, pre := range []bool{false, true} {
				if pre && layers == K {
					continue
				}
				p := buildRelax(net, r.Lo.Data, r.Hi.Data, lo, hi, layers, pre).p
				built := lpSize{Rows: len(p.RowLo), Cols: len(p.ColLo), Nonzeros: len(p.Values)}
				if got := relaxSize(net, r.Lo.Len(), lo, hi, layers, pre); got != built {
					t.Errorf("seed %d layers %d pre %v: counted %+v, built %+v", seed, layers, pre, got, built)
				}
			}
		}
	}
}

// alphaBounds returns the LP network of g and the α-CROWN pre-activation bounds
// of the single sample of r, computed as LP.lpBounds computes them.
func alphaBounds(t *testing.T, g *nets.Graph, r Region, specs []bounds.Spec) (*lpNet, [][]float64, [][]float64) {
	t.Helper()
	net, err := extractLPNet(g, r.Lo.Shape[1:])
	if err != nil {
		t.Fatal(err)
	}
	opt := bounds.AlphaOptions{Options: bounds.Options{IntermediateAlpha: DefaultAlphaIterations}, Iterations: DefaultAlphaIterations, LR: DefaultAlphaLR}
	res, err := bounds.AlphaCROWN(g, bounds.Box{Lo: r.Lo, Hi: r.Hi}, specs, opt)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := make([][]float64, len(net.pre)), make([][]float64, len(net.pre))
	for k, name := range net.pre {
		lo[k] = append([]float64(nil), res.Nodes[name].Lo.Data...)
		hi[k] = append([]float64(nil), res.Nodes[name].Hi.Data...)
	}
	return net, lo, hi
}

// gapProperty finds, on random 2-16-16-3 MLPs, a sample and a one-row spec that
// the LP verifies and α-CROWN does not: D is set halfway between the two
// bounds of the row C·y.
func gapProperty(t *testing.T) (*nets.Graph, Region, bounds.Spec) {
	t.Helper()
	ctx := context.Background()
	for seed := uint64(1); seed <= 20; seed++ {
		g, r, specs := randomMLP(t, seed, 1)
		s := bounds.Spec{C: specs[0].C[:1], D: []float64{0}}
		lpb, alpha, _, err := LP{}.lpBounds(ctx, g, r, []bounds.Spec{s})
		if err != nil {
			t.Fatal(err)
		}
		if gap := lpb[0][0] - alpha[0][0]; gap > 1e-3 {
			s.D[0] = -(lpb[0][0] + alpha[0][0]) / 2
			return g, r, s
		}
	}
	t.Fatal("no random MLP where the LP beats α-CROWN by 1e-3")
	return nil, Region{}, bounds.Spec{}
}

// TestLPSizeGuard: with the limit one below the nonzeros of the sample's LP
// (counted by building it), LP gives α-CROWN's answer, Unknown with reason "lp
// size"; at the limit, exactly the unlimited answer (Verified). LP-all: one
// below the affine rows alone → "lp size"; at the final LP's size (every
// tightening LP is smaller) → the unlimited answer.
func TestLPSizeGuard(t *testing.T) {
	ctx := context.Background()
	g, r, s := gapProperty(t)
	net, lo, hi := alphaBounds(t, g, r, []bounds.Spec{s})
	n := len(buildRelax(net, r.Lo.Data, r.Hi.Data, lo, hi, len(net.pre), false).p.Values)
	_, alpha, _, err := LP{}.lpBounds(ctx, g, r, []bounds.Spec{s}) // the α-CROWN bounds LP keeps
	if err != nil {
		t.Fatal(err)
	}
	for _, all := range []bool{false, true} {
		free, err := LP{All: all}.Verify(ctx, g, r, s)
		if err != nil {
			t.Fatal(err)
		}
		if free.Verdict != Verified || free.Reason != "" {
			t.Fatalf("all %v: unlimited LP %+v, want verified", all, free)
		}
		below := n - 1
		if all {
			below = minRelaxNonzeros(net, len(net.pre)) - 1
		}
		got, err := LP{All: all, MaxNonzeros: below}.Verify(ctx, g, r, s)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("all %v: LP of %d nonzeros; limit %d: %v %q margin %.5f (α-CROWN %.5f); unlimited %v %.5f",
			all, n, below, got.Verdict, got.Reason, got.Margin, alpha[0][0], free.Verdict, free.Margin)
		if got.Verdict != Unknown || got.Reason != ReasonLPSize {
			t.Errorf("all %v, limit %d: %v %q, want unknown %q", all, below, got.Verdict, got.Reason, ReasonLPSize)
		}
		if got.Margin != alpha[0][0] {
			t.Errorf("all %v, limit %d: margin %v, want α-CROWN's %v", all, below, got.Margin, alpha[0][0])
		}
		at, err := LP{All: all, MaxNonzeros: n}.Verify(ctx, g, r, s)
		if err != nil {
			t.Fatal(err)
		}
		if at.Verdict != free.Verdict || at.Reason != "" || at.Margin != free.Margin {
			t.Errorf("all %v, limit %d: %+v, want the unlimited %+v", all, n, at, free)
		}
	}
	// A sample α-CROWN verifies stays verified whatever the LP limit.
	s.D[0] += 1
	got, err := LP{MaxNonzeros: 1}.Verify(ctx, g, r, s)
	if err != nil || got.Verdict != Verified || got.Reason != "" {
		t.Errorf("α-CROWN-verified sample with limit 1: %+v, %v; want verified", got, err)
	}
	if _, err := (LP{MaxNonzeros: -1}).Verify(ctx, g, r, s); err == nil || !strings.Contains(err.Error(), "LP size limit -1") {
		t.Errorf("negative limit: %v", err)
	}
}

// splitProperty finds, on the tiny 2-h1-h2-3 MLPs of TestBaBTinyNets, a spec
// that α-CROWN does not verify and BaB verifies after bounding at least 4
// domains: its exact minimum (bruteMin) is set to a small d > 0.
func splitProperty(t *testing.T) (*nets.Graph, Region, bounds.Spec, Result) {
	t.Helper()
	ctx := context.Background()
	r := Region{Lo: nets.FromData([]float64{-1, -1}, 1, 2), Hi: nets.FromData([]float64{1, 1}, 1, 2)}
	for seed := uint64(1); seed <= 12; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		g, err := nets.MLP(rng, []int{2}, 5, 5, 3)
		if err != nil {
			t.Fatal(err)
		}
		C := [][]float64{{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}}
		net, err := extractLPNet(g, []int{2})
		if err != nil {
			t.Fatal(err)
		}
		exact, _ := bruteMin(t, net, r.Lo.Data, r.Hi.Data, bounds.Spec{C: C, D: []float64{0}})
		for _, d := range []float64{0.01, 0.03, 0.1} {
			s := bounds.Spec{C: C, D: []float64{-exact + d}}
			alpha, err := AlphaCROWN{}.Verify(ctx, g, r, s)
			if err != nil {
				t.Fatal(err)
			}
			res, err := BaB{}.Verify(ctx, g, r, s)
			if err != nil {
				t.Fatal(err)
			}
			if alpha.Verdict == Unknown && res.Verdict == Verified && res.Nodes >= 4 {
				return g, r, s, res
			}
		}
	}
	t.Fatal("no tiny MLP property that needs splitting")
	return nil, Region{}, bounds.Spec{}, Result{}
}

// TestBaBDomainLimit: on a property BaB verifies only by splitting, one open
// domain (the root, which cannot be split into two) gives Unknown "bab
// domains" without bounding anything; two give that reason after bounding
// some; a limit above the unlimited search's need gives its very answer.
// Timeout and MaxNodes give "timeout" and "bab nodes".
func TestBaBDomainLimit(t *testing.T) {
	ctx := context.Background()
	g, r, s, free := splitProperty(t)
	t.Logf("unlimited: %v margin %.5f after %d domains", free.Verdict, free.Margin, free.Nodes)
	for _, tc := range []struct {
		v      BaB
		reason string
		nodes  int
	}{
		{BaB{MaxDomains: 1}, ReasonBaBDomains, 0},
		{BaB{MaxDomains: 1 << 20}, "", free.Nodes},
		{BaB{Timeout: time.Nanosecond}, ReasonTimeout, 0},
		{BaB{MaxNodes: 2, Batch: 1}, ReasonBaBNodes, 2},
	} {
		got, err := tc.v.Verify(ctx, g, r, s)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v: %v %q margin %.5f, %d domains", tc.v, got.Verdict, got.Reason, got.Margin, got.Nodes)
		if tc.reason == "" {
			if got.Verdict != free.Verdict || got.Margin != free.Margin || got.Nodes != free.Nodes || got.Reason != "" {
				t.Errorf("%+v: %+v, want the unlimited %+v", tc.v, got, free)
			}
			continue
		}
		if got.Verdict != Unknown || got.Reason != tc.reason || got.Nodes != tc.nodes {
			t.Errorf("%+v: %v %q after %d domains, want unknown %q after %d", tc.v, got.Verdict, got.Reason, got.Nodes, tc.reason, tc.nodes)
		}
		if got.Margin > free.Margin+1e-9 || got.Margin > 0 {
			t.Errorf("%+v: margin %v above the complete search's %v, or positive", tc.v, got.Margin, free.Margin)
		}
	}
	// Two open domains: the search goes on while a split's children settle
	// (the unlimited search needs more than 2 at once: it bounds 2·32 at a time).
	got, err := BaB{MaxDomains: 2}.Verify(ctx, g, r, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MaxDomains 2: %v %q margin %.5f, %d domains", got.Verdict, got.Reason, got.Margin, got.Nodes)
	if got.Verdict != Unknown || got.Reason != ReasonBaBDomains || got.Nodes < 2 {
		t.Errorf("2 domains: %v %q after %d domains, want unknown %q after ≥ 2", got.Verdict, got.Reason, got.Nodes, ReasonBaBDomains)
	}
	if _, err := (BaB{MaxDomains: -1}).Verify(ctx, g, r, s); err == nil {
		t.Error("negative domain limit accepted")
	}
}

// TestCancelled: a context already ended, or ending in the middle of the work
// (LP-all and BaB on three MNIST samples take seconds), makes every verifier
// return its error promptly, not a result.
func TestCancelled(t *testing.T) {
	g, _, specs, r := shippedMLPSamples(t, 3, 0.02)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for _, v := range []BatchVerifier{IBP{}, CROWN{}, AlphaCROWN{}, LP{}, LP{All: true}, BaB{}} {
		if _, err := v.VerifyBatch(done, g, r, specs); !errors.Is(err, context.Canceled) {
			t.Errorf("%s, cancelled context: error %v", v.Name(), err)
		}
	}
	if testing.Short() {
		return
	}
	for _, v := range []BatchVerifier{LP{All: true}, BaB{}} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		res, err := v.VerifyBatch(ctx, g, LinfRegion(r.centres([]int{0, 1, 2}), 0.05, 0, 1), specs)
		took := time.Since(start)
		cancel()
		t.Logf("%s: deadline 300ms, returned after %v: %v", v.Name(), took, err)
		// BaB keeps what it decided before the deadline once alpha-CROWN is done:
		// the others are unknown for lack of time, without an error.
		if _, bab := v.(BaB); bab && err == nil {
			for i, x := range res {
				if x.Verdict == Unknown && x.Reason != ReasonTimeout {
					t.Errorf("bab: sample %d unknown for %q after the deadline, want %q", i, x.Reason, ReasonTimeout)
				}
			}
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: error %v, want the deadline's", v.Name(), err)
		}
		if took > 3*time.Second {
			t.Errorf("%s: returned %v after a 300ms deadline", v.Name(), took)
		}
	}
}

// BenchmarkLPBytesPerNonzero measures what one LP costs to build and load
// into the solver per nonzero: a dense 2-layer lpNet (in → m → m) with every
// neuron unstable, as buildRelax and lp.Solver.Load see it. Reported: Go bytes
// allocated and the growth of the process's peak resident memory (which
// includes CLP's C copies) per nonzero, and the seconds of build and load.
// Run with: go test ./verify/ -run '^$' -bench LPBytesPerNonzero -benchtime 1x
// (LP_BENCH_M sets m, default 1000: about 2 million nonzeros; LP_BENCH_SOLVE=1
// also times one solve).
func BenchmarkLPBytesPerNonzero(b *testing.B) {
	m := 1000
	if v, err := strconv.Atoi(os.Getenv("LP_BENCH_M")); err == nil && v > 0 {
		m = v
	}
	in := m
	rng := rand.New(rand.NewPCG(1, 1))
	net := &lpNet{}
	dims := []int{in, m, m}
	for k := 0; k < 2; k++ {
		a := lpAffine{in: dims[k], W: make([]float64, dims[k+1]*dims[k]), b: make([]float64, dims[k+1])}
		for i := range a.W {
			a.W[i] = rng.NormFloat64()
		}
		a.nnz = len(a.W)
		net.affine = append(net.affine, a)
		net.pre = append(net.pre, "z")
	}
	net.affine = append(net.affine, lpAffine{in: m, W: make([]float64, m), b: make([]float64, 1)})
	lo, hi := [][]float64{make([]float64, m), make([]float64, m)}, [][]float64{make([]float64, m), make([]float64, m)}
	for k := range lo {
		for o := range lo[k] {
			lo[k][o], hi[k][o] = -1, 1
		}
	}
	xlo, xhi := make([]float64, in), make([]float64, in)
	for i := range xhi {
		xhi[i] = 1
	}
	size := relaxSize(net, in, lo, hi, 2, false)
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rss0 := peakRSS()
		start := time.Now()
		relax := buildRelax(net, xlo, xhi, lo, hi, 2, false)
		built := time.Since(start)
		s := lp.New()
		if err := s.Load(relax.p); err != nil {
			b.Fatal(err)
		}
		loaded := time.Since(start)
		runtime.ReadMemStats(&after)
		rss1 := peakRSS()
		if os.Getenv("LP_BENCH_SOLVE") != "" {
			// One solve: minimise the sum of the last ReLU layer's outputs.
			obj := make([]float64, relax.p.NumCols())
			for o := 0; o < m; o++ {
				obj[relax.base+o] = 1
			}
			t0 := time.Now()
			if _, _, err := relax.minimise(context.Background(), s, obj, 0); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(time.Since(t0).Seconds(), "solve-s")
		}
		s.Close()
		nz := float64(size.Nonzeros)
		b.ReportMetric(nz, "nonzeros")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/nz, "go-bytes/nz")
		b.ReportMetric(float64(rss1-rss0)/nz, "peak-rss-bytes/nz")
		b.ReportMetric(built.Seconds(), "build-s")
		b.ReportMetric(loaded.Seconds(), "build+load-s")
	}
}

// peakRSS is the process's peak resident memory in bytes (getrusage; Linux
// reports kilobytes).
func peakRSS() int64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return u.Maxrss * 1024
}

// TestBaBLeafLPLimit: a leaf (no unstable neuron) of the hand net of
// TestRelaxSizeByHand, layer 1 active, inactive, active, active and layer 2
// active ×3, inactive, active, has an LP of (4 + 11) + (5 + 20) + 3·2 + 4·2 =
// 54 nonzeros. With a leaf limit of 53 it is not built: the leaf is stuck at
// its bound and the search remembers why; with 54 it is built and solved.
func TestBaBLeafLPLimit(t *testing.T) {
	w1 := [][]float64{{1, 2, 0}, {1, -1, 1}, {0.5, 1, 1}, {-1, 1, 2}}
	w2 := make([][]float64, 5)
	for o := range w2 {
		w2[o] = []float64{1, -1, 0.5, float64(o + 1)}
	}
	w3 := [][]float64{{1, 1, 1, 1, 1}, {1, -1, 1, -1, 1}}
	g := dense(t, [][][]float64{w1, w2, w3}, [][]float64{{0, 0, 0, 0}, {0, 0, 0, 0, 0}, {0, 0}})
	net, err := extractLPNet(g, []int{3})
	if err != nil {
		t.Fatal(err)
	}
	lo := [][]float64{{1, -2, 0.5, 0.25}, {0.5, 1, 0.5, -3, 0.1}}
	hi := [][]float64{{2, -1, 1, 0.5}, {1, 3, 0.75, -1, 2}}
	if got := relaxSize(net, 3, lo, hi, 2, false).Nonzeros; got != 54 {
		t.Fatalf("leaf LP: %d nonzeros, want 54", got)
	}
	spec := bounds.Spec{C: [][]float64{{1, -1}}, D: []float64{0}}
	for _, tc := range []struct {
		limit   int
		skipped bool
	}{{53, true}, {54, false}} {
		s := &babSearch{g: g, net: net, spec: spec, shape: []int{3}, xlo: []float64{0, 0, 0}, xhi: []float64{0.1, 0.1, 0.1}, maxLP: tc.limit}
		s.verifiedLB, s.stuck = math.Inf(1), math.Inf(1)
		d := &babDomain{lo: lo, hi: hi, rows: []int{0}, bound: -0.5, proven: math.Inf(1), layer: -1}
		if _, err := s.exactLP(d); err != nil {
			t.Fatal(err)
		}
		if s.lpSkipped != tc.skipped {
			t.Errorf("limit %d: skipped %v, want %v", tc.limit, s.lpSkipped, tc.skipped)
		}
		if tc.skipped && s.stuck != -0.5 {
			t.Errorf("limit %d: stuck at %v, want the leaf's bound -0.5", tc.limit, s.stuck)
		}
	}
}

// A deadline stops LP in the middle of a long CLP solve (lp.SolveContext), not
// after it: on a random 100-600-600-10 MLP at a radius that leaves every neuron
// unstable, one spec row's LP takes seconds; the verifier returns soon after
// the deadline with its error.
func TestLPSolveStopsAtDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("a long LP")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	g, err := nets.MLP(rng, []int{100}, 600, 600, 10)
	if err != nil {
		t.Fatal(err)
	}
	x := nets.NewTensor(1, 100)
	for i := range x.Data {
		x.Data[i] = rng.Float64()
	}
	z, err := g.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := bounds.RobustnessSpec(10, z.Argmax()[0])
	if err != nil {
		t.Fatal(err)
	}
	r := LinfRegion(x, 0.5, 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = LP{}.VerifyBatch(ctx, g, r, []bounds.Spec{spec})
	took := time.Since(start)
	t.Logf("deadline 1.5s: returned after %v: %v", took, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the deadline's (did the LP finish in time? then the test needs a bigger one)", err)
	}
	if took > 4*time.Second {
		t.Errorf("returned %v after a 1.5 s deadline: the solve was not stopped", took)
	}
}

// A per-sample Timeout that ends BaB's search at any point (between two
// bounding batches, or in one: bounds stops there too) gives Unknown "timeout"
// with a margin no higher than alpha-CROWN's proof allows, never an error.
func TestBaBTimeoutAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST MLP")
	}
	g, _, specs, r := shippedMLPSamples(t, 1, 0.02)
	one := LinfRegion(r.centres([]int{0}), 0.02, 0, 1) // sample 0 needs a long search
	for _, timeout := range []time.Duration{20 * time.Millisecond, 45 * time.Millisecond, 70 * time.Millisecond, 110 * time.Millisecond, 150 * time.Millisecond, 230 * time.Millisecond, 300 * time.Millisecond} {
		got, err := BaB{Timeout: timeout}.Verify(context.Background(), g, one, specs[0])
		if err != nil {
			t.Fatalf("timeout %v: %v", timeout, err)
		}
		t.Logf("timeout %v: %v %q margin %.4f after %d domains", timeout, got.Verdict, got.Reason, got.Margin, got.Nodes)
		if got.Verdict != Unknown || got.Reason != ReasonTimeout || got.Margin > 0 {
			t.Errorf("timeout %v: %v %q margin %v, want unknown %q with a margin <= 0", timeout, got.Verdict, got.Reason, got.Margin, ReasonTimeout)
		}
	}
}
