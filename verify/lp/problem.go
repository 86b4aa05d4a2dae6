package lp

import (
	"fmt"
	"math"
)

// Problem is the linear program
//
//	minimise Obj·x subject to RowLo ≤ A·x ≤ RowHi, ColLo ≤ x ≤ ColHi.
//
// A has len(RowLo) rows and len(Obj) columns and is sparse, column-major (CSC):
// column j's entries are at rows RowIndex[ColStart[j]:ColStart[j+1]] with values
// Values[ColStart[j]:ColStart[j+1]]. ColStart has len(Obj)+1 entries, starting at
// 0. A row index may appear at most once per column. Bounds may be ±Inf (a lower
// bound may not be +Inf nor an upper bound −Inf); every other number must be
// finite. A lower bound above its upper bound makes the problem infeasible.
type Problem struct {
	ColLo, ColHi, Obj []float64
	RowLo, RowHi      []float64
	ColStart          []int
	RowIndex          []int
	Values            []float64
}

// NumCols returns the number of variables (columns of A).
func (p *Problem) NumCols() int { return len(p.Obj) }

// NumRows returns the number of constraints (rows of A).
func (p *Problem) NumRows() int { return len(p.RowLo) }

// Validate reports the first inconsistency of p: sizes, CSC structure, NaN or
// infinite coefficients, impossible bounds.
func (p *Problem) Validate() error {
	if p == nil {
		return fmt.Errorf("lp: nil problem")
	}
	n, m := len(p.Obj), len(p.RowLo)
	if len(p.ColLo) != n || len(p.ColHi) != n {
		return fmt.Errorf("lp: %d objective coefficients but %d column lower and %d upper bounds", n, len(p.ColLo), len(p.ColHi))
	}
	if len(p.RowHi) != m {
		return fmt.Errorf("lp: %d row lower bounds but %d upper bounds", m, len(p.RowHi))
	}
	if len(p.ColStart) != n+1 {
		return fmt.Errorf("lp: ColStart has %d entries, want %d (columns+1)", len(p.ColStart), n+1)
	}
	if p.ColStart[0] != 0 {
		return fmt.Errorf("lp: ColStart[0] = %d, want 0", p.ColStart[0])
	}
	nnz := p.ColStart[n]
	if len(p.RowIndex) != nnz || len(p.Values) != nnz {
		return fmt.Errorf("lp: ColStart[%d] = %d but %d row indices and %d values", n, nnz, len(p.RowIndex), len(p.Values))
	}
	if nnz > math.MaxInt32 || n > math.MaxInt32 || m > math.MaxInt32 {
		return fmt.Errorf("lp: problem too large (%d columns, %d rows, %d entries)", n, m, nnz)
	}
	for j := 0; j < n; j++ {
		if err := checkFinite("objective coefficient", j, p.Obj[j]); err != nil {
			return err
		}
		if err := checkBounds("column", j, p.ColLo[j], p.ColHi[j]); err != nil {
			return err
		}
	}
	for i := 0; i < m; i++ {
		if err := checkBounds("row", i, p.RowLo[i], p.RowHi[i]); err != nil {
			return err
		}
	}
	last := make([]int, m) // last[i] = 1+column that last used row i
	for j := 0; j < n; j++ {
		s, e := p.ColStart[j], p.ColStart[j+1]
		if s > e || e > nnz {
			return fmt.Errorf("lp: ColStart not non-decreasing within [0, %d] at column %d (%d, %d)", nnz, j, s, e)
		}
		for k := s; k < e; k++ {
			i := p.RowIndex[k]
			if i < 0 || i >= m {
				return fmt.Errorf("lp: column %d: row index %d out of range [0, %d)", j, i, m)
			}
			if last[i] == j+1 {
				return fmt.Errorf("lp: column %d: row index %d appears twice", j, i)
			}
			last[i] = j + 1
			if math.IsNaN(p.Values[k]) || math.IsInf(p.Values[k], 0) {
				return fmt.Errorf("lp: column %d, row %d: coefficient %v is not finite", j, i, p.Values[k])
			}
		}
	}
	return nil
}

func checkFinite(what string, i int, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("lp: %s %d is %v, want a finite number", what, i, v)
	}
	return nil
}

func checkBounds(what string, i int, lo, hi float64) error {
	if math.IsNaN(lo) || math.IsNaN(hi) {
		return fmt.Errorf("lp: %s %d: NaN bound [%v, %v]", what, i, lo, hi)
	}
	if math.IsInf(lo, 1) || math.IsInf(hi, -1) {
		return fmt.Errorf("lp: %s %d: bounds [%v, %v]: lower may not be +Inf nor upper -Inf", what, i, lo, hi)
	}
	return nil
}

// clone returns a deep copy of p, so that a solver does not alias the caller's
// slices.
func (p *Problem) clone() *Problem {
	c := func(s []float64) []float64 { return append([]float64(nil), s...) }
	return &Problem{
		ColLo: c(p.ColLo), ColHi: c(p.ColHi), Obj: c(p.Obj),
		RowLo: c(p.RowLo), RowHi: c(p.RowHi),
		ColStart: append([]int(nil), p.ColStart...),
		RowIndex: append([]int(nil), p.RowIndex...),
		Values:   c(p.Values),
	}
}
