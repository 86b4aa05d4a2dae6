package verify

import (
	"context"
	"fmt"
	"math"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// Verdict is a verifier's conclusion about one property.
type Verdict int

const (
	// Unknown: neither proved nor disproved (the zero value, so that a Result
	// nobody filled in never claims anything).
	Unknown Verdict = iota
	// Verified: the spec holds for every input of the region.
	Verified
	// Falsified: an input of the region violates the spec (Result.Counterexample).
	Falsified
)

func (v Verdict) String() string {
	switch v {
	case Unknown:
		return "unknown"
	case Verified:
		return "verified"
	case Falsified:
		return "falsified"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Result is the answer for one region and spec.
type Result struct {
	Verdict Verdict
	// Margin is the best proven lower bound of min_row (C·y + D)_row over the
	// region; Verdict is Verified exactly when Margin > 0. +Inf for a spec without
	// rows (nothing to prove).
	Margin float64
	// Counterexample, when Falsified, is an input of the region, [1, ...input
	// shape], whose output violates the spec.
	Counterexample *nets.Tensor
	// Nodes is the number of domains branch and bound bounded (0 for the
	// other verifiers, and when BaB needed no search).
	Nodes int
	// Reason, when Verdict is Unknown because a budget ran out, says which:
	// ReasonTimeout, ReasonLPSize, ReasonBaBDomains or ReasonBaBNodes (limits.go).
	// Empty otherwise, and when the method is just not tight enough.
	Reason string
}

// Verifier decides one property: spec s over region r (batch dimension 1) of the
// network g. Running out of budget is not an error but an Unknown result; errors are
// for inputs that make no sense (shapes, NaN) and for networks the verifier cannot
// handle (an unsupported op).
type Verifier interface {
	// Name is a short lower-case key, e.g. "crown".
	Name() string
	Verify(ctx context.Context, g *nets.Graph, r Region, s bounds.Spec) (Result, error)
}

// BatchVerifier is a Verifier whose cost is per batch: VerifyBatch decides one
// property per row of the batched region r ([n, ...input shape]), specs[i] for row
// i, and returns the results in order. The result of a row does not depend on the
// other rows (up to rounding in the last bits of the margin, which may depend on
// the batch size).
type BatchVerifier interface {
	Verifier
	VerifyBatch(ctx context.Context, g *nets.Graph, r Region, specs []bounds.Spec) ([]Result, error)
}

// Batch verifies every row of r with v: in one call when v is a BatchVerifier,
// else row by row.
func Batch(ctx context.Context, v Verifier, g *nets.Graph, r Region, specs []bounds.Spec) ([]Result, error) {
	if bv, ok := v.(BatchVerifier); ok {
		return bv.VerifyBatch(ctx, g, r, specs)
	}
	if err := r.check(len(specs)); err != nil {
		return nil, fmt.Errorf("%s: %w", v.Name(), err)
	}
	out := make([]Result, len(specs))
	for i, s := range specs {
		res, err := v.Verify(ctx, g, r.Row(i), s)
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		out[i] = res
	}
	return out, nil
}

// boundFunc computes, for a batch of boxes and one spec per row, the proven lower
// bound of every spec row: lower[sample][row].
type boundFunc func(g *nets.Graph, in bounds.Box, specs []bounds.Spec) ([][]float64, error)

// verifyBatch is VerifyBatch of the bound-propagation verifiers: check the inputs,
// bound, and turn the bounds into verdicts.
func verifyBatch(ctx context.Context, name string, g *nets.Graph, r Region, specs []bounds.Spec, bound boundFunc) ([]Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if g == nil {
		return nil, fmt.Errorf("%s: no graph", name)
	}
	if err := r.check(len(specs)); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for i, s := range specs {
		if err := checkSpec(s); err != nil {
			return nil, fmt.Errorf("%s: spec %d: %w", name, i, err)
		}
	}
	lower, err := bound(g, bounds.Box{Lo: r.Lo, Hi: r.Hi}, specs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	res, err := results(g, r, specs, lower)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return res, nil
}

// verifyOne is Verify of the bound-propagation verifiers: VerifyBatch on a batch
// of one.
func verifyOne(ctx context.Context, v BatchVerifier, g *nets.Graph, r Region, s bounds.Spec) (Result, error) {
	if r.Lo != nil && r.Lo.Batch() != 1 {
		return Result{}, fmt.Errorf("%s: Verify takes a region of batch 1, got shape %v (use VerifyBatch)", v.Name(), r.Lo.Shape)
	}
	res, err := v.VerifyBatch(ctx, g, r, []bounds.Spec{s})
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

// checkSpec checks that a spec is rectangular, finite and has one D per row.
func checkSpec(s bounds.Spec) error {
	if len(s.C) != len(s.D) {
		return fmt.Errorf("%d rows in C but %d in D", len(s.C), len(s.D))
	}
	for i, row := range s.C {
		if len(row) != len(s.C[0]) {
			return fmt.Errorf("row %d of C has %d columns, row 0 has %d", i, len(row), len(s.C[0]))
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("C[%d][%d] is %g", i, j, v)
			}
		}
		if math.IsNaN(s.D[i]) || math.IsInf(s.D[i], 0) {
			return fmt.Errorf("D[%d] is %g", i, s.D[i])
		}
	}
	return nil
}

// results turns lower[sample][row] into verdicts: Margin is the minimum over rows,
// Verified when positive. Samples not verified have the centre of their box
// evaluated, and are Falsified when it violates the spec.
func results(g *nets.Graph, r Region, specs []bounds.Spec, lower [][]float64) ([]Result, error) {
	if len(lower) != len(specs) {
		return nil, fmt.Errorf("bounds for %d samples, want %d", len(lower), len(specs))
	}
	out := make([]Result, len(specs))
	var open []int // samples not verified
	for i, l := range lower {
		if len(l) != len(specs[i].C) {
			return nil, fmt.Errorf("sample %d: bounds for %d spec rows, want %d", i, len(l), len(specs[i].C))
		}
		m := math.Inf(1)
		for row, v := range l {
			if math.IsNaN(v) {
				return nil, fmt.Errorf("sample %d: lower bound of spec row %d is NaN", i, row)
			}
			m = math.Min(m, v)
		}
		out[i].Margin = m
		if m > 0 {
			out[i].Verdict = Verified
		} else {
			open = append(open, i)
		}
	}
	if len(open) == 0 {
		return out, nil
	}
	centres := r.centres(open)
	logits, err := g.Logits(centres)
	if err != nil {
		return nil, fmt.Errorf("evaluating the centres of the regions: %w", err)
	}
	k := logits.Len() / logits.Batch()
	for t, i := range open {
		y := logits.Data[t*k : (t+1)*k]
		v, err := specValue(specs[i], y)
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		if v <= 0 {
			out[i].Verdict = Falsified
			out[i].Counterexample = centres.Row(t).Clone()
		}
	}
	return out, nil
}

// specValue returns min_row (C·y + D)_row, +Inf for a spec without rows.
func specValue(s bounds.Spec, y []float64) (float64, error) {
	m := math.Inf(1)
	for row, c := range s.C {
		if len(c) != len(y) {
			return 0, fmt.Errorf("spec row %d has %d columns, the network %d outputs", row, len(c), len(y))
		}
		v := s.D[row]
		for j, w := range c {
			v += w * y[j]
		}
		m = math.Min(m, v)
	}
	return m, nil
}
