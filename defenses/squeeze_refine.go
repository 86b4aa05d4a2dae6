package defenses

import (
	"context"
	"fmt"
	"math"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// The squeeze detector's adaptive attack in two stages. One loss over its K+1
// logits does not work: while f(x) is still right the logit term dominates and the
// attack flips f(x) first; the squeezed copy f(q(x)) still says y, so the point is
// rejected, and from there the cheapest way down is to flip f(x) back (measured: 91
// of the first 100 images left at L∞ 0.3, fewer than FGSM breaks). The evasion has
// to go the other way round:
//
//  1. fool the squeezed branch: BPDA on f∘q (q straight through), the bit-depth
//     wrapper's own adaptive attack (the AdaptiveTarget's Model and Loss);
//  2. with q(x) frozen, make f(x) agree with f(q(x)): descend the cross-entropy of
//     softmax f(x) against softmax f(q(x*)) (exact gradient; the point of lowest
//     detector score ‖softmax f(x) − softmax f(q(x*))‖₁ is kept), every pixel kept
//     in the ε-ball, in [0, 1] and inside its squeezing level, so q(x) stays q(x*)
//     (squeezeRefine).
//
// A point where both branches agree on a wrong class is classified wrong and not
// rejected.

// refineSteps and refineStep are stage 2's sign-descent steps: 100, from ε/20
// down to 0.
const (
	refineSteps = 100
	refineStep  = 0.05
)

// squeezeRefine is stage 2 (see above) from the stage-1 points adv, for an L∞
// budget b around x.
func (d *SqueezeDetector) squeezeRefine(ctx context.Context, b attacks.Budget, x, adv *nets.Tensor, _ []int) (*nets.Tensor, error) {
	if b.Norm != attacks.LInf {
		return nil, fmt.Errorf("squeeze detector: the refining stage is for L∞ budgets, not %v", b.Norm)
	}
	f, ok := d.Base.(nets.Differentiable)
	if !ok {
		return nil, fmt.Errorf("squeeze detector: base %T has no gradients", d.Base)
	}
	if !nets.SameShape(x.Shape, adv.Shape) {
		return nil, fmt.Errorf("squeeze detector: %v points for inputs %v", adv.Shape, x.Shape)
	}
	// Each pixel's box: the ε-ball ∩ [b.Lo, b.Hi] ∩ the squeezing level of the
	// stage-1 point (q rounds halves up: level k is [(k−½)/m, (k+½)/m)).
	m := math.Exp2(float64(d.Bits)) - 1
	lo, hi := x.Clone(), x.Clone()
	for i, v := range x.Data {
		k := math.Round(min(max(adv.Data[i], 0), 1) * m)
		lo.Data[i] = max(v-b.Eps, b.Lo, (k-0.5)/m)
		hi.Data[i] = min(v+b.Eps, b.Hi, math.Nextafter((k+0.5)/m, math.Inf(-1)))
		if k == m {
			hi.Data[i] = min(v+b.Eps, b.Hi)
		}
	}
	target, err := d.Base.Logits(squeezeBits(adv, d.Bits))
	if err != nil {
		return nil, fmt.Errorf("squeeze detector: %w", err)
	}
	n, per, k := x.Shape[0], x.Len()/x.Shape[0], target.Shape[1]
	p2 := make([]float64, n*k)
	for i := 0; i < n; i++ {
		softmaxRow(target.Data[i*k:(i+1)*k], p2[i*k:(i+1)*k])
	}
	cur := adv.Clone()
	best, bestScore := adv.Clone(), make([]float64, n)
	for i := range bestScore {
		bestScore[i] = math.Inf(1)
	}
	p1 := make([]float64, k)
	for step := 0; step <= refineSteps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		z, err := d.Base.Logits(cur)
		if err != nil {
			return nil, fmt.Errorf("squeeze detector: %w", err)
		}
		dz := nets.NewTensor(n, k)
		for i := 0; i < n; i++ {
			softmaxRow(z.Data[i*k:(i+1)*k], p1)
			score := 0.0
			for j := range p1 {
				score += math.Abs(p1[j] - p2[i*k+j])
				// The descent follows the cross-entropy of softmax f(x) against
				// the squeezed branch's probabilities, −Σ p2 log p1, whose
				// logit gradient p1 − p2 vanishes exactly where the branches
				// agree: smoother than the L1 score's, whose minimum it shares.
				dz.Data[i*k+j] = p1[j] - p2[i*k+j]
			}
			if score < bestScore[i] {
				bestScore[i] = score
				copy(best.Data[i*per:(i+1)*per], cur.Data[i*per:(i+1)*per])
			}
		}
		if step == refineSteps {
			break
		}
		grad, err := vjp(f, cur, dz)
		if err != nil {
			return nil, fmt.Errorf("squeeze detector: %w", err)
		}
		// Steps shrink linearly to 0, so the descent settles instead of
		// oscillating around the agreement the threshold asks for.
		size := refineStep * b.Eps * float64(refineSteps-step) / refineSteps
		for i, gv := range grad.Data {
			cur.Data[i] = min(max(cur.Data[i]-size*sign(gv), lo.Data[i]), hi.Data[i])
		}
	}
	return best, nil
}
