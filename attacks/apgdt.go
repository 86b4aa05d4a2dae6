package attacks

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
)

// APGDT is APGD-T, the targeted Auto-PGD of Croce & Hein (ICML 2020), Section 4: for
// each of the Targets classes t ranked highest by the model on the clean row (the
// true class excluded), run APGD (Algorithm 1, see APGD) maximising the targeted DLR
// loss −(z_y − z_t)/(z_π1 − (z_π3 + z_π4)/2 + 1e-12) (TargetedDLR). Success is still
// untargeted: any misclassified iterate counts. Each target run gets Restarts random
// starts; with EarlyStop a row leaves as soon as it is broken, and later targets and
// restarts skip it. The paper's standard setting: 9 targets, 100 iterations, 1
// restart. Needs at least 4 classes; Targets is capped at classes − 1.
// Cost: one forward pass for the ranking, then Iters gradient evaluations and one
// forward pass per row, target and restart.
//
// The per-row targets travel inside the loss (TargetedDLR), so the model must show
// the loss the logits of the rows it was given, as nets.Graph and BPDA do; a wrapper
// that evaluates the loss on replicated rows (EOT) makes APGD-T fail with an error.
// Use APGD-CE and APGD-DLR there (NewAutoAttackRand).
type APGDT struct {
	Budget      Budget
	Iters       int
	Targets     int // number of target classes tried, from the most likely
	Restarts    int // per target
	Rho         float64
	Momentum    float64
	RandomStart bool
	EarlyStop   bool
	Seed        uint64
}

// NewAPGDT returns APGD-T with the paper's parameters: 9 targets, 100 iterations,
// ρ = 0.75, α = 0.75, one restart per target, random start.
func NewAPGDT(b Budget, seed uint64) APGDT {
	return APGDT{Budget: b, Iters: 100, Targets: 9, Restarts: 1, Rho: 0.75, Momentum: 0.75,
		RandomStart: true, EarlyStop: true, Seed: seed}
}

// Name is "apgd-t".
func (APGDT) Name() string { return "apgd-t" }

// Run returns the APGD-T points, rows that are not misclassified reset to x.
func (a APGDT) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	r, err := a.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// Attack runs APGD-T on every row and re-checks the result.
func (a APGDT) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	d, per, err := wbCheck(a.Name(), m, a.Budget, x, labels, LInf, L2)
	if err != nil {
		return nil, err
	}
	if a.Targets < 1 {
		return nil, fmt.Errorf("%s: %d target classes: want at least 1", a.Name(), a.Targets)
	}
	core, err := newAPGDCore(a.Name(), a.Budget, a.Iters, a.Restarts, a.Rho, a.Momentum, a.RandomStart, a.EarlyStop)
	if err != nil {
		return nil, err
	}
	// Rank the classes on the clean rows.
	logits, err := wbLogits(ctx, d, x)
	if err != nil {
		return nil, wbWrap(a.Name(), err)
	}
	k := logits.Shape[1]
	for i, y := range labels {
		if y < 0 || y >= k {
			return nil, fmt.Errorf("%s: row %d: label %d outside [0,%d)", a.Name(), i, y, k)
		}
	}
	if k < 4 {
		return nil, fmt.Errorf("%s: the targeted DLR loss needs at least 4 classes, model has %d", a.Name(), k)
	}
	nt := min(a.Targets, k-1)
	// ranked[i] lists row i's classes other than y by decreasing clean logit.
	ranked := make([][]int, len(labels))
	order := make([]int, k)
	for i, y := range labels {
		dlrSortDesc(logits.Data[i*k:(i+1)*k], order)
		for _, c := range order {
			if c != y {
				ranked[i] = append(ranked[i], c)
			}
		}
	}
	best := newWBBest(x, per, a.EarlyStop)
	for i := range best.queries {
		best.queries[i] = 1 // the ranking pass
	}
	rngs := make([]*rand.Rand, len(labels))
	targets := make([]int, len(labels))
	lossAt := func(idx []int) wbLossFor {
		t := wbGatherInts(targets, idx)
		return func(lo, hi int) nets.Loss { return TargetedDLR{Targets: t[lo:hi]} }
	}
	for ti := 0; ti < nt; ti++ {
		for i := range targets {
			targets[i] = ranked[i][ti]
		}
		for r := 0; r < a.Restarts; r++ {
			if err := core.run(ctx, d, x, labels, per, lossAt, a.Seed, rngs, best); err != nil {
				return nil, fmt.Errorf("target rank %d: %w", ti+1, err)
			}
		}
	}
	return wbChecked(a.Name(), m, a.Budget, x, best.adv, labels, best.queries)
}
