package attacks

import (
	"context"
	"fmt"
	"math"

	"github.com/certify-dev/certify/nets"
)

// EADRule is how EAD chooses among the adversarial points it visits.
type EADRule int

const (
	// EADElasticNet keeps the point with the smallest β‖δ‖₁ + ‖δ‖₂² (the paper's
	// "EN" decision rule).
	EADElasticNet EADRule = iota
	// EADL1 keeps the point with the smallest ‖δ‖₁ (the "L1" rule).
	EADL1
)

func (r EADRule) String() string {
	switch r {
	case EADElasticNet:
		return "en"
	case EADL1:
		return "l1"
	}
	return fmt.Sprintf("EADRule(%d)", int(r))
}

// EAD is the elastic-net attack of Chen, Sharma, Zhang, Yi & Hsieh, "EAD: Elastic-Net
// Attacks to Deep Neural Networks via Adversarial Examples", AAAI 2018, untargeted.
// With δ = x' − x it minimises over x' ∈ [Lo,Hi]^d (their eq. 3)
//
//	c·f(x') + β‖δ‖₁ + ‖δ‖₂²,   f(x') = max(z_y(x') − max_{i≠y} z_i(x'), −κ)
//
// (the C&W loss f₆) by ISTA with FISTA momentum (their eqs. 5–6): with
// g(x') = c·f(x') + ‖δ‖₂² and a learning rate α_k decaying as LR·√(1 − k/Steps),
//
//	x^{k+1} = S_β(y^k − α_k·∇g(y^k))
//	y^{k+1} = x^{k+1} + k/(k+3)·(x^{k+1} − x^k)
//
// where S_β is the projected shrinkage-thresholding operator (their eq. 4), per
// coordinate with u = z − x:
//
//	[S_β(z)]_i = min(z_i − β, Hi)  if u_i > β
//	             x_i               if |u_i| ≤ β
//	             max(z_i + β, Lo)  if u_i < −β
//
// (the threshold is β itself, not α_k·β, as in the paper and its reference code).
// The constant c is found per row by the binary search of C&W (SearchSteps rounds
// from InitialConst, see CW), each round restarting from x^0 = y^0 = x and stopping
// early when the objective at x^k has not decreased by 0.01 % over Steps/10
// iterations. Among all adversarial iterates x^k (z_y < max_{i≠y} z_i − κ) the attack
// keeps the one that is best by Rule: the elastic-net value β‖δ‖₁ + ‖δ‖₂² (EN) or
// ‖δ‖₁ (L1).
//
// Defaults (NewEAD): β = 1e-3, EN rule, κ = 0, LR = 0.01, SearchSteps = 9,
// InitialConst = 1e-3, Steps = 1000 (the paper's). β trades L2 for sparsity: with
// β = 1e-3 the points are close to the minimal-L2 ones; the L1 rule finds nearly
// L1-minimal points only with a larger β (the paper also reports β = 1e-2 and 1e-1).
//
// EAD is a minimal-norm attack (see MinimalNorm): MinNorm returns the best point
// found whatever its distance, with Dist in the budget's norm (L1 is EAD's natural
// budget; L2 and L∞ are accepted); Attack keeps it only inside the budget. Queries
// counts one gradient evaluation and one forward pass per iteration, plus one.
type EAD struct {
	// Budget: any norm (L1 is EAD's); Lo, Hi the data domain; Eps used by Attack only.
	Budget Budget
	// Beta β > 0 weighs the L1 term. Zero means 1e-3.
	Beta float64
	// Rule is the decision rule (EADElasticNet, the zero value, or EADL1).
	Rule EADRule
	// Confidence κ ≥ 0: the margin by which the adversarial class must win.
	Confidence float64
	// Steps is the number of ISTA iterations per binary-search round. Zero means 1000.
	Steps int
	// SearchSteps is the number of binary-search rounds on c. Zero means 9.
	SearchSteps int
	// LR is the initial learning rate α_0. Zero means 0.01.
	LR float64
	// InitialConst is the first c. Zero means 1e-3.
	InitialConst float64
	// NoAbortEarly disables the early stop of a round whose objective stalls.
	NoAbortEarly bool
	// Seed is unused: EAD is deterministic. It is kept for a uniform API.
	Seed uint64
}

// NewEAD returns EAD with the paper's defaults.
func NewEAD(b Budget, seed uint64) EAD {
	return EAD{Budget: b, Beta: 1e-3, Rule: EADElasticNet, Steps: 1000, SearchSteps: 9, LR: 0.01, InitialConst: 1e-3, Seed: seed}
}

// Name implements Attack.
func (a EAD) Name() string {
	if a.Rule == EADL1 {
		return "ead-l1"
	}
	return "ead"
}

func (a EAD) withDefaults() (EAD, error) {
	if a.Beta == 0 {
		a.Beta = 1e-3
	}
	if a.Steps == 0 {
		a.Steps = 1000
	}
	if a.SearchSteps == 0 {
		a.SearchSteps = 9
	}
	if a.LR == 0 {
		a.LR = 0.01
	}
	if a.InitialConst == 0 {
		a.InitialConst = 1e-3
	}
	switch {
	case a.Rule != EADElasticNet && a.Rule != EADL1:
		return a, fmt.Errorf("ead: unknown decision rule %v", a.Rule)
	case a.Budget.Norm != L1 && a.Budget.Norm != L2 && a.Budget.Norm != LInf:
		return a, fmt.Errorf("ead: unknown norm %v", a.Budget.Norm)
	case !(a.Beta > 0) || math.IsInf(a.Beta, 0):
		return a, fmt.Errorf("ead: β %g must be positive and finite", a.Beta)
	}
	if err := checkSearch("ead", a.Steps, a.SearchSteps, a.LR, a.InitialConst, a.Confidence); err != nil {
		return a, err
	}
	return a, minNormDomain(a.Budget)
}

// Run implements Attack.
func (a EAD) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	r, err := a.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// Attack implements Detailed: MinNorm, then only the points inside the budget.
func (a EAD) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	return minNormAttack(ctx, "ead", a, a.Budget, m, x, labels)
}

// MinNorm implements MinimalNorm.
func (a EAD) MinNorm(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	a, err := a.withDefaults()
	if err != nil {
		return nil, err
	}
	return minNormOptimise(ctx, "ead", a.Budget, m, x, labels, a.chunk)
}

// eadRow is the optimisation state of one row.
type eadRow struct {
	i                   int // row index within the chunk
	xk, yk, next        []float64
	c, lower, upper     float64
	prev                float64
	active, roundFooled bool
	bestScore           float64
	best                []float64
}

// eadShrink is the projected shrinkage-thresholding operator S_β of Chen et al.
// (2018), eq. 4, for one coordinate: z is the gradient step, x0 the original value.
func eadShrink(z, x0, beta, lo, hi float64) float64 {
	switch u := z - x0; {
	case u > beta:
		return min(z-beta, hi)
	case u < -beta:
		return max(z+beta, lo)
	}
	return x0
}

func (a EAD) chunk(ctx context.Context, d nets.Differentiable, x, adv *nets.Tensor, labels, queries []int, lo, hi int) error {
	per := x.Len() / x.Shape[0]
	rowShape := x.Shape[1:]
	n := hi - lo
	x0 := func(i int) []float64 { return x.Data[(lo+i)*per : (lo+i+1)*per] }
	z0, k, err := minNormLogits(d, minNormRowsOf(x, lo, hi))
	if err != nil {
		return err
	}
	var rows []*eadRow
	for i := 0; i < n; i++ {
		queries[lo+i]++
		y := labels[lo+i]
		if y < 0 || y >= k {
			return fmt.Errorf("row %d: label %d outside [0,%d)", lo+i, y, k)
		}
		if minNormMargin(z0.Data[i*k:(i+1)*k], y) > 0 {
			continue // already misclassified: distance 0
		}
		rows = append(rows, &eadRow{
			i: i, xk: make([]float64, per), yk: make([]float64, per), next: make([]float64, per),
			c: a.InitialConst, upper: 1e10, bestScore: math.Inf(1),
		})
	}
	every := max(1, a.Steps/10)
	for round := 0; round < a.SearchSteps && len(rows) > 0; round++ {
		for _, r := range rows {
			copy(r.xk, x0(r.i))
			copy(r.yk, x0(r.i))
			r.prev, r.active, r.roundFooled = math.Inf(1), true, false
		}
		for it := 0; it < a.Steps; it++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			var act []*eadRow
			for _, r := range rows {
				if r.active {
					act = append(act, r)
				}
			}
			if len(act) == 0 {
				break
			}
			batch := nets.NewTensor(append([]int{len(act)}, rowShape...)...)
			labs := make([]int, len(act))
			for ai, r := range act {
				copy(batch.Data[ai*per:], r.yk)
				labs[ai] = labels[lo+r.i]
			}
			margins, g, err := minNormGrad(d, batch, labs, nets.Margin{})
			if err != nil {
				return err
			}
			alpha := a.LR * math.Sqrt(1-float64(it)/float64(a.Steps))
			momentum := float64(it) / float64(it+3)
			for ai, r := range act {
				xr := x0(r.i)
				gm := g.Data[ai*per : (ai+1)*per]
				// ∇g(y) = 2(y − x) + c·∇f, with ∇f = −∇margin while f > −κ.
				fc := 0.0
				if margins[ai] < a.Confidence {
					fc = -r.c
				}
				for t, yv := range r.yk {
					r.next[t] = eadShrink(yv-alpha*(2*(yv-xr[t])+fc*gm[t]), xr[t], a.Beta, a.Budget.Lo, a.Budget.Hi)
				}
				for t, v := range r.next {
					r.yk[t] = v + momentum*(v-r.xk[t])
				}
				r.xk, r.next = r.next, r.xk
				copy(batch.Data[ai*per:], r.xk)
			}
			z, _, err := minNormLogits(d, batch)
			if err != nil {
				return err
			}
			for ai, r := range act {
				queries[lo+r.i] += 2
				xr := x0(r.i)
				l1, l2sq := 0.0, 0.0
				for t, v := range r.xk {
					dv := v - xr[t]
					l1 += math.Abs(dv)
					l2sq += dv * dv
				}
				margin := minNormMargin(z.Data[ai*k:(ai+1)*k], labels[lo+r.i])
				if margin > a.Confidence {
					r.roundFooled = true
					score := a.Beta*l1 + l2sq
					if a.Rule == EADL1 {
						score = l1
					}
					if score < r.bestScore {
						r.bestScore = score
						r.best = append(r.best[:0], r.xk...)
					}
				}
				if !a.NoAbortEarly && it%every == 0 {
					obj := r.c*max(-margin, -a.Confidence) + l2sq + a.Beta*l1
					if obj > r.prev*0.9999 {
						r.active = false
						continue
					}
					r.prev = obj
				}
			}
		}
		for _, r := range rows {
			minNormSearchC(&r.c, &r.lower, &r.upper, r.roundFooled)
		}
	}
	for _, r := range rows {
		if r.best != nil {
			copy(adv.Data[(lo+r.i)*per:(lo+r.i+1)*per], r.best)
		}
	}
	return nil
}
