package attacks

import (
	"context"

	"github.com/certify-dev/certify/nets"
)

// FGSM is the fast gradient sign method of Goodfellow, Shlens & Szegedy, "Explaining
// and Harnessing Adversarial Examples", ICLR 2015, eq. (3): one step of the full
// budget along the steepest-ascent direction of the linearised loss J,
//
//	L∞: x' = Π(x + ε·sign(∇ₓ J(x, y)))
//	L2: x' = Π(x + ε·∇ₓ J(x, y)/‖∇ₓ J(x, y)‖₂)      (the "fast gradient method")
//
// where Π clips to the data domain [Lo, Hi] (the step itself stays in the ball).
// A zero gradient coordinate (L∞) or a zero gradient (L2) does not move.
// Costs one gradient evaluation per row. L1 budgets are not supported.
type FGSM struct {
	Budget Budget
	// Loss is the J being ascended; nil means cross-entropy.
	Loss nets.Loss
	// Seed is unused (FGSM draws no random numbers); kept so every attack is built alike.
	Seed uint64
}

// NewFGSM returns FGSM with cross-entropy loss.
func NewFGSM(b Budget, seed uint64) FGSM {
	return FGSM{Budget: b, Loss: nets.CrossEntropy{}, Seed: seed}
}

// Name is "fgsm".
func (FGSM) Name() string { return "fgsm" }

// Run returns the FGSM points, rows that are not misclassified reset to x.
func (a FGSM) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	r, err := a.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// Attack runs FGSM on every row and re-checks the result.
func (a FGSM) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	d, per, err := wbCheck(a.Name(), m, a.Budget, x, labels, LInf, L2)
	if err != nil {
		return nil, err
	}
	if err := wbCtxErr(ctx, a.Name(), 0); err != nil {
		return nil, err
	}
	ev, err := wbEval(ctx, d, x, labels, wbSameLoss(wbLossOrCE(a.Loss)), true)
	if err != nil {
		return nil, wbWrap(a.Name(), err)
	}
	adv := x.Clone()
	queries := make([]int, len(labels))
	for i := range labels {
		sl := adv.Data[i*per : (i+1)*per]
		wbAscend(a.Budget, sl, x.Data[i*per:(i+1)*per], ev.grad.Data[i*per:(i+1)*per], a.Budget.Eps)
		queries[i] = 1
	}
	return wbChecked(a.Name(), m, a.Budget, x, adv, labels, queries)
}
