package smoothing

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
)

// Predict runs PREDICT (two-sided binomial test at level alpha); class -1 when abstaining.
//
// It is the algorithm PREDICT of Cohen, Rosenfeld & Kolter (2019), Section 3.1:
//
//	counts ← n noisy classifications of x
//	ĉA, ĉB ← the two most frequent classes (lowest class first on ties), nA, nB their counts
//	if BinomTestP(nA, nA+nB, 1/2) ≤ α: return ĉA, else abstain.
//
// A returned class differs from g(x) with probability at most α (Theorem 2). With a
// single class, nB = 0. n ≥ 1 and α ∈ (0,1); the samples are drawn from rng (one
// Uint64, see Counts).
func (s Smoothed) Predict(x *nets.Tensor, n int, alpha float64, rng *rand.Rand) (class int, abstain bool, err error) {
	if err := s.check(x); err != nil {
		return -1, true, fmt.Errorf("smoothing: predict: %w", err)
	}
	if n < 1 {
		return -1, true, fmt.Errorf("smoothing: predict: n = %d samples, want ≥ 1", n)
	}
	if !(alpha > 0 && alpha < 1) {
		return -1, true, fmt.Errorf("smoothing: predict: α = %v, want 0 < α < 1", alpha)
	}
	if rng == nil {
		return -1, true, errors.New("smoothing: predict: nil *rand.Rand")
	}
	counts, err := s.counts(x, n, rng.Uint64())
	if err != nil {
		return -1, true, fmt.Errorf("smoothing: predict: %w", err)
	}
	a, nA, nB := topTwo(counts)
	if BinomTestP(nA, nA+nB, 0.5) > alpha {
		return -1, true, nil
	}
	return a, false, nil
}

// topTwo returns the most frequent class and the two largest counts; ties go to the
// lowest class, and the second count is 0 when there is one class.
func topTwo(counts []int) (a, nA, nB int) {
	a = argmaxInt(counts)
	for i, c := range counts {
		if i != a && c > nB {
			nB = c
		}
	}
	return a, counts[a], nB
}
