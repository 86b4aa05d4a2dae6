package smoothing

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
	"gonum.org/v1/gonum/stat/distuv"
)

// Certificate is CERTIFY's answer for one input.
type Certificate struct {
	Class   int     // predicted class ĉA; -1 when abstaining
	Abstain bool    // p̲A ≤ 1/2: no radius can be certified
	Radius  float64 // certified L2 radius σ·Φ⁻¹(p̲A); 0 when abstaining
	PLower  float64 // p̲A, the one-sided Clopper–Pearson lower bound at level 1−α
	CountA  int     // estimation samples (of N) classified ĉA (the selected class, also when abstaining)
	N0, N   int     // selection and estimation sample counts
}

// Certify runs CERTIFY on one input x of shape [1, ...input shape].
//
// It is the algorithm CERTIFY of Cohen, Rosenfeld & Kolter (2019), Section 3.2:
//
//	counts0 ← n0 noisy classifications of x;  ĉA ← argmax counts0 (lowest class on ties)
//	counts  ← n fresh noisy classifications;   nA ← counts[ĉA]
//	p̲A     ← ClopperPearsonLower(nA, n, α) = Beta(α; nA, n−nA+1) quantile
//	if p̲A ≤ 1/2: abstain, else return ĉA and R = σ·Φ⁻¹(p̲A).
//
// With probability at least 1−α over the noise, a returned ĉA is g(x) and g is ĉA on
// the whole L2 ball of radius R around x (Theorem 1 with p̲B = 1 − p̲A). Both sample
// sets are drawn from rng (one Uint64 each, see Counts). n0, n ≥ 1 and α ∈ (0,1).
func (s Smoothed) Certify(x *nets.Tensor, n0, n int, alpha float64, rng *rand.Rand) (Certificate, error) {
	if err := s.check(x); err != nil {
		return Certificate{}, fmt.Errorf("smoothing: certify: %w", err)
	}
	if n0 < 1 || n < 1 {
		return Certificate{}, fmt.Errorf("smoothing: certify: n0 = %d, n = %d samples, want both ≥ 1", n0, n)
	}
	if !(alpha > 0 && alpha < 1) {
		return Certificate{}, fmt.Errorf("smoothing: certify: α = %v, want 0 < α < 1", alpha)
	}
	if rng == nil {
		return Certificate{}, errors.New("smoothing: certify: nil *rand.Rand")
	}
	counts0, err := s.counts(x, n0, rng.Uint64())
	if err != nil {
		return Certificate{}, fmt.Errorf("smoothing: certify: selection: %w", err)
	}
	cA := argmaxInt(counts0)
	counts, err := s.counts(x, n, rng.Uint64())
	if err != nil {
		return Certificate{}, fmt.Errorf("smoothing: certify: estimation: %w", err)
	}
	if len(counts) != len(counts0) {
		return Certificate{}, fmt.Errorf("smoothing: certify: base classifier gave %d classes in selection, %d in estimation", len(counts0), len(counts))
	}
	nA := counts[cA]
	pl := ClopperPearsonLower(nA, n, alpha)
	c := Certificate{Class: cA, PLower: pl, CountA: nA, N0: n0, N: n}
	if pl <= 0.5 {
		c.Class, c.Abstain = -1, true
		return c, nil
	}
	// p̲A < 1 for every α ∈ (0,1) and finite n, but α^(1/n) can round to 1 for α
	// within an ulp of 1; the largest double below 1 is then still a lower bound.
	c.Radius = s.Sigma * distuv.UnitNormal.Quantile(math.Min(pl, math.Nextafter(1, 0)))
	return c, nil
}
