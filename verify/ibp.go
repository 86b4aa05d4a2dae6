package verify

import (
	"context"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// IBP verifies by interval bound propagation (Gowal et al. 2018, §3): a box is
// pushed through the network layer by layer, and each spec row is bounded by
// interval arithmetic on the box of the output, Σ_j C_j·(C_j ≥ 0 ? l_j : u_j) + D
// (bounds.SpecIBP). Cheapest and loosest.
type IBP struct {
	// SoundFP widens every bound by the float64 rounding error of its computation
	// (bounds.Options.SoundFP).
	SoundFP bool
}

// Name is "ibp".
func (IBP) Name() string { return "ibp" }

// Verify decides s over r (batch 1).
func (v IBP) Verify(ctx context.Context, g *nets.Graph, r Region, s bounds.Spec) (Result, error) {
	return verifyOne(ctx, v, g, r, s)
}

// VerifyBatch decides specs[i] over row i of r, for every row, in one propagation.
func (v IBP) VerifyBatch(ctx context.Context, g *nets.Graph, r Region, specs []bounds.Spec) ([]Result, error) {
	return verifyBatch(ctx, v.Name(), g, r, specs, func(g *nets.Graph, in bounds.Box, specs []bounds.Spec) ([][]float64, error) {
		res, err := bounds.SpecIBP(g, in, specs, bounds.Options{SoundFP: v.SoundFP})
		if err != nil {
			return nil, err
		}
		return res.Lower, nil
	})
}
