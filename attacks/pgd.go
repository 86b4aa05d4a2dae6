package attacks

import (
	"context"

	"github.com/certify-dev/certify/nets"
)

// PGD is projected gradient descent on the negative loss (that is, ascent on the
// loss) of Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models
// Resistant to Adversarial Attacks", ICLR 2018, eq. (2):
//
//	x_0 ~ U(B_ε(x)) ∩ domain,   x_{t+1} = Π_{B_ε(x) ∩ domain}(x_t + α·sign(∇ₓ L(x_t, y)))
//
// for L∞ (L2: steps α·∇/‖∇‖₂, projection onto the L2 ball then the domain), Steps
// times, from Restarts independent random starts (RandomStart; else from x). L is
// Loss: cross-entropy, or the margin max_{j≠y} z_j − z_y of Carlini & Wagner (2017),
// nets.Margin, positive exactly when the row is misclassified.
//
// Per row the result is the first misclassified iterate over all restarts (with
// EarlyStop the row then stops, and is skipped by later restarts); without EarlyStop
// every row runs every step of every restart and the misclassified iterate of
// highest loss is kept. Row i's random starts come from RowRand(Seed, Row(ctx, i)) (see WithRows), so the
// result does not depend on the number of cores (nor on the other rows, but for
// the rounding of the model calls they share: none seen with OpenBLAS).
//
// Defaults (NewPGD) follow Madry et al.'s MNIST challenge: 40 steps of α = 0.01 (at
// the ε given: they used ε = 0.3) from a random start, cross-entropy, 1 restart. For
// L2 budgets the step is 2.5ε/Steps (the rule of their robustness library), as 0.01
// is meaningless at L2 radii. Cost: Steps gradient evaluations and one forward pass
// per row and restart.
type PGD struct {
	Budget      Budget
	Steps       int
	Step        float64 // α, in input units
	Restarts    int
	Loss        nets.Loss // nil means cross-entropy
	RandomStart bool
	// EarlyStop stops a row at its first misclassified iterate (see PGD).
	EarlyStop bool
	Seed      uint64
}

// NewPGD returns PGD with Madry et al.'s defaults (see PGD).
func NewPGD(b Budget, seed uint64) PGD {
	a := PGD{Budget: b, Steps: 40, Step: 0.01, Restarts: 1, Loss: nets.CrossEntropy{}, RandomStart: true, EarlyStop: true, Seed: seed}
	if b.Norm == L2 {
		a.Step = 2.5 * b.Eps / float64(a.Steps)
	}
	return a
}

// Name is "pgd".
func (PGD) Name() string { return "pgd" }

// Run returns the PGD points, rows that are not misclassified reset to x.
func (a PGD) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	r, err := a.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// Attack runs PGD on every row and re-checks the result.
func (a PGD) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	d, per, err := wbCheck(a.Name(), m, a.Budget, x, labels, LInf, L2)
	if err != nil {
		return nil, err
	}
	best, err := wbAscent{name: a.Name(), budget: a.Budget, loss: a.Loss, steps: a.Steps, step: a.Step,
		restarts: a.Restarts, random: a.RandomStart, earlyStop: a.EarlyStop, seed: a.Seed}.run(ctx, d, x, labels, per)
	if err != nil {
		return nil, err
	}
	return wbChecked(a.Name(), m, a.Budget, x, best.adv, labels, best.queries)
}
