package lp

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
	gonumlp "gonum.org/v1/gonum/optimize/convex/lp"
)

// NewGonum returns a Solver backed by gonum's dense simplex
// (gonum.org/v1/gonum/optimize/convex/lp.Simplex; Dantzig's method with Bland's
// rule on degenerate steps, see Strang, "Linear Algebra and Its Applications",
// ch. 8). Every solve is cold (no warm start), the algebra is dense, and Duals
// cost a second Simplex solve, of the dual LP. It exists to need no C library
// and to cross-check CLP.
func NewGonum() Solver { return &gonumSolver{} }

// gonumSolver keeps the general-form problem and rewrites it to the standard
// form of gonum's Simplex at each Solve.
type gonumSolver struct {
	p      *Problem
	closed bool
}

// gonumTol is the reduced-cost tolerance passed to gonum's Simplex.
const gonumTol = 1e-10

func (s *gonumSolver) Load(p *Problem) error {
	if s.closed {
		return ErrClosed
	}
	if err := p.Validate(); err != nil {
		return err
	}
	s.p = p.clone()
	return nil
}

func (s *gonumSolver) ready() error {
	if s.closed {
		return ErrClosed
	}
	if s.p == nil {
		return ErrNoProblem
	}
	return nil
}

func (s *gonumSolver) SetObjective(obj []float64) error {
	if err := s.ready(); err != nil {
		return err
	}
	if err := checkObjective(obj, s.p.NumCols()); err != nil {
		return err
	}
	copy(s.p.Obj, obj)
	return nil
}

func (s *gonumSolver) SetColBounds(j int, lo, hi float64) error {
	if err := s.ready(); err != nil {
		return err
	}
	if err := checkColBounds(j, s.p.NumCols(), lo, hi); err != nil {
		return err
	}
	s.p.ColLo[j], s.p.ColHi[j] = lo, hi
	return nil
}

func (s *gonumSolver) Close() { s.p, s.closed = nil, true }

// Solve rewrites the problem in standard form (see standardForm) and calls
// gonum's Simplex on it. gonum panics on some malformed inputs; a panic is
// recovered and reported as Failed.
func (s *gonumSolver) Solve() (sol *Solution, err error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	sf := standardForm(s.p)
	if sf.infeasible {
		return &Solution{Status: Infeasible}, statusErr("lp: gonum", Infeasible)
	}
	z, st, err := sf.solve()
	if err != nil {
		return &Solution{Status: st}, err
	}
	if sf.unboundedIfFeasible {
		// A column absent from every constraint with negative cost: the
		// problem, feasible, is unbounded.
		return &Solution{Status: Unbounded}, statusErr("lp: gonum", Unbounded)
	}
	x := sf.recover(z)
	obj := 0.0
	for j, c := range s.p.Obj {
		obj += c * x[j]
	}
	return &Solution{Status: Optimal, X: x, Objective: obj, Duals: sf.duals(s.p.NumRows())}, nil
}

// stdForm is minimise cᵀz subject to A z = b, z ≥ 0, the form gonum's Simplex
// solves, built from a Problem by
//
//   - x_j = lo_j + u_j when lo_j is finite, x_j = hi_j − u_j when only hi_j is,
//     x_j = u⁺_j − u⁻_j when x_j is free, with u ≥ 0; a column with both
//     bounds finite gets the row u_j + w_j = hi_j − lo_j, w_j ≥ 0;
//   - a row with finite lower bound becomes a_i·x − s_i = lo_i, s_i ≥ 0, plus
//     s_i + t_i = hi_i − lo_i when hi_i is finite too (equalities included); a
//     row with only an upper bound becomes a_i·x + s_i = hi_i; a row with no
//     finite bound is dropped.
//
// Each row of A then has a column of its own (s_i, t_i or w_j), so A has full row
// rank as gonum requires. Columns of A that are entirely zero (gonum rejects
// them) are removed and fixed at 0, which is optimal when their cost is ≥ 0; a
// negative cost makes a feasible problem unbounded (unboundedIfFeasible).
type stdForm struct {
	c    []float64
	a    []float64 // dense row-major rows×cols
	b    []float64
	rows int
	// column j of the Problem is off[j] + sign[j]·z[pos[j]] (− z[neg[j]] when
	// neg[j] ≥ 0, for free columns).
	off                 []float64
	sign                []float64
	pos, neg            []int
	rowOf               []int // standard row of each Problem row, −1 if dropped
	keep                []int // the non-zero columns passed to Simplex
	A                   *mat.Dense
	infeasible          bool // a column with lo > hi
	unboundedIfFeasible bool
}

func standardForm(p *Problem) *stdForm {
	n, m := p.NumCols(), p.NumRows()
	sf := &stdForm{off: make([]float64, n), sign: make([]float64, n), pos: make([]int, n), neg: make([]int, n)}
	// Column layout: structural u's first, then slacks, appended as needed.
	var c []float64
	type entry struct {
		row, col int
		v        float64
	}
	var ents []entry
	nrows := 0
	newCol := func(cost float64) int { c = append(c, cost); return len(c) - 1 }
	for j := 0; j < n; j++ {
		lo, hi := p.ColLo[j], p.ColHi[j]
		sf.neg[j] = -1
		switch {
		case lo > hi:
			sf.infeasible = true
			return sf
		case !math.IsInf(lo, -1):
			sf.off[j], sf.sign[j] = lo, 1
			sf.pos[j] = newCol(p.Obj[j])
		case !math.IsInf(hi, 1):
			sf.off[j], sf.sign[j] = hi, -1
			sf.pos[j] = newCol(-p.Obj[j])
		default:
			sf.sign[j] = 1
			sf.pos[j] = newCol(p.Obj[j])
			sf.neg[j] = newCol(-p.Obj[j])
		}
	}
	var b []float64
	// Constraint rows: first the standard row of each Problem row (−1 when
	// dropped) and the shift a_i·off, then the entries in one pass over A.
	stdRow := make([]int, m)
	shift := make([]float64, m)
	for i := 0; i < m; i++ {
		lo, hi := p.RowLo[i], p.RowHi[i]
		stdRow[i] = -1
		if math.IsInf(lo, -1) && math.IsInf(hi, 1) {
			continue
		}
		if lo > hi {
			sf.infeasible = true
			return sf
		}
		stdRow[i] = nrows
		nrows++
	}
	sf.rowOf = stdRow
	for j := 0; j < n; j++ {
		for k := p.ColStart[j]; k < p.ColStart[j+1]; k++ {
			i, v := p.RowIndex[k], p.Values[k]
			r := stdRow[i]
			if r < 0 {
				continue
			}
			shift[i] += v * sf.off[j]
			ents = append(ents, entry{r, sf.pos[j], v * sf.sign[j]})
			if sf.neg[j] >= 0 {
				ents = append(ents, entry{r, sf.neg[j], -v})
			}
		}
	}
	b = make([]float64, nrows)
	for i := 0; i < m; i++ {
		r := stdRow[i]
		if r < 0 {
			continue
		}
		lo, hi := p.RowLo[i], p.RowHi[i]
		sl := newCol(0)
		if math.IsInf(lo, -1) {
			ents = append(ents, entry{r, sl, 1})
			b[r] = hi - shift[i]
			continue
		}
		ents = append(ents, entry{r, sl, -1})
		b[r] = lo - shift[i]
		if !math.IsInf(hi, 1) {
			t := newCol(0)
			ents = append(ents, entry{nrows, sl, 1}, entry{nrows, t, 1})
			nrows++
			b = append(b, hi-lo)
		}
	}
	// Box rows of doubly bounded columns.
	for j := 0; j < n; j++ {
		lo, hi := p.ColLo[j], p.ColHi[j]
		if math.IsInf(lo, -1) || math.IsInf(hi, 1) {
			continue
		}
		w := newCol(0)
		ents = append(ents, entry{nrows, sf.pos[j], 1}, entry{nrows, w, 1})
		nrows++
		b = append(b, hi-lo)
	}
	sf.c, sf.b, sf.rows = c, b, nrows
	sf.a = make([]float64, nrows*len(c))
	for _, e := range ents {
		sf.a[e.row*len(c)+e.col] += e.v
	}
	return sf
}

// solve runs gonum's Simplex on the non-zero columns and returns z.
func (sf *stdForm) solve() (z []float64, st Status, err error) {
	cols := len(sf.c)
	var keep []int
	for k := 0; k < cols; k++ {
		zero := true
		for r := 0; r < sf.rows; r++ {
			if sf.a[r*cols+k] != 0 {
				zero = false
				break
			}
		}
		if !zero {
			keep = append(keep, k)
		} else if sf.c[k] < 0 {
			sf.unboundedIfFeasible = true
		}
	}
	z = make([]float64, cols)
	if sf.rows == 0 {
		return z, Optimal, nil // every column is zero and fixed at 0
	}
	cc := make([]float64, len(keep))
	A := mat.NewDense(sf.rows, len(keep), nil)
	for q, k := range keep {
		cc[q] = sf.c[k]
		for r := 0; r < sf.rows; r++ {
			A.Set(r, q, sf.a[r*cols+k])
		}
	}
	defer func() {
		if r := recover(); r != nil {
			z, st, err = nil, Failed, fmt.Errorf("lp: gonum: simplex panicked: %v: %w", r, ErrFailed)
		}
	}()
	sf.keep, sf.A = keep, A
	_, zk, err := gonumlp.Simplex(cc, A, sf.b, gonumTol, nil)
	switch {
	case err == nil:
	case errors.Is(err, gonumlp.ErrInfeasible):
		return nil, Infeasible, statusErr("lp: gonum", Infeasible)
	case errors.Is(err, gonumlp.ErrUnbounded):
		return nil, Unbounded, statusErr("lp: gonum", Unbounded)
	default:
		return nil, Failed, fmt.Errorf("lp: gonum: %v: %w", err, ErrFailed)
	}
	for q, k := range keep {
		z[k] = zk[q]
	}
	return z, Optimal, nil
}

// duals solves the dual of the standard form, max bᵀy subject to Aᵀy ≤ c
// (y free), itself in standard form for gonum: y = y⁺ − y⁻ and slacks t with
// Aᵀy⁺ − Aᵀy⁻ + t = c, minimising −bᵀy⁺ + bᵀy⁻. The row dual of Problem row i
// is y at its standard row: the substitutions x = off ± u change columns, not
// rows, so the reduced costs are Obj − Aᵀy as with CLP. It returns nil if that
// solve fails (after the primal succeeded this is numerical trouble).
func (sf *stdForm) duals(m int) (y []float64) {
	if sf.rows == 0 {
		return make([]float64, m)
	}
	defer func() {
		if r := recover(); r != nil {
			y = nil
		}
	}()
	R, K := sf.rows, len(sf.keep)
	A := mat.NewDense(K, 2*R+K, nil)
	c := make([]float64, 2*R+K)
	b := make([]float64, K)
	for q, k := range sf.keep {
		b[q] = sf.c[k]
		for r := 0; r < R; r++ {
			v := sf.A.At(r, q)
			A.Set(q, r, v)
			A.Set(q, R+r, -v)
		}
		A.Set(q, 2*R+q, 1)
	}
	for r := 0; r < R; r++ {
		c[r], c[R+r] = -sf.b[r], sf.b[r]
	}
	_, w, err := gonumlp.Simplex(c, A, b, gonumTol, nil)
	if err != nil {
		return nil
	}
	y = make([]float64, m)
	for i, r := range sf.rowOf {
		if r >= 0 {
			y[i] = w[r] - w[R+r]
		}
	}
	return y
}

// recover maps a standard-form solution back to the Problem's columns.
func (sf *stdForm) recover(z []float64) []float64 {
	x := make([]float64, len(sf.off))
	for j := range x {
		x[j] = sf.off[j] + sf.sign[j]*z[sf.pos[j]]
		if sf.neg[j] >= 0 {
			x[j] -= z[sf.neg[j]]
		}
	}
	return x
}
