package lp

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

var inf = math.Inf(1)

// dense builds a Problem from a dense row-major matrix (zeros skipped).
func dense(obj, colLo, colHi []float64, a [][]float64, rowLo, rowHi []float64) *Problem {
	p := &Problem{Obj: obj, ColLo: colLo, ColHi: colHi, RowLo: rowLo, RowHi: rowHi, ColStart: []int{0}}
	for j := range obj {
		for i := range a {
			if a[i][j] != 0 {
				p.RowIndex = append(p.RowIndex, i)
				p.Values = append(p.Values, a[i][j])
			}
		}
		p.ColStart = append(p.ColStart, len(p.RowIndex))
	}
	return p
}

// backend names a Solver constructor under test.
type backend struct {
	name string
	new  func() Solver
}

// Hand-solved problems; the derivations are in the comments.
var knownTests = []struct {
	name string
	p    *Problem
	want Status
	x    []float64
	obj  float64
}{
	{
		// Vertices (0,0),(3,0),(3,1),(0,2) give 0,−6,−7,−2.
		name: "inequalities",
		p: dense([]float64{-2, -1}, []float64{0, 0}, []float64{3, inf},
			[][]float64{{1, 1}, {1, 3}}, []float64{-inf, -inf}, []float64{4, 6}),
		want: Optimal, x: []float64{3, 1}, obj: -7,
	},
	{
		// z = 1−x−y turns the objective into 1+y with −2 ≤ x+y ≤ 1 and
		// −2 ≤ x−y ≤ 2: y ≥ max(−2−x, x−2) is least, −2, only at x = 0.
		name: "equality, range, free variable",
		p: dense([]float64{1, 2, 1}, []float64{-1, -inf, 0}, []float64{5, inf, 3},
			[][]float64{{1, 1, 1}, {1, -1, 0}}, []float64{1, -2}, []float64{1, 2}),
		want: Optimal, x: []float64{0, -2, 3}, obj: -1,
	},
	{
		// x ≥ −3−y ≥ −4 with y ≤ 1.
		name: "negative lower bounds",
		p: dense([]float64{1, 0}, []float64{-5, -1}, []float64{inf, 1},
			[][]float64{{1, 1}}, []float64{-3}, []float64{inf}),
		want: Optimal, x: []float64{-4, 1}, obj: -4,
	},
	{
		// x has only an upper bound (7) and the row caps it: x = 1 − y at the
		// optimum, so the objective is 2y − 1, least at y = 0.5.
		name: "upper bound only",
		p: dense([]float64{-1, 1}, []float64{-inf, 0.5}, []float64{7, 2},
			[][]float64{{1, 1}}, []float64{-inf}, []float64{1}),
		want: Optimal, x: []float64{0.5, 0.5}, obj: 0,
	},
	{
		name: "no rows",
		p:    dense([]float64{1, -1}, []float64{1, -2}, []float64{2, 3}, nil, nil, nil),
		want: Optimal, x: []float64{1, 3}, obj: -2,
	},
	{
		name: "free row is ignored",
		p: dense([]float64{1}, []float64{-1}, []float64{1},
			[][]float64{{1}}, []float64{-inf}, []float64{inf}),
		want: Optimal, x: []float64{-1}, obj: -1,
	},
	{
		name: "infeasible rows",
		p: dense([]float64{1, 1}, []float64{0, 0}, []float64{2, 2},
			[][]float64{{1, 1}}, []float64{5}, []float64{inf}),
		want: Infeasible,
	},
	{
		name: "infeasible crossed column bounds",
		p: dense([]float64{1, 1}, []float64{0, 1}, []float64{2, 0},
			[][]float64{{1, 1}}, []float64{0}, []float64{inf}),
		want: Infeasible,
	},
	{
		name: "infeasible equalities",
		p: dense([]float64{0, 0}, []float64{-inf, -inf}, []float64{inf, inf},
			[][]float64{{1, 1}, {1, 1}}, []float64{1, 2}, []float64{1, 2}),
		want: Infeasible,
	},
	{
		// Feasible ray (1,1): x−y stays 0.
		name: "unbounded",
		p: dense([]float64{-1, 0}, []float64{0, 0}, []float64{inf, inf},
			[][]float64{{1, -1}}, []float64{-inf}, []float64{1}),
		want: Unbounded,
	},
	{
		// Column 1 is in no row and has negative cost.
		name: "unbounded free column outside rows",
		p: dense([]float64{1, -1}, []float64{0, -inf}, []float64{1, inf},
			[][]float64{{1, 0}}, []float64{0}, []float64{1}),
		want: Unbounded,
	},
	{
		// Same column, but the rows are infeasible: infeasible, not unbounded.
		name: "infeasible with unbounded column",
		p: dense([]float64{1, -1}, []float64{0, -inf}, []float64{1, inf},
			[][]float64{{1, 0}}, []float64{2}, []float64{3}),
		want: Infeasible,
	},
}

func TestKnown(t *testing.T) {
	for _, b := range backends() {
		for _, tc := range knownTests {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				s := b.new()
				defer s.Close()
				if err := s.Load(tc.p); err != nil {
					t.Fatal(err)
				}
				sol, err := s.Solve()
				if sol == nil || sol.Status != tc.want {
					t.Fatalf("got %v, %v; want status %v", sol, err, tc.want)
				}
				switch tc.want {
				case Optimal:
					if err != nil {
						t.Fatal(err)
					}
					if math.Abs(sol.Objective-tc.obj) > 1e-9 {
						t.Errorf("objective %v, want %v", sol.Objective, tc.obj)
					}
					for j := range tc.x {
						if math.Abs(sol.X[j]-tc.x[j]) > 1e-9 {
							t.Errorf("x = %v, want %v", sol.X, tc.x)
							break
						}
					}
					checkKKT(t, tc.p, sol, 1e-8)
				case Infeasible:
					if !errors.Is(err, ErrInfeasible) {
						t.Errorf("error %v does not wrap ErrInfeasible", err)
					}
				case Unbounded:
					if !errors.Is(err, ErrUnbounded) {
						t.Errorf("error %v does not wrap ErrUnbounded", err)
					}
				}
			})
		}
	}
}

func TestInvalid(t *testing.T) {
	good := func() *Problem {
		return dense([]float64{1, 1}, []float64{0, 0}, []float64{1, 1},
			[][]float64{{1, 1}}, []float64{0}, []float64{1})
	}
	tests := []struct {
		name   string
		modify func(p *Problem)
	}{
		{"NaN objective", func(p *Problem) { p.Obj[0] = math.NaN() }},
		{"Inf objective", func(p *Problem) { p.Obj[1] = inf }},
		{"NaN bound", func(p *Problem) { p.ColHi[0] = math.NaN() }},
		{"+Inf lower bound", func(p *Problem) { p.RowLo[0] = inf }},
		{"NaN value", func(p *Problem) { p.Values[0] = math.NaN() }},
		{"short ColHi", func(p *Problem) { p.ColHi = p.ColHi[:1] }},
		{"short RowHi", func(p *Problem) { p.RowHi = nil }},
		{"short ColStart", func(p *Problem) { p.ColStart = p.ColStart[:2] }},
		{"ColStart[0] != 0", func(p *Problem) { p.ColStart[0] = 1 }},
		{"decreasing ColStart", func(p *Problem) { p.ColStart[1] = 3 }},
		{"row index out of range", func(p *Problem) { p.RowIndex[1] = 1 }},
		{"negative row index", func(p *Problem) { p.RowIndex[0] = -1 }},
		{"duplicate row index", func(p *Problem) { p.ColStart = []int{0, 2, 2} }},
	}
	for _, b := range backends() {
		for _, tc := range tests {
			p := good()
			tc.modify(p)
			s := b.new()
			if err := s.Load(p); err == nil {
				t.Errorf("%s/%s: Load accepted an invalid problem", b.name, tc.name)
			}
			s.Close()
		}
		s := b.new()
		if _, err := s.Solve(); !errors.Is(err, ErrNoProblem) {
			t.Errorf("%s: Solve before Load: %v", b.name, err)
		}
		if err := s.Load(good()); err != nil {
			t.Fatal(err)
		}
		if err := s.SetObjective([]float64{1}); err == nil {
			t.Errorf("%s: short objective accepted", b.name)
		}
		if err := s.SetObjective([]float64{1, math.NaN()}); err == nil {
			t.Errorf("%s: NaN objective accepted", b.name)
		}
		if err := s.SetColBounds(2, 0, 1); err == nil {
			t.Errorf("%s: column 2 of 2 accepted", b.name)
		}
		if err := s.SetColBounds(0, math.NaN(), 1); err == nil {
			t.Errorf("%s: NaN bound accepted", b.name)
		}
		s.Close()
		s.Close()
		if _, err := s.Solve(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s: Solve after Close: %v", b.name, err)
		}
	}
}

// randomLP returns a random LP feasible by construction: a point x0 inside the
// column bounds satisfies every row. Rows are equalities, ranges, one-sided or
// free; most columns are boxed, some one-sided or free (so a few problems are
// unbounded).
func randomLP(rng *rand.Rand, n, m int, density float64, boxedOnly bool) *Problem {
	p := &Problem{Obj: make([]float64, n), ColLo: make([]float64, n), ColHi: make([]float64, n),
		RowLo: make([]float64, m), RowHi: make([]float64, m), ColStart: []int{0}}
	x0 := make([]float64, n)
	for j := 0; j < n; j++ {
		p.Obj[j] = rng.NormFloat64()
		x0[j] = 4*rng.Float64() - 2
		p.ColLo[j] = x0[j] - 3*rng.Float64()
		p.ColHi[j] = x0[j] + 3*rng.Float64()
		if !boxedOnly {
			switch rng.IntN(10) {
			case 0:
				p.ColLo[j] = -inf
			case 1:
				p.ColHi[j] = inf
			case 2:
				p.ColLo[j], p.ColHi[j] = -inf, inf
			}
		}
	}
	act := make([]float64, m)
	for j := 0; j < n; j++ {
		for i := 0; i < m; i++ {
			if rng.Float64() < density {
				v := math.Round(rng.NormFloat64()*100) / 100
				if v == 0 {
					v = 0.5
				}
				p.RowIndex = append(p.RowIndex, i)
				p.Values = append(p.Values, v)
				act[i] += v * x0[j]
			}
		}
		p.ColStart = append(p.ColStart, len(p.RowIndex))
	}
	for i := 0; i < m; i++ {
		lo, hi := act[i]-2*rng.Float64(), act[i]+2*rng.Float64()
		switch rng.IntN(6) {
		case 0:
			lo, hi = act[i], act[i]
		case 1:
			lo = -inf
		case 2:
			hi = inf
		case 3:
			if !boxedOnly {
				lo, hi = -inf, inf
			}
		}
		p.RowLo[i], p.RowHi[i] = lo, hi
	}
	return p
}

// checkKKT checks an optimal solution independently of the solver: primal
// feasibility, and, when duals are given, dual feasibility (reduced costs
// d = c − Aᵀy and row duals with the signs of the active bounds) and zero
// duality gap. Tolerances are absolute, scaled by tol.
func checkKKT(t *testing.T, p *Problem, sol *Solution, tol float64) {
	t.Helper()
	n, m := p.NumCols(), p.NumRows()
	act := make([]float64, m)
	d := append([]float64(nil), p.Obj...)
	obj := 0.0
	for j := 0; j < n; j++ {
		x := sol.X[j]
		obj += p.Obj[j] * x
		if x < p.ColLo[j]-tol || x > p.ColHi[j]+tol {
			t.Errorf("x[%d] = %v outside [%v, %v]", j, x, p.ColLo[j], p.ColHi[j])
		}
		for k := p.ColStart[j]; k < p.ColStart[j+1]; k++ {
			act[p.RowIndex[k]] += p.Values[k] * x
			if sol.Duals != nil {
				d[j] -= p.Values[k] * sol.Duals[p.RowIndex[k]]
			}
		}
	}
	for i := 0; i < m; i++ {
		if act[i] < p.RowLo[i]-tol || act[i] > p.RowHi[i]+tol {
			t.Errorf("row %d = %v outside [%v, %v]", i, act[i], p.RowLo[i], p.RowHi[i])
		}
	}
	if math.Abs(obj-sol.Objective) > tol*(1+math.Abs(obj)) {
		t.Errorf("Objective %v but Obj·X = %v", sol.Objective, obj)
	}
	if sol.Duals == nil {
		return
	}
	// Dual objective: Σ y_i·(active row bound) + Σ d_j·(active column bound).
	dualObj := 0.0
	for i := 0; i < m; i++ {
		y := sol.Duals[i]
		switch {
		case y > tol:
			if math.IsInf(p.RowLo[i], -1) {
				t.Errorf("row %d: dual %v > 0 without a lower bound", i, y)
				continue
			}
			dualObj += y * p.RowLo[i]
		case y < -tol:
			if math.IsInf(p.RowHi[i], 1) {
				t.Errorf("row %d: dual %v < 0 without an upper bound", i, y)
				continue
			}
			dualObj += y * p.RowHi[i]
		default:
			dualObj += y * act[i]
		}
	}
	for j := 0; j < n; j++ {
		switch {
		case d[j] > tol:
			if math.IsInf(p.ColLo[j], -1) {
				t.Errorf("column %d: reduced cost %v > 0 without a lower bound", j, d[j])
				continue
			}
			dualObj += d[j] * p.ColLo[j]
		case d[j] < -tol:
			if math.IsInf(p.ColHi[j], 1) {
				t.Errorf("column %d: reduced cost %v < 0 without an upper bound", j, d[j])
				continue
			}
			dualObj += d[j] * p.ColHi[j]
		default:
			dualObj += d[j] * sol.X[j]
		}
	}
	if math.Abs(dualObj-obj) > 100*tol*(1+math.Abs(obj)) {
		t.Errorf("duality gap: primal %v, dual %v", obj, dualObj)
	}
}

// solveFresh loads p in a new solver of backend b and solves it.
func solveFresh(t *testing.T, b backend, p *Problem) (*Solution, error) {
	t.Helper()
	s := b.new()
	defer s.Close()
	if err := s.Load(p); err != nil {
		t.Fatal(err)
	}
	return s.Solve()
}

func relClose(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// TestRandomAgree solves random feasible LPs with New and NewGonum: statuses
// agree, optima agree within 1e-6 relative, and each optimum passes checkKKT.
func TestRandomAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	count := map[Status]int{}
	for trial := 0; trial < 400; trial++ {
		n, m := 2+rng.IntN(12), 1+rng.IntN(10)
		p := randomLP(rng, n, m, 0.4, trial%2 == 0)
		a, errA := solveFresh(t, backend{"default", New}, p)
		g, errG := solveFresh(t, backend{"gonum", NewGonum}, p)
		if a.Status == Failed || g.Status == Failed {
			t.Errorf("trial %d: failed: %v / %v", trial, errA, errG)
			continue
		}
		if a.Status == Infeasible || g.Status == Infeasible {
			t.Errorf("trial %d: feasible by construction but %v / %v", trial, errA, errG)
			continue
		}
		if a.Status != g.Status {
			t.Errorf("trial %d: New says %v, gonum %v", trial, a.Status, g.Status)
			continue
		}
		count[a.Status]++
		if a.Status != Optimal {
			continue
		}
		if !relClose(a.Objective, g.Objective, 1e-6) {
			t.Errorf("trial %d (%d×%d): optimum %v (New) vs %v (gonum)", trial, m, n, a.Objective, g.Objective)
		}
		if a.Duals == nil || g.Duals == nil {
			t.Errorf("trial %d: missing duals", trial)
		}
		checkKKT(t, p, a, 1e-7)
		checkKKT(t, p, g, 1e-7)
	}
	t.Logf("statuses: %v", count)
	if count[Optimal] < 200 {
		t.Errorf("only %d optimal problems: the generator is off", count[Optimal])
	}
}

// TestWarmStart: after a solve, SetObjective then Solve equals a cold solve of
// the problem with that objective; SetColBounds then Solve equals a fresh Load
// with those bounds, including an infeasible branch and its undoing.
func TestWarmStart(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			for trial := 0; trial < 20; trial++ {
				n, m := 5+rng.IntN(15), 3+rng.IntN(10)
				p := randomLP(rng, n, m, 0.4, true)
				s := b.new()
				if err := s.Load(p); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Solve(); err != nil {
					t.Fatal(err)
				}
				// New objectives.
				for k := 0; k < 3; k++ {
					obj := make([]float64, n)
					for j := range obj {
						obj[j] = rng.NormFloat64()
					}
					if err := s.SetObjective(obj); err != nil {
						t.Fatal(err)
					}
					warm, err := s.Solve()
					if err != nil {
						t.Fatal(err)
					}
					q := p.clone()
					q.Obj = obj
					cold, err := solveFresh(t, b, q)
					if err != nil {
						t.Fatal(err)
					}
					if !relClose(warm.Objective, cold.Objective, 1e-9) {
						t.Errorf("trial %d: warm %v, cold %v", trial, warm.Objective, cold.Objective)
					}
					checkKKT(t, q, warm, 1e-7)
					p = q
				}
				// Branch on column j at its optimal value: both halves, then an
				// empty box, then the original bounds back.
				sol, err := s.Solve()
				if err != nil {
					t.Fatal(err)
				}
				j := rng.IntN(n)
				mid := sol.X[j]
				if mid-p.ColLo[j] < 1e-3 {
					mid += 0.5 * (p.ColHi[j] - p.ColLo[j])
				}
				for _, bnd := range [][2]float64{
					{p.ColLo[j], mid - 0.1}, {mid + 0.1, p.ColHi[j]},
					{mid, mid - 1}, {p.ColLo[j], p.ColHi[j]},
				} {
					if err := s.SetColBounds(j, bnd[0], bnd[1]); err != nil {
						t.Fatal(err)
					}
					got, errGot := s.Solve()
					q := p.clone()
					q.ColLo[j], q.ColHi[j] = bnd[0], bnd[1]
					want, errWant := solveFresh(t, b, q)
					if got.Status != want.Status {
						t.Errorf("trial %d: bounds %v: %v (warm) vs %v (fresh)", trial, bnd, errGot, errWant)
						continue
					}
					if got.Status == Optimal {
						if !relClose(got.Objective, want.Objective, 1e-9) {
							t.Errorf("trial %d: bounds %v: warm %v, fresh %v", trial, bnd, got.Objective, want.Objective)
						}
						checkKKT(t, q, got, 1e-7)
					}
				}
				s.Close()
			}
		})
	}
}

func errorsIsInfeasible(err error) bool { return errors.Is(err, ErrInfeasible) }

// BenchmarkSolve times cold solves of random boxed LPs (5% dense) with each
// backend. gonum's dense simplex on 500×300 (a standard form of about
// 1100×1600) takes over 200 s a solve on our 2-core machine and is skipped.
func BenchmarkSolve(b *testing.B) {
	for _, size := range [][2]int{{100, 60}, {500, 300}} {
		p := randomLP(rand.New(rand.NewPCG(7, 8)), size[0], size[1], 0.05, true)
		for _, be := range backends() {
			b.Run(fmt.Sprintf("%s/%dx%d", be.name, size[0], size[1]), func(b *testing.B) {
				if be.name == "gonum" && size[0] > 200 {
					b.Skip("gonum's dense simplex takes minutes at this size")
				}
				for b.Loop() {
					s := be.new()
					if err := s.Load(p); err != nil {
						b.Fatal(err)
					}
					if _, err := s.Solve(); err != nil {
						b.Fatal(err)
					}
					s.Close()
				}
			})
		}
	}
}
