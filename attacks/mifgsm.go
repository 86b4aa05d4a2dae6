package attacks

import (
	"context"
	"fmt"
	"math"

	"github.com/certify-dev/certify/nets"
)

// MIFGSM is the momentum iterative FGSM of Dong, Liao, Pang, Su, Zhu, Hu & Li,
// "Boosting Adversarial Attacks with Momentum", CVPR 2018, Algorithm 1: BIM whose
// steps follow an accumulated, L1-normalised gradient,
//
//	g_0 = 0,  g_{t+1} = μ·g_t + ∇ₓ J(x_t, y)/‖∇ₓ J(x_t, y)‖₁
//	x_{t+1} = Clip_{x,ε}(x_t + α·sign(g_{t+1}))
//
// (L2, their eq. 9: steps α·g_{t+1}/‖g_{t+1}‖₂, projected). The paper's setting:
// μ = 1, T = 10 iterations, α = ε/T, from x (no random start). Every iterate is
// checked: the first misclassified one is returned (and, with EarlyStop, the row
// stops there). No random numbers.
type MIFGSM struct {
	Budget Budget
	Steps  int     // T
	Step   float64 // α, in input units
	Decay  float64 // μ ≥ 0
	// Loss is the J being ascended; nil means cross-entropy.
	Loss nets.Loss
	// EarlyStop: as BIM.EarlyStop.
	EarlyStop bool
	// Seed is unused (MI-FGSM draws no random numbers); kept so every attack is built alike.
	Seed uint64
}

// NewMIFGSM returns MI-FGSM with the paper's μ = 1, T = 10, α = ε/10, cross-entropy.
func NewMIFGSM(b Budget, seed uint64) MIFGSM {
	return MIFGSM{Budget: b, Steps: 10, Step: b.Eps / 10, Decay: 1, Loss: nets.CrossEntropy{}, EarlyStop: true, Seed: seed}
}

// Name is "mifgsm".
func (MIFGSM) Name() string { return "mifgsm" }

// Run returns the MI-FGSM points, rows that are not misclassified reset to x.
func (a MIFGSM) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	r, err := a.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// Attack runs MI-FGSM on every row and re-checks the result.
func (a MIFGSM) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	d, per, err := wbCheck(a.Name(), m, a.Budget, x, labels, LInf, L2)
	if err != nil {
		return nil, err
	}
	if math.IsNaN(a.Decay) || math.IsInf(a.Decay, 0) || a.Decay < 0 {
		return nil, fmt.Errorf("%s: decay %g must be finite and >= 0", a.Name(), a.Decay)
	}
	best, err := wbAscent{name: a.Name(), budget: a.Budget, loss: a.Loss, steps: a.Steps, step: a.Step,
		restarts: 1, momentum: true, decay: a.Decay, earlyStop: a.EarlyStop, seed: a.Seed}.run(ctx, d, x, labels, per)
	if err != nil {
		return nil, err
	}
	return wbChecked(a.Name(), m, a.Budget, x, best.adv, labels, best.queries)
}
