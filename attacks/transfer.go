package attacks

import (
	"context"
	"errors"
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// Transfer is the transfer attack: adversarial examples crafted on a surrogate
// model, usually white-box, are submitted unchanged to the target, which is only
// queried once per row (Szegedy et al., "Intriguing properties of neural
// networks", ICLR 2014, Sec. 4.3; Papernot, McDaniel & Goodfellow, "Transferability
// in Machine Learning", 2016). It needs nothing of the target but its scores, and
// tests whether a model's robustness holds against perturbations that fool a model
// trained for the same task.
//
// Success is judged on the target by Check against Budget: the crafting attack must
// therefore work within the same threat model (a point outside Budget is an error,
// not a failure). Rows the surrogate resists are still submitted (as x), so a row
// the target misclassifies unperturbed counts as a success at distance 0, as with
// every attack. Queries are 1 per row; the surrogate's cost is not counted. All
// randomness is the crafting attack's.
//
// Points that only just cross the surrogate's boundary rarely transfer: craft with
// PGD run to the end (EarlyStop off, the highest-loss point kept). Between the
// shipped MNIST models at L∞ ε = 0.1, that transferred 11 (margin loss) or 13
// (cross-entropy) of the 99 PGD-breakable MLP samples from the CNN, against 3 with
// early stopping.
type Transfer struct {
	Budget Budget
	// Surrogate is the model the adversarial examples are crafted on; a
	// nets.Differentiable for a white-box WhiteBox.
	Surrogate nets.Classifier
	// WhiteBox crafts the examples on Surrogate, with its own budget (inside
	// Budget), steps and seed, e.g. PGD.
	WhiteBox Attack
}

// NewTransfer returns the transfer of whiteBox's examples from surrogate.
func NewTransfer(b Budget, surrogate nets.Classifier, whiteBox Attack) Transfer {
	return Transfer{Budget: b, Surrogate: surrogate, WhiteBox: whiteBox}
}

// Name is "transfer".
func (Transfer) Name() string { return "transfer" }

// Run returns the crafted points the target misclassifies, other rows reset to x.
func (a Transfer) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	r, err := a.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// Attack crafts on the surrogate, then checks the points on the target m.
func (a Transfer) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	if a.Surrogate == nil || a.WhiteBox == nil {
		return nil, errors.New("transfer: needs a surrogate model and an attack to craft on it")
	}
	n, _, err := bbCheck(a.Budget, x, labels, LInf, L2, L1)
	if err != nil {
		return nil, fmt.Errorf("transfer: %w", err)
	}
	adv, err := a.WhiteBox.Run(ctx, a.Surrogate, x, labels)
	if err != nil {
		return nil, fmt.Errorf("transfer: crafting with %s on the surrogate: %w", a.WhiteBox.Name(), err)
	}
	if adv == nil {
		return nil, fmt.Errorf("transfer: %s returned no points", a.WhiteBox.Name())
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("transfer: %w", err)
	}
	queries := make([]int, n)
	for i := range queries {
		queries[i] = 1
	}
	r, err := Check(m, a.Budget, x, adv, labels, queries)
	if err != nil {
		return nil, fmt.Errorf("transfer: %s's points on the target, against the transfer budget: %w", a.WhiteBox.Name(), err)
	}
	return r, nil
}
