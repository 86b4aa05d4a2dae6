package attacks

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
)

// APGD is Auto-PGD of Croce & Hein, "Reliable evaluation of adversarial robustness
// with an ensemble of diverse parameter-free attacks", ICML 2020, Algorithm 1: PGD
// with momentum whose step size needs no tuning. From x^(0) (uniform in the ball,
// as their code, or x) with η = 2ε:
//
//	z^(k+1) = Π(x^(k) + η·dir(∇f(x^(k))))                      (dir: sign for L∞, ∇/‖∇‖₂ for L2)
//	x^(k+1) = Π(x^(k) + α·(z^(k+1) − x^(k)) + (1 − α)·(x^(k) − x^(k−1)))   (α = 1 at k = 0)
//
// keeping the best point x_max = argmax f. At the checkpoints w_j = ⌈p_j·N⌉, with
// p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06), η is halved
// and the iterate reset to x_max (its gradient reused) if
//
//  1. Σ_{i=w_{j−1}}^{w_j−1} 1[f(x^(i+1)) > f(x^(i))] < ρ·(w_j − w_{j−1})  (few successful steps), or
//  2. η^(w_{j−1}) = η^(w_j) and f_max^(w_{j−1}) = f_max^(w_j)          (no halving and no progress).
//
// The momentum term after such a reset is x_max − x^(k−1), as in the authors' code.
// f is Loss: cross-entropy (APGD-CE) or DLR (APGD-DLR); every row of every iterate is
// checked, and the first misclassified one is returned (EarlyStop stops the row there;
// without it the misclassified iterate of highest loss is kept). Restarts rerun rows
// not yet broken from new random starts, drawn from RowRand(Seed, Row(ctx, row)) (see WithRows).
// Cost: Iters gradient evaluations and one forward pass per row and restart.
type APGD struct {
	Budget   Budget
	Iters    int       // N_iter
	Restarts int       // runs from independent random starts
	Loss     nets.Loss // nil means cross-entropy
	Rho      float64   // ρ of condition 1, in (0, 1]
	Momentum float64   // α, in (0, 1]: 1 is plain PGD with the adaptive step
	// RandomStart draws x^(0) uniformly from the ball (the authors' code); else x^(0) = x.
	RandomStart bool
	// EarlyStop stops a row at its first misclassified iterate; otherwise every
	// row runs all iterations and the misclassified iterate of highest loss is kept.
	EarlyStop bool
	Seed      uint64
}

// NewAPGD returns APGD-CE with the paper's parameters: 100 iterations, ρ = 0.75,
// α = 0.75, one restart, random start.
func NewAPGD(b Budget, seed uint64) APGD {
	return APGD{Budget: b, Iters: 100, Restarts: 1, Loss: nets.CrossEntropy{}, Rho: 0.75, Momentum: 0.75,
		RandomStart: true, EarlyStop: true, Seed: seed}
}

// Name is "apgd-ce" or "apgd-dlr" by loss, else "apgd".
func (a APGD) Name() string {
	switch a.Loss.(type) {
	case nil, nets.CrossEntropy, *nets.CrossEntropy:
		return "apgd-ce"
	case DLR, *DLR:
		return "apgd-dlr"
	}
	return "apgd"
}

// Run returns the APGD points, rows that are not misclassified reset to x.
func (a APGD) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	r, err := a.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// Attack runs APGD on every row and re-checks the result.
func (a APGD) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	d, per, err := wbCheck(a.Name(), m, a.Budget, x, labels, LInf, L2)
	if err != nil {
		return nil, err
	}
	core, err := newAPGDCore(a.Name(), a.Budget, a.Iters, a.Restarts, a.Rho, a.Momentum, a.RandomStart, a.EarlyStop)
	if err != nil {
		return nil, err
	}
	loss := wbLossOrCE(a.Loss)
	best := newWBBest(x, per, a.EarlyStop)
	rngs := make([]*rand.Rand, len(labels))
	for r := 0; r < a.Restarts; r++ {
		err := core.run(ctx, d, x, labels, per, func([]int) wbLossFor { return wbSameLoss(loss) }, a.Seed, rngs, best)
		if err != nil {
			return nil, err
		}
	}
	return wbChecked(a.Name(), m, a.Budget, x, best.adv, labels, best.queries)
}

// apgdCore is one run of Algorithm 1 over a batch; APGD and APGD-T share it.
type apgdCore struct {
	name        string
	budget      Budget
	iters       int
	rho, alpha  float64
	random      bool
	earlyStop   bool
	checkpoints []int
}

func newAPGDCore(name string, b Budget, iters, restarts int, rho, alpha float64, random, earlyStop bool) (apgdCore, error) {
	if iters < 1 || restarts < 1 {
		return apgdCore{}, fmt.Errorf("%s: %d iterations and %d restarts: both must be at least 1", name, iters, restarts)
	}
	if !(rho > 0 && rho <= 1) || !(alpha > 0 && alpha <= 1) {
		return apgdCore{}, fmt.Errorf("%s: ρ = %g and momentum α = %g must lie in (0, 1]", name, rho, alpha)
	}
	return apgdCore{name: name, budget: b, iters: iters, rho: rho, alpha: alpha, random: random,
		earlyStop: earlyStop, checkpoints: apgdCheckpoints(iters)}, nil
}

// apgdCheckpoints returns the distinct w_j = ⌈p_j·n⌉ in [1, n] of Croce & Hein's
// schedule: p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06).
// The p_j are whole hundredths, computed in integers so that ⌈·⌉ is exact (in
// floating point 0.22·100 rounds above 22).
func apgdCheckpoints(n int) []int {
	var w []int
	prev, p := 0, 22
	for p <= 100 {
		c := (p*n + 99) / 100
		if c >= 1 && c <= n && (len(w) == 0 || c > w[len(w)-1]) {
			w = append(w, c)
		}
		prev, p = p, p+max(p-prev-3, 6)
	}
	return w
}

// apgdHalve is the test at checkpoint w_j of Algorithm 1: halve η if
//
//  1. fewer than ρ·(w_j − w_{j−1}) of the steps since the last checkpoint increased
//     the loss (increases of them did; span = w_j − w_{j−1}), or
//  2. η was not halved at the last checkpoint and the best loss has not improved
//     since (fmax ≤ fmaxLast: it never decreases, so this is equality).
func apgdHalve(increases, span int, rho float64, halvedLast bool, fmax, fmaxLast float64) bool {
	cond1 := float64(increases) < rho*float64(span)
	cond2 := !halvedLast && !(fmax > fmaxLast)
	return cond1 || cond2
}

// run attacks the rows of x that have no adversarial example yet (all rows without
// earlyStop) with one run of Algorithm 1 from a fresh start, offering every iterate
// to best. lossAt gives the loss for a sub-batch of original rows idx.
func (c apgdCore) run(ctx context.Context, m nets.Differentiable, x *nets.Tensor, labels []int, per int,
	lossAt func(idx []int) wbLossFor, seed uint64, rngs []*rand.Rand, best *wbBest) error {
	var rows []int
	for i := range labels {
		if !(c.earlyStop && best.found[i]) {
			rows = append(rows, i)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	nr := len(rows)
	xs := wbGather(x, per, rows)
	cur := xs.Clone()
	if c.random {
		for j, i := range rows {
			if rngs[i] == nil {
				rngs[i] = RowRand(seed, Row(ctx, i))
			}
			wbRandomStart(c.budget, rngs[i], cur.Data[j*per:(j+1)*per], xs.Data[j*per:(j+1)*per])
		}
	}
	rowLabels := wbGatherInts(labels, rows)
	ev, err := wbEval(ctx, m, cur, rowLabels, lossAt(rows), true)
	if err != nil {
		return fmt.Errorf("%s: start: %w", c.name, err)
	}
	prev := cur.Clone()
	grad := ev.grad
	xmax, gmax := cur.Clone(), grad.Clone()
	fcur := append([]float64(nil), ev.loss...)
	fmax := append([]float64(nil), ev.loss...)
	fmaxLast := append([]float64(nil), ev.loss...)
	eta := make([]float64, nr)
	countInc := make([]int, nr)
	reducedLast := make([]bool, nr)
	var active []int
	for j, i := range rows {
		eta[j] = 2 * c.budget.Eps
		best.queries[i]++
		if !best.offer(i, cur.Data[j*per:(j+1)*per], ev.loss[j], ev.pred[j] != labels[i]) || !c.earlyStop {
			active = append(active, j)
		}
	}
	z := make([]float64, per)
	nextCheck, wPrev := 0, 0
	for k := 0; k < c.iters && len(active) > 0; k++ {
		if err := wbCtxErr(ctx, c.name, k); err != nil {
			return err
		}
		for _, j := range active {
			cj, pj, xj := cur.Data[j*per:(j+1)*per], prev.Data[j*per:(j+1)*per], xs.Data[j*per:(j+1)*per]
			copy(z, cj)
			wbAscend(c.budget, z, xj, grad.Data[j*per:(j+1)*per], eta[j])
			if k > 0 {
				for q := range z {
					z[q] = cj[q] + c.alpha*(z[q]-cj[q]) + (1-c.alpha)*(cj[q]-pj[q])
				}
				c.budget.Project(z, xj)
			}
			copy(pj, cj)
			copy(cj, z)
		}
		sub := cur
		if len(active) < nr {
			sub = wbGather(cur, per, active)
		}
		idx := make([]int, len(active))
		for q, j := range active {
			idx[q] = rows[j]
		}
		ev, err := wbEval(ctx, m, sub, wbGatherInts(labels, idx), lossAt(idx), k < c.iters-1)
		if err != nil {
			return fmt.Errorf("%s: iteration %d: %w", c.name, k, err)
		}
		next := active[:0]
		for q, j := range active {
			i := rows[j]
			best.queries[i]++
			f := ev.loss[q]
			if best.offer(i, sub.Data[q*per:(q+1)*per], f, ev.pred[q] != labels[i]) && c.earlyStop {
				continue
			}
			next = append(next, j)
			if f > fcur[j] {
				countInc[j]++
			}
			fcur[j] = f
			if ev.grad != nil {
				copy(grad.Data[j*per:(j+1)*per], ev.grad.Data[q*per:(q+1)*per])
			}
			if f > fmax[j] {
				fmax[j] = f
				copy(xmax.Data[j*per:(j+1)*per], cur.Data[j*per:(j+1)*per])
				if ev.grad != nil {
					copy(gmax.Data[j*per:(j+1)*per], ev.grad.Data[q*per:(q+1)*per])
				}
			}
		}
		active = next
		if nextCheck < len(c.checkpoints) && k+1 == c.checkpoints[nextCheck] {
			w := c.checkpoints[nextCheck]
			for _, j := range active {
				reduce := apgdHalve(countInc[j], w-wPrev, c.rho, reducedLast[j], fmax[j], fmaxLast[j])
				reducedLast[j], fmaxLast[j], countInc[j] = reduce, fmax[j], 0
				if reduce {
					eta[j] /= 2
					copy(cur.Data[j*per:(j+1)*per], xmax.Data[j*per:(j+1)*per])
					copy(grad.Data[j*per:(j+1)*per], gmax.Data[j*per:(j+1)*per])
					fcur[j] = fmax[j]
				}
			}
			wPrev = w
			nextCheck++
		}
	}
	return nil
}
