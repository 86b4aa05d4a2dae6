package attacks

import (
	"context"
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// AutoAttack is an ensemble in the manner of Croce & Hein, "Reliable evaluation of
// adversarial robustness with an ensemble of diverse parameter-free attacks", ICML
// 2020: the attacks of the list run in order, each only on the rows still robust
// (correctly classified and not broken by an earlier attack), and each row gets the
// first adversarial example found — so a row counts as robust only if every attack
// failed on it, the per-point worst case over the ensemble.
//
// NewAutoAttack's list is the "standard" version without FAB-T (not implemented
// here): APGD-CE, APGD-T (9 targets), then, for L∞ budgets, the black-box Square
// attack (5000 queries), which guards against gradient masking. Attacks is an
// ordinary slice: append, remove or reorder to taste. Each attack sees the still
// robust rows as a batch of their own, so its per-row random streams are indexed by
// position in that sub-batch (deterministic, and independent of the number of
// cores). Queries add up over the attacks, plus one forward pass for the clean
// prediction. Attacks needing gradients fail on a model that gives only scores.
type AutoAttack struct {
	Budget  Budget
	Attacks []Attack
	// Seed is the seed NewAutoAttack gave the attacks of the list; each attack uses
	// its own Seed field.
	Seed uint64
}

// NewAutoAttack returns the standard ensemble (see AutoAttack), every attack with
// budget b and seed seed.
func NewAutoAttack(b Budget, seed uint64) AutoAttack {
	list := []Attack{NewAPGD(b, seed), NewAPGDT(b, seed)}
	if b.Norm == LInf {
		list = append(list, NewSquare(b, seed))
	}
	return AutoAttack{Budget: b, Attacks: list, Seed: seed}
}

// NewAutoAttackRand returns the list of Croce & Hein's "rand" version, for
// randomised defences: APGD-CE then APGD-DLR (needs 3 classes or more), every attack
// with budget b and seed seed. The expectation over the defence's randomness is the
// model's business: wrap it in EOT (AutoAttack uses 20 draws).
func NewAutoAttackRand(b Budget, seed uint64) AutoAttack {
	dlr := NewAPGD(b, seed)
	dlr.Loss = DLR{}
	return AutoAttack{Budget: b, Attacks: []Attack{NewAPGD(b, seed), dlr}, Seed: seed}
}

// Name is "autoattack".
func (AutoAttack) Name() string { return "autoattack" }

// Run returns the ensemble's adversarial points, rows that are not misclassified
// reset to x.
func (a AutoAttack) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	r, err := a.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// Attack runs the ensemble and re-checks the result.
func (a AutoAttack) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	r, _, err := a.AttackBy(ctx, m, x, labels)
	return r, err
}

// AttackBy is Attack that also reports, per row, the name of the attack that broke
// it: "" for a row that stayed robust, "clean" for one misclassified to begin with.
func (a AutoAttack) AttackBy(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, []string, error) {
	name := a.Name()
	if err := a.Budget.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if x == nil || x.Rank() < 2 || x.Shape[0] == 0 || x.Shape[0] != len(labels) {
		return nil, nil, fmt.Errorf("%s: want a non-empty batch [n, ...] with one label per row", name)
	}
	for i, at := range a.Attacks {
		if at == nil {
			return nil, nil, fmt.Errorf("%s: attack %d of the list is nil", name, i)
		}
	}
	n := x.Shape[0]
	per := x.Len() / n
	z, err := wbLogits(ctx, m, x)
	if err != nil {
		return nil, nil, wbWrap(name, err)
	}
	pred := z.Argmax()
	adv := x.Clone()
	queries := make([]int, n)
	by := make([]string, n)
	for i := range labels {
		queries[i] = 1
		if pred[i] != labels[i] {
			by[i] = "clean"
		}
	}
	for _, at := range a.Attacks {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("%s: stopped before %s: %w", name, at.Name(), err)
		}
		var idx []int
		for i := range labels {
			if by[i] == "" {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			break
		}
		xs := wbGather(x, per, idx)
		ls := wbGatherInts(labels, idx)
		var r *Result
		sub := SubRows(ctx, idx) // each row keeps its random stream
		if d, ok := at.(Detailed); ok {
			r, err = d.Attack(sub, m, xs, ls)
		} else {
			var out *nets.Tensor
			if out, err = at.Run(sub, m, xs, ls); err == nil {
				r, err = Check(m, a.Budget, xs, out, ls, nil)
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %s: %w", name, at.Name(), err)
		}
		if len(r.Success) != len(idx) || len(r.Queries) != len(idx) || r.Adv == nil || r.Adv.Len() != xs.Len() {
			return nil, nil, fmt.Errorf("%s: %s returned a result of the wrong size for %d rows", name, at.Name(), len(idx))
		}
		for k, i := range idx {
			queries[i] += r.Queries[k]
			if r.Success[k] {
				copy(adv.Data[i*per:(i+1)*per], r.Adv.Data[k*per:(k+1)*per])
				by[i] = at.Name()
			}
		}
	}
	res, err := wbChecked(name, m, a.Budget, x, adv, labels, queries)
	if err != nil {
		return nil, nil, err
	}
	for i := range by {
		if !res.Success[i] && by[i] != "" {
			// Check is the judge: a row an attack claimed but Check does not
			// confirm (a model that is not deterministic) counts as robust.
			by[i] = ""
		}
	}
	return res, by, nil
}
