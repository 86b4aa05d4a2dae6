package verify

import (
	"context"
	"fmt"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// AlphaCROWN verifies by CROWN whose ReLU lower-bound slopes α ∈ [0,1] are
// optimised, per sample and spec row, by projected gradient ascent on the bound
// (Xu et al., ICLR 2021, §3.1; bounds.AlphaCROWN). Every α gives a sound bound, so
// the optimisation only tightens; it costs Iterations CROWN passes.
type AlphaCROWN struct {
	// SoundFP widens every bound by the float64 rounding error of its computation
	// (bounds.Options.SoundFP).
	SoundFP bool
	// Iterations of gradient ascent on α (0: DefaultAlphaIterations).
	Iterations int
	// LR is the step size of that ascent (0: DefaultAlphaLR).
	LR float64
}

// Defaults of AlphaCROWN's optimisation.
const (
	DefaultAlphaIterations = 20
	DefaultAlphaLR         = 0.1
)

// Name is "alpha-crown".
func (AlphaCROWN) Name() string { return "alpha-crown" }

// Verify decides s over r (batch 1).
func (v AlphaCROWN) Verify(ctx context.Context, g *nets.Graph, r Region, s bounds.Spec) (Result, error) {
	return verifyOne(ctx, v, g, r, s)
}

// VerifyBatch decides specs[i] over row i of r, for every row; the slopes of each
// sample are optimised independently, all samples in the same passes.
func (v AlphaCROWN) VerifyBatch(ctx context.Context, g *nets.Graph, r Region, specs []bounds.Spec) ([]Result, error) {
	opt := bounds.AlphaOptions{
		Options:    bounds.Options{SoundFP: v.SoundFP, Context: ctx},
		Iterations: v.Iterations,
		LR:         v.LR,
	}
	if opt.Iterations < 0 || !(opt.LR >= 0) {
		return nil, fmt.Errorf("%s: iterations %d, learning rate %g: want both >= 0", v.Name(), opt.Iterations, opt.LR)
	}
	if opt.Iterations == 0 {
		opt.Iterations = DefaultAlphaIterations
	}
	if opt.LR == 0 {
		opt.LR = DefaultAlphaLR
	}
	return verifyBatch(ctx, v.Name(), g, r, specs, func(g *nets.Graph, in bounds.Box, specs []bounds.Spec) ([][]float64, error) {
		res, err := bounds.AlphaCROWN(g, in, specs, opt)
		if err != nil {
			return nil, err
		}
		return res.Lower, nil
	})
}
