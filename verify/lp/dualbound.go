package lp

import (
	"fmt"
	"math"
)

// DualBound returns a lower bound on the optimum of p from any row multipliers
// y (one per row), by weak Lagrangian duality: for every feasible x, with
// reduced costs d = Obj − Aᵀy,
//
//	Obj·x = yᵀ(A·x) + dᵀx ≥ Σ_i min_{r ∈ [RowLo_i, RowHi_i]} y_i·r
//	                      + Σ_j min_{x_j ∈ [ColLo_j, ColHi_j]} d_j·x_j
//
// (Bertsimas & Tsitsiklis, "Introduction to Linear Optimization", 1997, §4.3).
// The bound holds whatever y is, so it does not trust the solver: with the
// Duals of an optimal Solution it equals the optimum up to the solver's
// tolerances, and any inaccuracy only makes it smaller. It is −Inf when a
// multiplier or reduced cost pushes towards an infinite bound (|y_i| or |d_j|
// below zeroTol count as zero, and then contribute nothing).
//
// The floating-point evaluation is made sound by subtracting γ·Σ|terms| with
// γ = 2(k+2)·ε, k the length of the longest sum (Higham, "Accuracy and
// Stability of Numerical Algorithms", 2002, §3.1, bound on recursive
// summation and dot products), which covers the rounding of d and of the total.
func (p *Problem) DualBound(y []float64, zeroTol float64) (float64, error) {
	if len(y) != p.NumRows() {
		return math.NaN(), fmt.Errorf("lp: %d multipliers for %d rows", len(y), p.NumRows())
	}
	if !(zeroTol >= 0) || math.IsInf(zeroTol, 1) {
		return math.NaN(), fmt.Errorf("lp: zero tolerance %v, want finite and ≥ 0", zeroTol)
	}
	for i, v := range y {
		if err := checkFinite("multiplier", i, v); err != nil {
			return math.NaN(), err
		}
	}
	sum, mag := 0.0, 0.0
	longest := p.NumRows() + p.NumCols()
	for i, v := range y {
		var t float64
		switch {
		case v > zeroTol:
			t = v * p.RowLo[i]
		case v < -zeroTol:
			t = v * p.RowHi[i]
		default:
			continue
		}
		if math.IsInf(t, -1) {
			return math.Inf(-1), nil
		}
		sum += t
		mag += math.Abs(t)
	}
	dmag := 0.0 // Σ|terms of d_j| times |bound|, for the rounding of d
	for j := 0; j < p.NumCols(); j++ {
		d, dm := p.Obj[j], math.Abs(p.Obj[j])
		s, e := p.ColStart[j], p.ColStart[j+1]
		for k := s; k < e; k++ {
			t := p.Values[k] * y[p.RowIndex[k]]
			d -= t
			dm += math.Abs(t)
		}
		if e-s+1 > longest {
			longest = e - s + 1
		}
		var b float64
		switch {
		case d > zeroTol:
			b = p.ColLo[j]
		case d < -zeroTol:
			b = p.ColHi[j]
		default:
			// d_j ≈ 0 is treated as 0, but its (tiny) value still counts
			// against the bound over the column's box.
			lo, hi := p.ColLo[j], p.ColHi[j]
			m := math.Max(math.Abs(lo), math.Abs(hi))
			if math.IsInf(m, 1) {
				if d != 0 {
					return math.Inf(-1), nil
				}
				continue
			}
			sum -= math.Abs(d) * m
			mag += math.Abs(d) * m
			dmag += dm * m
			continue
		}
		t := d * b
		if math.IsInf(t, -1) {
			return math.Inf(-1), nil
		}
		sum += t
		mag += math.Abs(t)
		dmag += dm * math.Abs(b)
	}
	gamma := 2 * float64(longest+2) * epsilon
	return sum - gamma*(mag+dmag), nil
}

// epsilon is the unit roundoff of float64, 2⁻⁵³.
const epsilon = 1.0 / (1 << 53)
