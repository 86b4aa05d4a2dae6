package verify

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/certify-dev/certify/verify/lp"
)

// lpTolerance is subtracted from every LP bound before it may prove anything: the
// simplex works in floating point with feasibility tolerances near 1e-7, so an
// optimum within 1e-6 of 0 proves nothing (see safeBound for the rest of the
// margin).
const lpTolerance = 1e-6

// lpRelax is the triangle ("Planet") LP relaxation of one sample's ReLU chain
// (Ehlers, "Formal Verification of Piece-wise Linear Feed-forward Neural
// Networks", ATVA 2017): columns are the input x in its box, and for each ReLU
// layer k the pre-activations z_k in their bounds [l, u] and the post-activations
// h_k; rows are z_k = W_k·h_{k−1} + b_k and, per neuron, h = z when l ≥ 0, h = 0
// when u ≤ 0, else h ≥ 0, h ≥ z, h ≤ u(z − l)/(u − l): the convex hull of the
// ReLU over [l, u], the tightest convex relaxation of a single neuron (Salman et
// al., "A Convex Relaxation Barrier to Tight Robustness Verification of Neural
// Networks", NeurIPS 2019).
type lpRelax struct {
	p *lp.Problem
	// z[k], h[k]: first column of z_{k+1}, h_{k+1}; base is the first column of
	// the input of the last affine map included (x or the last h).
	z, h []int
	base int
}

// buildRelax builds the relaxation of the first layers ReLU layers over the input
// box [xlo, xhi], with pre-activation bounds lo[k], hi[k] of layer k. With pre,
// the pre-activations of layer layers+1 are added as columns too (bounded by
// lo[layers], hi[layers]), so that they can be minimised and maximised.
func buildRelax(net *lpNet, xlo, xhi []float64, lo, hi [][]float64, layers int, pre bool) *lpRelax {
	type entry struct {
		row int
		v   float64
	}
	var cols [][]entry
	var clo, chi, rlo, rhi []float64
	addCol := func(l, h float64) int {
		cols = append(cols, nil)
		clo, chi = append(clo, l), append(chi, h)
		return len(cols) - 1
	}
	addRow := func(l, h float64) int {
		rlo, rhi = append(rlo, l), append(rhi, h)
		return len(rlo) - 1
	}
	r := &lpRelax{}
	base := len(cols)
	for i := range xlo {
		addCol(xlo[i], xhi[i])
	}
	nz := layers
	if pre {
		nz++
	}
	for k := 0; k < nz; k++ {
		a := net.affine[k]
		m := len(a.b)
		zc := len(cols)
		r.z = append(r.z, zc)
		for o := 0; o < m; o++ {
			addCol(lo[k][o], hi[k][o])
		}
		// z − W·base = b.
		for o := 0; o < m; o++ {
			row := addRow(a.b[o], a.b[o])
			cols[zc+o] = append(cols[zc+o], entry{row, 1})
			w := a.W[o*a.in : (o+1)*a.in]
			for i, v := range w {
				if v != 0 {
					cols[base+i] = append(cols[base+i], entry{row, -v})
				}
			}
		}
		if k == layers { // the extra pre-activation layer: no ReLU
			break
		}
		hc := len(cols)
		r.h = append(r.h, hc)
		for o := 0; o < m; o++ {
			l, u := lo[k][o], hi[k][o]
			j := addCol(max(l, 0), max(u, 0))
			switch {
			case u <= 0: // inactive: h = 0 by its bounds
			case l >= 0: // active: h = z
				row := addRow(0, 0)
				cols[j] = append(cols[j], entry{row, 1})
				cols[zc+o] = append(cols[zc+o], entry{row, -1})
			default: // unstable: the triangle
				row := addRow(0, math.Inf(1)) // h − z ≥ 0
				cols[j] = append(cols[j], entry{row, 1})
				cols[zc+o] = append(cols[zc+o], entry{row, -1})
				s := u / (u - l)
				row = addRow(math.Inf(-1), -s*l) // h − s·z ≤ −s·l
				cols[j] = append(cols[j], entry{row, 1})
				cols[zc+o] = append(cols[zc+o], entry{row, -s})
			}
		}
		base = hc
	}
	r.base = base
	p := &lp.Problem{ColLo: clo, ColHi: chi, Obj: make([]float64, len(cols)), RowLo: rlo, RowHi: rhi}
	p.ColStart = make([]int, 1, len(cols)+1)
	for _, c := range cols {
		for _, e := range c {
			p.RowIndex = append(p.RowIndex, e.row)
			p.Values = append(p.Values, e.v)
		}
		p.ColStart = append(p.ColStart, len(p.RowIndex))
	}
	r.p = p
	return r
}

// minimise minimises obj·x + c over the relaxation loaded in s (warm-started from
// its last basis) and returns a lower bound of that minimum and the minimiser.
// The bound is -Inf when the solver gives no optimum: failing to bound is never
// a proof. When ctx ends during the solve, the solve is stopped and the error
// wraps ctx.Err().
func (r *lpRelax) minimise(ctx context.Context, s lp.Solver, obj []float64, c float64) (float64, []float64, error) {
	if err := s.SetObjective(obj); err != nil {
		return 0, nil, err
	}
	sol, err := lp.SolveContext(ctx, s)
	if err != nil && ctx.Err() != nil {
		return 0, nil, err
	}
	if err != nil {
		if errors.Is(err, lp.ErrInfeasible) || errors.Is(err, lp.ErrUnbounded) || errors.Is(err, lp.ErrFailed) {
			return math.Inf(-1), nil, nil
		}
		return 0, nil, err
	}
	if sol.Status != lp.Optimal {
		return math.Inf(-1), nil, nil
	}
	b := r.safeBound(obj, sol)
	return b + c - lpTolerance*max(1, math.Abs(c)), sol.X, nil
}

// safeBound turns the solver's answer into a bound that holds whatever the
// solver's accuracy (Neumaier & Shcherbina, "Safe bounds in linear and
// mixed-integer linear programming", Math. Programming 2004): for any row
// multipliers y and any feasible x,
//
//	obj·x = (obj − Aᵀy)·x + y·(A·x) ≥ Σ_j min_{x_j ∈ [lo_j, hi_j]} d_j x_j + Σ_i min(y_i RowLo_i, y_i RowHi_i),
//
// with d = obj − Aᵀy, since every column here is bounded. The solver's duals are
// only a good guess of y; the inequality holds for any y, and the terms are
// summed with an allowance for their rounding. Without duals (a backend that
// gives none) the bound is the objective itself, less lpTolerance (not rigorous).
func (r *lpRelax) safeBound(obj []float64, sol *lp.Solution) float64 {
	p := r.p
	if len(sol.Duals) != len(p.RowLo) {
		return sol.Objective - lpTolerance*max(1, math.Abs(sol.Objective))
	}
	best := math.Inf(-1)
	for _, sign := range []float64{1, -1} {
		best = max(best, r.dualBound(obj, sol.Duals, sign))
	}
	return best
}

// dualBound is the bound of safeBound for y = sign·duals.
func (r *lpRelax) dualBound(obj, duals []float64, sign float64) float64 {
	p := r.p
	sum, abs := 0.0, 0.0
	for i, yi := range duals {
		y := sign * yi
		var t float64
		switch {
		case y > 0:
			t = y * p.RowLo[i]
		case y < 0:
			t = y * p.RowHi[i]
		}
		if math.IsInf(t, 0) || math.IsNaN(t) {
			// Dual of the wrong sign on a one-sided row: use 0 for it instead.
			continue
		}
		sum += t
		abs += math.Abs(t)
	}
	for j := range obj {
		d, dabs := obj[j], math.Abs(obj[j])
		for k := p.ColStart[j]; k < p.ColStart[j+1]; k++ {
			y := sign * duals[p.RowIndex[k]]
			if lo, hi := p.RowLo[p.RowIndex[k]], p.RowHi[p.RowIndex[k]]; (y > 0 && math.IsInf(lo, -1)) || (y < 0 && math.IsInf(hi, 1)) {
				continue // that row's multiplier was taken as 0 above
			}
			d -= y * p.Values[k]
			dabs += math.Abs(y * p.Values[k])
		}
		// d is exact within slack; the worst case of d over [d−slack, d+slack]
		// times x_j is taken.
		slack := 2 * float64(p.ColStart[j+1]-p.ColStart[j]+2) * epsilon * dabs
		lo, hi := p.ColLo[j], p.ColHi[j]
		t := min((d-slack)*lo, (d-slack)*hi, (d+slack)*lo, (d+slack)*hi)
		sum += t
		abs += math.Abs(t)
	}
	n := float64(len(duals) + len(obj) + 2)
	if b := sum - 2*n*epsilon*abs; !math.IsNaN(b) {
		return b
	}
	return math.Inf(-1)
}

// epsilon is the unit roundoff of float64.
const epsilon = 0x1p-53

// relaxError wraps an LP failure that is not an answer (a malformed problem).
func relaxError(stage string, err error) error {
	return fmt.Errorf("lp: %s: %w", stage, err)
}
