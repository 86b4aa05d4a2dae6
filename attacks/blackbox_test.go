package attacks

import (
	"context"
	"errors"
	"math"
	"runtime"
	"sync"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// bbCounter wraps a model and counts the rows it evaluates and its largest call.
type bbCounter struct {
	m        nets.Classifier
	mu       sync.Mutex
	rows     int
	maxBatch int
}

func (c *bbCounter) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	c.mu.Lock()
	c.rows += x.Shape[0]
	c.maxBatch = max(c.maxBatch, x.Shape[0])
	c.mu.Unlock()
	return c.m.Logits(x)
}

// bbLinear is a 3-class linear model z = (w·x + c, 0, −100) on 16 features and a
// batch of rows x_i = 0.5 + t_i·sign(w) labelled 0. With c = −0.5·Σw the margin of
// row i is t_i‖w‖₁, so its smallest L∞ adversarial distance is exactly t_i (move
// every feature by t_i against sign(w); all such points stay inside [0,1]) and its
// smallest L2 distance t_i‖w‖₁/‖w‖₂.
type bbLinear struct {
	g      *nets.Graph
	w      []float64
	x      *nets.Tensor
	labels []int
	t      []float64 // L∞ distances to the boundary
	l1, l2 float64   // ‖w‖₁, ‖w‖₂
}

func newBBLinear(tb testing.TB, t ...float64) bbLinear {
	const d = 16
	w := make([]float64, d)
	sum, l1, l2 := 0.0, 0.0, 0.0
	for j := range w {
		w[j] = (0.5 + float64(j)/16) * float64(1-2*(j%2)) // ±(0.5…1.44)
		if j%5 == 0 {
			w[j] = -w[j]
		}
		sum += w[j]
		l1 += math.Abs(w[j])
		l2 += w[j] * w[j]
	}
	zero := make([]float64, d)
	g := linearModel(tb, [][]float64{w, zero, zero}, []float64{-0.5 * sum, 0, -100})
	x := nets.NewTensor(len(t), d)
	for i, ti := range t {
		for j := range w {
			x.Data[i*d+j] = 0.5 + ti*math.Copysign(1, w[j])
		}
	}
	return bbLinear{g: g, w: w, x: x, labels: make([]int, len(t)), t: t, l1: l1, l2: math.Sqrt(l2)}
}

// bbCase is one black-box attack configured for a budget.
type bbCase struct {
	name    string
	attack  Detailed
	budget  Budget
	queries int // the attack's query budget per row
}

// bbCases returns every black-box attack of this package at radius eps (L∞) or
// eps2 (L2), with small query budgets.
func bbCases(lo, hi, eps, eps2 float64, queries int, seed uint64) []bbCase {
	linf := Budget{Norm: LInf, Eps: eps, Lo: lo, Hi: hi}
	l2 := Budget{Norm: L2, Eps: eps2, Lo: lo, Hi: hi}
	sq := NewSquare(linf, seed)
	sq.Queries = queries
	nes := NewNES(linf, seed)
	nes.Queries = queries
	nes2 := NewNES(l2, seed)
	nes2.Queries = queries
	spsa := NewSPSA(linf, seed)
	spsa.Queries = queries
	hsj := NewHopSkipJump(linf, seed)
	hsj.Queries = queries
	hsj2 := NewHopSkipJump(l2, seed)
	hsj2.Queries = queries
	gen := NewGenetic(linf, seed)
	gen.Queries = queries
	sb := NewSimBA(linf, seed)
	sb.Queries = queries
	sb2 := NewSimBA(l2, seed)
	sb2.Queries = queries
	sb2.Step = eps // pixel steps the size of the L∞ radius: see TestBlackBoxLinear
	return []bbCase{
		{"square", sq, linf, queries},
		{"nes", nes, linf, queries},
		{"nes-l2", nes2, l2, queries},
		{"spsa", spsa, linf, queries},
		{"hopskipjump", hsj, linf, queries},
		{"hopskipjump-l2", hsj2, l2, queries},
		{"genetic", gen, linf, queries},
		{"simba", sb, linf, queries},
		{"simba-l2", sb2, l2, queries},
	}
}

// TestBlackBoxLinear: on the linear model every attack breaks the rows whose
// distance to the boundary is at most 2/3 of the radius, cannot break the row
// beyond it, never reports a distance below the exact minimum, and counts every
// row the model evaluates (the counter sees the attack's queries plus Check's one
// call), each call at most bbChunk rows.
//
// SimBA-pixel in L2 is not norm-efficient (each coordinate moves by α at most), so
// its case steps by α = 0.1, the L∞ radius: the L2 radius 0.1‖w‖₁/‖w‖₂ ≈ 0.377 pays
// for 14 such steps, whose coordinates — whichever 14 of the 16 — lower the margin
// by at least 0.1(‖w‖₁ − 2·max|w_j|) ≈ 0.081‖w‖₁, enough for the first three rows.
func TestBlackBoxLinear(t *testing.T) {
	lin := newBBLinear(t, 0.02, 0.05, 0.065, 0.15)
	const eps = 0.1
	eps2 := eps * lin.l1 / lin.l2 // the same rows breakable in L2
	for _, c := range bbCases(0, 1, eps, eps2, 3000, 7) {
		t.Run(c.name, func(t *testing.T) {
			cm := &bbCounter{m: lin.g}
			r, err := c.attack.Attack(context.Background(), cm, lin.x, lin.labels)
			if err != nil {
				t.Fatal(err)
			}
			sum := 0
			for i, ti := range lin.t {
				min := ti
				if c.budget.Norm == L2 {
					min = ti * lin.l1 / lin.l2
				}
				want := min <= c.budget.Eps/1.5
				if r.Success[i] != want {
					t.Errorf("row %d (minimal distance %.4g, radius %.4g): success %v, want %v", i, min, c.budget.Eps, r.Success[i], want)
				}
				if r.Success[i] && (r.Dist[i] < min*(1-1e-9) || r.Dist[i] > c.budget.Eps*(1+1e-9)) {
					t.Errorf("row %d: distance %.6g outside [%.6g, %.6g]", i, r.Dist[i], min, c.budget.Eps)
				}
				if r.Queries[i] < 1 || r.Queries[i] > c.queries {
					t.Errorf("row %d: %d queries, budget %d", i, r.Queries[i], c.queries)
				}
				sum += r.Queries[i]
			}
			if cm.rows != sum+len(lin.t) {
				t.Errorf("model evaluated %d rows; queries %d + Check's %d", cm.rows, sum, len(lin.t))
			}
			if cm.maxBatch > bbChunk {
				t.Errorf("a model call of %d rows > %d", cm.maxBatch, bbChunk)
			}
		})
	}
}

// TestBlackBoxBudgets: tiny query budgets are respected to the query, and a row
// the model already misclassifies costs one query at distance 0.
func TestBlackBoxBudgets(t *testing.T) {
	lin := newBBLinear(t, 0.3, -0.01) // row 1 starts misclassified
	for _, q := range []int{1, 2, 7, 60} {
		for _, c := range bbCases(0, 1, 0.1, 0.1, q, 3) {
			r, err := c.attack.Attack(context.Background(), lin.g, lin.x, lin.labels)
			if err != nil {
				t.Fatalf("%s, %d queries: %v", c.name, q, err)
			}
			if r.Success[0] || r.Queries[0] > q {
				t.Errorf("%s, %d queries: row 0 success %v with %d queries", c.name, q, r.Success[0], r.Queries[0])
			}
			if !r.Success[1] || r.Queries[1] != 1 || r.Dist[1] != 0 {
				t.Errorf("%s, %d queries: misclassified row: success %v, %d queries, distance %g; want true, 1, 0",
					c.name, q, r.Success[1], r.Queries[1], r.Dist[1])
			}
		}
	}
}

// TestBlackBoxDeterministic: the same seed gives the same points and query counts
// on one core and on two, on the shipped MLP — 17 rows for the lockstep attacks
// (Square L∞ and L2, SimBA: two chunks), 4 for the others; a different seed gives
// different points or counts.
func TestBlackBoxDeterministic(t *testing.T) {
	g, x17, l17 := shippedMLP(t, 17)
	x4 := nets.FromData(x17.Data[:4*784], 4, 1, 28, 28)
	run := func(c bbCase, procs int) *Result {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		x, labels := x4, l17[:4]
		if c.name == "square" || c.name == "square-l2" || c.name == "simba" || c.name == "simba-l2" {
			x, labels = x17, l17
		}
		r, err := c.attack.Attack(context.Background(), g, x, labels)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		return r
	}
	a, b := bbCases(0, 1, 0.1, 3, 500, 5), bbCases(0, 1, 0.1, 3, 500, 6)
	for k, seed := range []uint64{5, 6} {
		l2 := Budget{Norm: L2, Eps: 1.5, Lo: 0, Hi: 1}
		c := bbCase{"square-l2", Square{Budget: l2, Queries: 500, Seed: seed}, l2, 500}
		if k == 0 {
			a = append(a, c)
		} else {
			b = append(b, c)
		}
	}
	for k, c := range a {
		r1, r2 := run(c, 1), run(c, 2)
		for i := range r1.Queries {
			if r1.Queries[i] != r2.Queries[i] || r1.Success[i] != r2.Success[i] {
				t.Errorf("%s row %d: 1 core %d queries (success %v), 2 cores %d (%v)",
					c.name, i, r1.Queries[i], r1.Success[i], r2.Queries[i], r2.Success[i])
			}
		}
		for j := range r1.Adv.Data {
			if r1.Adv.Data[j] != r2.Adv.Data[j] {
				t.Errorf("%s: points differ at %d: %v vs %v", c.name, j, r1.Adv.Data[j], r2.Adv.Data[j])
				break
			}
		}
		r3 := run(b[k], 2)
		same, wins := true, 0
		for i := range r1.Queries {
			same = same && r1.Queries[i] == r3.Queries[i]
			if r1.Success[i] {
				wins++
			}
		}
		for j := range r1.Adv.Data {
			same = same && r1.Adv.Data[j] == r3.Adv.Data[j]
		}
		if same {
			t.Errorf("%s: seeds 5 and 6 gave the same points and query counts", c.name)
		}
		t.Logf("%s: %d of %d rows broken", c.name, wins, len(r1.Success))
	}
}

// TestBlackBoxErrors: bad inputs are errors, not panics.
func TestBlackBoxErrors(t *testing.T) {
	lin := newBBLinear(t, 0.1)
	ok := Budget{Norm: LInf, Eps: 0.1, Lo: 0, Hi: 1}
	outside := lin.x.Clone()
	outside.Data[3] = 1.5
	cases := []struct {
		name   string
		a      Detailed
		x      *nets.Tensor
		labels []int
	}{
		{"square L2 on flat samples", NewSquare(Budget{Norm: L2, Eps: 1, Lo: 0, Hi: 1}, 1), lin.x, lin.labels},
		{"square L1", NewSquare(Budget{Norm: L1, Eps: 1, Lo: 0, Hi: 1}, 1), lin.x, lin.labels},
		{"genetic L1", NewGenetic(Budget{Norm: L1, Eps: 1, Lo: 0, Hi: 1}, 1), lin.x, lin.labels},
		{"nes negative eps", NewNES(Budget{Norm: LInf, Eps: -1, Lo: 0, Hi: 1}, 1), lin.x, lin.labels},
		{"nes odd samples", NES{Budget: ok, Samples: 3}, lin.x, lin.labels},
		{"hsj labels", NewHopSkipJump(ok, 1), lin.x, []int{0, 0}},
		{"square label range", NewSquare(ok, 1), lin.x, []int{7}},
		{"genetic outside domain", NewGenetic(ok, 1), outside, lin.labels},
		{"square p", Square{Budget: ok, PInit: 2}, lin.x, lin.labels},
		{"transfer without surrogate", Transfer{Budget: ok}, lin.x, lin.labels},
	}
	for _, c := range cases {
		if _, err := c.a.Attack(context.Background(), lin.g, c.x, c.labels); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

// TestBlackBoxCancel: a cancelled context stops every attack with its error.
func TestBlackBoxCancel(t *testing.T) {
	lin := newBBLinear(t, 0.3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range bbCases(0, 1, 0.1, 0.1, 1000, 1) {
		if _, err := c.attack.Attack(ctx, lin.g, lin.x, lin.labels); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: error %v, want context.Canceled", c.name, err)
		}
	}
}

func TestBBMarginFooled(t *testing.T) {
	for _, c := range []struct {
		z      []float64
		y      int
		margin float64
		fooled bool
	}{
		{[]float64{3, 1, 2}, 0, 1, false},
		{[]float64{3, 1, 2}, 2, -1, true},
		{[]float64{2, 2, 0}, 1, 0, true}, // a tie goes to the first maximum, as Argmax
		{[]float64{2, 2, 0}, 0, 0, false},
	} {
		if m := bbMargin(c.z, c.y); m != c.margin {
			t.Errorf("margin(%v, %d) = %g, want %g", c.z, c.y, m, c.margin)
		}
		if f := bbFooled(c.z, c.y); f != c.fooled {
			t.Errorf("fooled(%v, %d) = %v, want %v", c.z, c.y, f, c.fooled)
		}
	}
}

// bbRecorder wraps a model and keeps a copy of every row it evaluates, in order.
// Only for single-row batches run on one goroutine.
type bbRecorder struct {
	m    nets.Classifier
	rows [][]float64
}

func (r *bbRecorder) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	per := x.Len() / x.Shape[0]
	for i := 0; i < x.Shape[0]; i++ {
		r.rows = append(r.rows, append([]float64(nil), x.Data[i*per:(i+1)*per]...))
	}
	return r.m.Logits(x)
}

// bbFlat is the linear classifier z = W·vec(x) + b on samples of any shape, for
// attacks that care about the layout (Square's windows).
type bbFlat struct {
	w [][]float64
	b []float64
}

func (f bbFlat) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	n := x.Shape[0]
	per := x.Len() / n
	out := nets.NewTensor(n, len(f.w))
	for i := 0; i < n; i++ {
		for k, wk := range f.w {
			s := f.b[k]
			for j, v := range x.Data[i*per : (i+1)*per] {
				s += wk[j] * v
			}
			out.Data[i*len(f.w)+k] = s
		}
	}
	return out, nil
}

// margins is the margin of every recorded row under f, computed here directly.
func (f bbFlat) margins(rows [][]float64, y int) []float64 {
	out := make([]float64, len(rows))
	for r, p := range rows {
		z := make([]float64, len(f.w))
		for k, wk := range f.w {
			z[k] = f.b[k]
			for j, v := range p {
				z[k] += wk[j] * v
			}
		}
		best := math.Inf(-1)
		for k, v := range z {
			if k != y {
				best = math.Max(best, v)
			}
		}
		out[r] = z[y] - best
	}
	return out
}

// bbPGDBroken returns which rows a strong white-box PGD (40 steps of 0.01, or
// 2.5ε/40 for L2, 2 random restarts, margin loss) breaks within budget b.
func bbPGDBroken(t *testing.T, m nets.Classifier, x *nets.Tensor, labels []int, b Budget) []bool {
	t.Helper()
	p := NewPGD(b, 1)
	p.Restarts = 2
	p.Loss = nets.Margin{}
	r, err := p.Attack(context.Background(), m, x, labels)
	if err != nil {
		t.Fatal(err)
	}
	return r.Success
}

// bbAgainstPGD runs a on the first n shipped-MLP samples and checks it breaks at
// least frac of the rows PGD breaks within b, within its query budget.
func bbAgainstPGD(t *testing.T, a Detailed, b Budget, n int, frac float64, budget int) {
	t.Helper()
	g, x, labels := shippedMLP(t, n)
	broken := bbPGDBroken(t, g, x, labels, b)
	r, err := a.Attack(context.Background(), g, x, labels)
	if err != nil {
		t.Fatal(err)
	}
	nb, both := 0, 0
	for i, b := range broken {
		if r.Queries[i] > budget {
			t.Errorf("row %d: %d queries, budget %d", i, r.Queries[i], budget)
		}
		if b {
			nb++
			if r.Success[i] {
				both++
			}
		}
	}
	t.Logf("%s: %d of the %d rows PGD breaks (of %d); queries %v", a.Name(), both, nb, n, r.Queries)
	if nb == 0 || float64(both) < frac*float64(nb) {
		t.Errorf("%s broke %d of the %d rows PGD breaks, want ≥ %.0f%%", a.Name(), both, nb, 100*frac)
	}
}
