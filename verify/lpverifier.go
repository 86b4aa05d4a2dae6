package verify

import (
	"context"
	"fmt"
	"math"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/verify/lp"
)

// LP verifies a ReLU network by linear programming over the triangle ("Planet")
// relaxation of every unstable ReLU (Ehlers, ATVA 2017; lpRelax), one LP per
// sample, its pre-activation bounds taken from α-CROWN (bounds.AlphaCROWN) with
// the slopes of every intermediate bound optimised as well
// (bounds.Options.IntermediateAlpha, as alpha-CROWN is published). Each
// spec row C·y + D is minimised over the LP, warm-starting from the previous
// row's basis; a row's margin is the larger of the LP bound and α-CROWN's (both
// are sound, the LP, with the same intermediate bounds, the tighter of CROWN's
// and any linear-bound method's: Salman et al., NeurIPS 2019).
//
// With All ("LP-all"), the pre-activation bounds are first tightened layer by
// layer: every unstable neuron of layer k is minimised and maximised over the LP
// of layers < k, before layer k is relaxed (Salman et al. 2019, §5).
//
// Soundness: the LP is solved in floating point, so its optimum is not itself a
// proof. The bound kept is a Neumaier–Shcherbina safe bound from the solver's
// duals (valid for any multipliers, summed with a rounding allowance: see
// lpRelax.safeBound), less lpTolerance = 1e-6 (an LP margin ≤ 1e-6 proves
// nothing). The network's weights are read off by evaluating its affine layers
// (extractLPNet), exact up to float64 rounding; SoundFP makes the α-CROWN bounds
// rigorous but does not account for that rounding.
//
// Budget: an LP with more than MaxNonzeros nonzeros is not built (its size is
// counted first, relaxSize). The sample then keeps α-CROWN's bounds: Verified
// when they prove it, else Unknown with Reason ReasonLPSize (or Falsified when
// the centre of its box violates the spec). With All, every LP of the tightening
// is checked before it is built. The context is checked between LP solves; one
// solve, and the α-CROWN pass over the batch, run to their end.
//
// Supported graphs are chains of affine ops (Gemm, MatMul, Add, Conv,
// BatchNormalization, Flatten, Reshape, …) and Relu; anything else is an error
// wrapping bounds.ErrUnsupported naming the node.
type LP struct {
	// SoundFP widens the α-CROWN bounds by their float64 rounding error.
	SoundFP bool
	// All tightens every layer's pre-activation bounds by LP first ("lp-all").
	All bool
	// MaxNonzeros limits the nonzeros of the constraint matrix of any one LP
	// built (0: DefaultMaxLPNonzeros); see LP's budget.
	MaxNonzeros int
}

// Name is "lp", or "lp-all" with All.
func (v LP) Name() string {
	if v.All {
		return "lp-all"
	}
	return "lp"
}

// Verify decides s over r (batch 1).
func (v LP) Verify(ctx context.Context, g *nets.Graph, r Region, s bounds.Spec) (Result, error) {
	return verifyOne(ctx, v, g, r, s)
}

// VerifyBatch decides specs[i] over row i of r, for every row: α-CROWN on the
// whole batch, then one LP per sample. A sample not verified is Falsified when
// the centre of its box or the input part of an LP minimiser violates the spec
// on the real network.
func (v LP) VerifyBatch(ctx context.Context, g *nets.Graph, r Region, specs []bounds.Spec) ([]Result, error) {
	lower, points, skipped, err := v.bounds(ctx, g, r, specs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.Name(), err)
	}
	out, err := results(g, r, specs, lower)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.Name(), err)
	}
	for i := range out {
		if out[i].Verdict == Unknown && skipped[i] {
			out[i].Reason = ReasonLPSize
		}
		if out[i].Verdict != Unknown || points[i] == nil {
			continue
		}
		x := nets.FromData(points[i], append([]int{1}, r.Lo.Shape[1:]...)...)
		y, err := g.Logits(x)
		if err != nil {
			return nil, fmt.Errorf("%s: evaluating an LP minimiser: %w", v.Name(), err)
		}
		val, err := specValue(specs[i], y.Data)
		if err != nil {
			return nil, fmt.Errorf("%s: sample %d: %w", v.Name(), i, err)
		}
		if val <= 0 {
			out[i].Verdict, out[i].Counterexample = Falsified, x
		}
	}
	return out, nil
}

// bounds returns, per sample, the margin of every spec row, max(LP, α-CROWN),
// the input part of the LP minimiser of its worst row (clamped into the
// region; nil when the LP gave none), and whether the sample's LP was skipped
// for its size (its margins are then α-CROWN's alone).
func (v LP) bounds(ctx context.Context, g *nets.Graph, r Region, specs []bounds.Spec) ([][]float64, [][]float64, []bool, error) {
	lpLower, alpha, points, err := v.lpBounds(ctx, g, r, specs)
	if err != nil {
		return nil, nil, nil, err
	}
	skipped := make([]bool, len(lpLower))
	for i, rows := range lpLower {
		if rows == nil {
			lpLower[i], skipped[i] = alpha[i], true
			continue
		}
		for row := range rows {
			rows[row] = max(rows[row], alpha[i][row])
		}
	}
	return lpLower, points, skipped, nil
}

// lpBounds returns the LP bound and the α-CROWN bound of every spec row of every
// sample, and the LP minimisers of bounds. A sample whose LP is over
// MaxNonzeros has nil LP bounds and minimiser.
func (v LP) lpBounds(ctx context.Context, g *nets.Graph, r Region, specs []bounds.Spec) (lpLower, alpha, points [][]float64, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	if g == nil {
		return nil, nil, nil, fmt.Errorf("no graph")
	}
	if err := r.check(len(specs)); err != nil {
		return nil, nil, nil, err
	}
	if v.MaxNonzeros < 0 {
		return nil, nil, nil, fmt.Errorf("LP size limit %d: want ≥ 0 (0: %d)", v.MaxNonzeros, DefaultMaxLPNonzeros)
	}
	for i, s := range specs {
		if err := checkSpec(s); err != nil {
			return nil, nil, nil, fmt.Errorf("spec %d: %w", i, err)
		}
	}
	net, err := extractLPNet(g, r.Lo.Shape[1:])
	if err != nil {
		return nil, nil, nil, err
	}
	opt := bounds.AlphaOptions{Options: bounds.Options{SoundFP: v.SoundFP, IntermediateAlpha: DefaultAlphaIterations, Context: ctx}, Iterations: DefaultAlphaIterations, LR: DefaultAlphaLR}
	res, err := bounds.AlphaCROWN(g, bounds.Box{Lo: r.Lo, Hi: r.Hi}, specs, opt)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	// CROWN is not monotone in its intermediate bounds, so with optimised
	// ones a row can, rarely, come out below plain CROWN's: keep the better.
	plain, err := bounds.CROWN(g, bounds.Box{Lo: r.Lo, Hi: r.Hi}, specs, opt.Options.Plain())
	if err != nil {
		return nil, nil, nil, err
	}
	for i := range res.Lower {
		for row, b := range plain.Lower[i] {
			res.Lower[i][row] = max(res.Lower[i][row], b)
		}
	}
	n := len(specs)
	per := r.Lo.Len() / n
	lpLower, points = make([][]float64, n), make([][]float64, n)
	for i := range specs {
		if err := ctx.Err(); err != nil {
			return nil, nil, nil, err
		}
		lo, hi := make([][]float64, len(net.pre)), make([][]float64, len(net.pre))
		for k, name := range net.pre {
			box, ok := res.Nodes[name]
			m := len(net.affine[k].b)
			if !ok || box.Lo == nil || box.Lo.Len() != n*m || box.Hi.Len() != n*m {
				return nil, nil, nil, fmt.Errorf("no bounds of %d values per sample for pre-activation %q", m, name)
			}
			lo[k] = append([]float64(nil), box.Lo.Data[i*m:(i+1)*m]...)
			hi[k] = append([]float64(nil), box.Hi.Data[i*m:(i+1)*m]...)
		}
		xlo, xhi := r.Lo.Data[i*per:(i+1)*per], r.Hi.Data[i*per:(i+1)*per]
		lpLower[i], points[i], err = v.sample(ctx, net, xlo, xhi, lo, hi, specs[i])
		if err != nil {
			return nil, nil, nil, fmt.Errorf("sample %d: %w", i, err)
		}
	}
	return lpLower, res.Lower, points, nil
}

// sample bounds every row of s over the relaxation of one sample (tightening the
// pre-activation bounds lo, hi in place first with All), and returns the input
// part of the minimiser of the worst row. When an LP it needs has more than
// MaxNonzeros nonzeros it returns nil bounds, without building that LP.
func (v LP) sample(ctx context.Context, net *lpNet, xlo, xhi []float64, lo, hi [][]float64, s bounds.Spec) ([]float64, []float64, error) {
	limit := nonzeroLimit(v.MaxNonzeros)
	K := len(net.pre)
	if minRelaxNonzeros(net, K) > limit {
		return nil, nil, nil // not even the affine rows fit: skip the tightening too
	}
	solver := lp.New()
	defer solver.Close()
	if v.All {
		for k := 0; k < K; k++ {
			if relaxSize(net, len(xlo), lo, hi, k, true).Nonzeros > limit {
				return nil, nil, nil
			}
			if err := tightenLayer(ctx, solver, net, xlo, xhi, lo, hi, k); err != nil {
				return nil, nil, err
			}
		}
	}
	if relaxSize(net, len(xlo), lo, hi, K, false).Nonzeros > limit {
		return nil, nil, nil
	}
	relax := buildRelax(net, xlo, xhi, lo, hi, K, false)
	if err := solver.Load(relax.p); err != nil {
		return nil, nil, relaxError("loading the relaxation", err)
	}
	last := net.affine[K]
	out := make([]float64, len(s.C))
	var point []float64
	worst := math.Inf(1)
	obj := make([]float64, relax.p.NumCols())
	for row, c := range s.C {
		if len(c) != len(last.b) {
			return nil, nil, fmt.Errorf("spec row %d has %d columns, the network %d outputs", row, len(c), len(last.b))
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		// C·y + D = (C·W)·h + (C·b + D), h the last layer's input columns.
		clear(obj)
		konst := s.D[row]
		for j, cj := range c {
			if cj == 0 {
				continue
			}
			konst += cj * last.b[j]
			w := last.W[j*last.in : (j+1)*last.in]
			for o, wv := range w {
				obj[relax.base+o] += cj * wv
			}
		}
		b, x, err := relax.minimise(ctx, solver, obj, konst)
		if err != nil {
			return nil, nil, relaxError(fmt.Sprintf("spec row %d", row), err)
		}
		out[row] = b
		if x != nil && b < worst {
			worst = b
			point = make([]float64, len(xlo))
			for i := range point {
				point[i] = min(max(x[i], xlo[i]), xhi[i])
			}
		}
	}
	return out, point, nil
}

// tightenLayer replaces the bounds of every unstable neuron of layer k by its
// minimum and maximum over the relaxation of the layers before it, where tighter.
// The context is checked before each neuron's pair of solves.
func tightenLayer(ctx context.Context, solver lp.Solver, net *lpNet, xlo, xhi []float64, lo, hi [][]float64, k int) error {
	relax := buildRelax(net, xlo, xhi, lo, hi, k, true)
	if err := solver.Load(relax.p); err != nil {
		return relaxError(fmt.Sprintf("loading layer %d", k+1), err)
	}
	obj := make([]float64, relax.p.NumCols())
	for o := range lo[k] {
		l, u := lo[k][o], hi[k][o]
		if !(l < 0 && u > 0) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		col := relax.z[k] + o
		obj[col] = 1
		nl, _, err := relax.minimise(ctx, solver, obj, 0)
		if err != nil {
			return relaxError(fmt.Sprintf("layer %d neuron %d", k+1, o), err)
		}
		obj[col] = -1
		nu, _, err := relax.minimise(ctx, solver, obj, 0)
		if err != nil {
			return relaxError(fmt.Sprintf("layer %d neuron %d", k+1, o), err)
		}
		obj[col] = 0
		nl, nu = max(l, nl), min(u, -nu)
		if nl <= nu { // else rounding crossed them: keep the old bounds
			lo[k][o], hi[k][o] = nl, nu
		}
	}
	return nil
}
