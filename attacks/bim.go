package attacks

import (
	"context"
	"math"

	"github.com/certify-dev/certify/nets"
)

// BIM is the basic iterative method (I-FGSM) of Kurakin, Goodfellow & Bengio,
// "Adversarial examples in the physical world", ICLR workshop 2017, eq. (1):
// FGSM steps of size α from x, each clipped back to the ε-ball and the domain,
//
//	x_0 = x,   x_{t+1} = Clip_{x,ε}(x_t + α·sign(∇ₓ J(x_t, y)))
//
// (L2: steps α·∇/‖∇‖₂, projected onto the ball). The paper, on the [0,255] scale,
// takes α = 1 and min(ε + 4, 1.25ε) steps; NewBIM does the same on the [0,1] scale:
// α = 1/255 and ⌈min(255ε + 4, 1.25·255ε)⌉ steps (at least 1) — e.g. 30 steps at
// ε = 0.1, 81 at ε = 0.3 — so that the steps can reach the border of the ball.
// For L2 the paper gives no schedule: NewBIM takes 10 steps of 2.5ε/10 (the step
// rule of Madry et al. 2018). Every iterate is checked: the first misclassified one
// is returned (and, with EarlyStop, the row stops there). No random numbers.
type BIM struct {
	Budget Budget
	Steps  int
	Step   float64 // α, in input units
	// Loss is the J being ascended; nil means cross-entropy.
	Loss nets.Loss
	// EarlyStop stops a row at its first misclassified iterate (saving its
	// remaining steps); otherwise every row runs all steps and the misclassified
	// iterate of highest loss is returned.
	EarlyStop bool
	// Seed is unused (BIM draws no random numbers); kept so every attack is built alike.
	Seed uint64
}

// NewBIM returns BIM with the paper's schedule (see BIM), cross-entropy, EarlyStop.
func NewBIM(b Budget, seed uint64) BIM {
	a := BIM{Budget: b, Loss: nets.CrossEntropy{}, EarlyStop: true, Seed: seed}
	if b.Norm == L2 {
		a.Steps, a.Step = 10, 2.5*b.Eps/10
		return a
	}
	e := 255 * b.Eps
	a.Steps = max(1, int(math.Ceil(min(e+4, 1.25*e)-1e-9)))
	a.Step = 1.0 / 255
	return a
}

// Name is "bim".
func (BIM) Name() string { return "bim" }

// Run returns the BIM points, rows that are not misclassified reset to x.
func (a BIM) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	r, err := a.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// Attack runs BIM on every row and re-checks the result.
func (a BIM) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	d, per, err := wbCheck(a.Name(), m, a.Budget, x, labels, LInf, L2)
	if err != nil {
		return nil, err
	}
	best, err := wbAscent{name: a.Name(), budget: a.Budget, loss: a.Loss, steps: a.Steps, step: a.Step,
		restarts: 1, earlyStop: a.EarlyStop, seed: a.Seed}.run(ctx, d, x, labels, per)
	if err != nil {
		return nil, err
	}
	return wbChecked(a.Name(), m, a.Budget, x, best.adv, labels, best.queries)
}
