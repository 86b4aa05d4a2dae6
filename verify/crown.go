package verify

import (
	"context"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// CROWN verifies by backward linear bound propagation (Zhang et al., NeurIPS 2018):
// the spec C·y + D is written as a linear function of the input, relaxing each
// ReLU (or sigmoid, tanh) between linear upper and lower bounds, and minimised in
// closed form over the input box (bounds.CROWN).
type CROWN struct {
	// SoundFP widens every bound by the float64 rounding error of its computation
	// (bounds.Options.SoundFP).
	SoundFP bool
}

// Name is "crown".
func (CROWN) Name() string { return "crown" }

// Verify decides s over r (batch 1).
func (v CROWN) Verify(ctx context.Context, g *nets.Graph, r Region, s bounds.Spec) (Result, error) {
	return verifyOne(ctx, v, g, r, s)
}

// VerifyBatch decides specs[i] over row i of r, for every row, in one backward
// pass per layer.
func (v CROWN) VerifyBatch(ctx context.Context, g *nets.Graph, r Region, specs []bounds.Spec) ([]Result, error) {
	return verifyBatch(ctx, v.Name(), g, r, specs, func(g *nets.Graph, in bounds.Box, specs []bounds.Spec) ([][]float64, error) {
		res, err := bounds.CROWN(g, in, specs, bounds.Options{SoundFP: v.SoundFP, Context: ctx})
		if err != nil {
			return nil, err
		}
		return res.Lower, nil
	})
}
