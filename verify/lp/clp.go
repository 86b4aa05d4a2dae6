//go:build cgo && !purego

package lp

/*
#cgo pkg-config: clp
#include <stdlib.h>
#include <coin/Clp_C_Interface.h>

// The Go side passes CSC column starts as C int: fail to compile if this CLP
// build uses 64-bit CoinBigIndex.
typedef char lp_coinbigindex_is_int[(sizeof(CoinBigIndex) == sizeof(int)) ? 1 : -1];
*/
import "C"

import (
	"fmt"
	"math"
	"unsafe"
)

// New returns a Solver backed by COIN-OR CLP's dual simplex (this build has
// cgo). Call Close when done with it.
func New() Solver { return NewCLP() }

// NewCLP returns a Solver backed by COIN-OR CLP (Forrest et al.,
// https://github.com/coin-or/Clp) solving with its dual simplex method and
// warm-starting each solve from the previous basis. Call Close when done: the
// model lives in C memory.
func NewCLP() Solver { return &clpSolver{} }

// clpSolver owns one Clp_Simplex model. The Go copies of objective and column
// bounds are passed whole to Clp_chg*, which copy them into the model without
// touching its basis (status array).
type clpSolver struct {
	model        unsafe.Pointer // Clp_Simplex*
	closed       bool
	n, m         int
	obj          []C.double
	colLo, colHi []C.double
	empty        []bool // column j has no non-zero coefficient
}

// toCoin maps ±Inf to ±COIN_DBL_MAX (= ±DBL_MAX), CLP's infinity.
func toCoin(v float64) C.double {
	switch {
	case math.IsInf(v, 1):
		return C.double(math.MaxFloat64)
	case math.IsInf(v, -1):
		return C.double(-math.MaxFloat64)
	}
	return C.double(v)
}

func toCoinSlice(s []float64) []C.double {
	d := make([]C.double, len(s))
	for i, v := range s {
		d[i] = toCoin(v)
	}
	return d
}

// ptr returns a pointer to the first element, or nil for an empty slice. Go
// memory is passed to C only for the duration of the call (CLP copies it), as
// the cgo pointer rules allow: the slices hold no Go pointers.
func ptr[T any](s []T) *T {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

func (s *clpSolver) Load(p *Problem) error {
	if s.closed {
		return ErrClosed
	}
	if err := p.Validate(); err != nil {
		return err
	}
	if s.model != nil {
		C.Clp_deleteModel(s.model)
		s.model = nil
	}
	s.model = C.Clp_newModel()
	if s.model == nil {
		return fmt.Errorf("lp: clp: Clp_newModel failed")
	}
	C.Clp_setLogLevel(s.model, 0)
	s.n, s.m = p.NumCols(), p.NumRows()
	start := make([]C.int, len(p.ColStart))
	for i, v := range p.ColStart {
		start[i] = C.int(v)
	}
	index := make([]C.int, len(p.RowIndex))
	for i, v := range p.RowIndex {
		index[i] = C.int(v)
	}
	values := make([]C.double, len(p.Values))
	for i, v := range p.Values {
		values[i] = C.double(v)
	}
	s.empty = make([]bool, s.n)
	for j := range s.empty {
		s.empty[j] = true
		for k := p.ColStart[j]; k < p.ColStart[j+1]; k++ {
			if p.Values[k] != 0 {
				s.empty[j] = false
				break
			}
		}
	}
	s.obj = toCoinSlice(p.Obj)
	s.colLo, s.colHi = toCoinSlice(p.ColLo), toCoinSlice(p.ColHi)
	rowLo, rowHi := toCoinSlice(p.RowLo), toCoinSlice(p.RowHi)
	// CLP substitutes defaults for NULL arrays (e.g. upper bounds +Inf), so
	// empty problems must pass NULL only where the length is 0 anyway.
	C.Clp_loadProblem(s.model, C.int(s.n), C.int(s.m),
		(*C.CoinBigIndex)(unsafe.Pointer(&start[0])), ptr(index), ptr(values),
		ptr(s.colLo), ptr(s.colHi), ptr(s.obj), ptr(rowLo), ptr(rowHi))
	return nil
}

func (s *clpSolver) ready() error {
	if s.closed {
		return ErrClosed
	}
	if s.model == nil {
		return ErrNoProblem
	}
	return nil
}

func (s *clpSolver) SetObjective(obj []float64) error {
	if err := s.ready(); err != nil {
		return err
	}
	if err := checkObjective(obj, s.n); err != nil {
		return err
	}
	for j, v := range obj {
		s.obj[j] = C.double(v)
	}
	if s.n > 0 {
		C.Clp_chgObjCoefficients(s.model, &s.obj[0])
	}
	return nil
}

func (s *clpSolver) SetColBounds(j int, lo, hi float64) error {
	if err := s.ready(); err != nil {
		return err
	}
	if err := checkColBounds(j, s.n, lo, hi); err != nil {
		return err
	}
	s.colLo[j], s.colHi[j] = toCoin(lo), toCoin(hi)
	C.Clp_chgColumnLower(s.model, &s.colLo[0])
	C.Clp_chgColumnUpper(s.model, &s.colHi[0])
	return nil
}

// Solve runs CLP's dual simplex from the current basis (the slack basis after
// Load). CLP reports status 0 optimal, 1 primal infeasible, 2 dual infeasible
// (for a feasible problem: unbounded), 3 stopped on limits, 4 stopped on errors.
// When the scaled problem is optimal but the unscaled one is not (secondary
// status 2–4), the primal simplex is run from that basis to clean up.
//
// CLP (1.17) reports "primal infeasible" without iterating when a column absent
// from every row has a cost pushing it to an infinite bound. Such a column makes
// the problem unbounded when it is feasible, so Solve decides feasibility with
// those costs set to 0 and answers Unbounded or Infeasible.
func (s *clpSolver) Solve() (*Solution, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	var unbounding []int
	for j, e := range s.empty {
		if e && ((s.obj[j] > 0 && s.colLo[j] == -math.MaxFloat64) || (s.obj[j] < 0 && s.colHi[j] == math.MaxFloat64)) {
			unbounding = append(unbounding, j)
		}
	}
	if len(unbounding) == 0 {
		return s.solve()
	}
	obj := append([]C.double(nil), s.obj...)
	for _, j := range unbounding {
		obj[j] = 0
	}
	C.Clp_chgObjCoefficients(s.model, &obj[0])
	sol, err := s.solve()
	C.Clp_chgObjCoefficients(s.model, &s.obj[0])
	if sol.Status == Optimal || sol.Status == Unbounded {
		sol = &Solution{Status: Unbounded, Iterations: sol.Iterations}
		err = statusErr(fmt.Sprintf("lp: clp: column %d is in no row and its cost is unbounded below", unbounding[0]), Unbounded)
	}
	return sol, err
}

// solve runs the simplex methods and reads the solution.
func (s *clpSolver) solve() (*Solution, error) {
	C.Clp_dual(s.model, 0)
	st, sec := C.Clp_status(s.model), C.Clp_secondaryStatus(s.model)
	iters := int(C.Clp_numberIterations(s.model))
	if st == 0 && sec >= 2 && sec <= 4 {
		C.Clp_primal(s.model, 0)
		st, sec = C.Clp_status(s.model), C.Clp_secondaryStatus(s.model)
		iters += int(C.Clp_numberIterations(s.model))
	}
	sol := &Solution{Iterations: iters}
	switch {
	case st == 0 && (sec < 2 || sec > 4):
		sol.Status = Optimal
	case st == 1 || st == 2:
		// The dual simplex works with artificial bounds (±dualBound) on
		// columns without finite bounds and can then misreport an unbounded
		// problem as infeasible. Since a wrong "infeasible" would prune a
		// feasible branch, both verdicts are confirmed by the primal simplex
		// from the final basis: its status 1 means primal infeasible, 2 that
		// a primal feasible ray was found.
		C.Clp_primal(s.model, 0)
		iters += int(C.Clp_numberIterations(s.model))
		sol.Iterations = iters
		st, sec = C.Clp_status(s.model), C.Clp_secondaryStatus(s.model)
		switch {
		case st == 0 && (sec < 2 || sec > 4):
			sol.Status = Optimal
		case st == 1:
			sol.Status = Infeasible
		case st == 2:
			sol.Status = Unbounded
		default:
			sol.Status = Failed
		}
	default:
		sol.Status = Failed
	}
	if sol.Status != Optimal {
		return sol, statusErr(fmt.Sprintf("lp: clp (status %d, secondary %d)", int(st), int(sec)), sol.Status)
	}
	sol.Objective = float64(C.Clp_getObjValue(s.model))
	sol.X = make([]float64, s.n)
	if s.n > 0 {
		x := unsafe.Slice((*float64)(unsafe.Pointer(C.Clp_getColSolution(s.model))), s.n)
		copy(sol.X, x)
	}
	sol.Duals = make([]float64, s.m)
	if s.m > 0 {
		y := unsafe.Slice((*float64)(unsafe.Pointer(C.Clp_getRowPrice(s.model))), s.m)
		copy(sol.Duals, y)
	}
	return sol, nil
}

// interrupt stops a running solve: CLP checks its iteration limit at every
// simplex iteration, so setting it to 0 from another thread ends the solve with
// status 3 (limit reached) at the next one. The C interface has no other way in
// (its time limit counts the CPU time of the whole process), and one aligned
// int written while the solver reads it is what the limit is for.
func (s *clpSolver) interrupt() {
	if s.model != nil {
		C.Clp_setMaximumIterations(s.model, 0)
	}
}

// resume lifts the limit interrupt set (CLP's default, no limit).
func (s *clpSolver) resume() {
	if s.model != nil {
		C.Clp_setMaximumIterations(s.model, C.int(math.MaxInt32))
	}
}

func (s *clpSolver) Close() {
	if s.model != nil {
		C.Clp_deleteModel(s.model)
		s.model = nil
	}
	s.closed = true
}
