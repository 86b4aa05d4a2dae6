// Package smoothing certifies L2 robustness by randomized smoothing (Cohen,
// Rosenfeld & Kolter, "Certified Adversarial Robustness via Randomized Smoothing",
// ICML 2019; reference code github.com/locuslab/smoothing, core.py).
//
// From any base classifier f it builds the smoothed classifier
//
//	g(x) = argmax_c P(f(x+δ) = c),   δ ~ N(0, σ²I),
//
// and proves, by Theorem 1 of the paper, that g is constant on the L2 ball of radius
//
//	R = σ·Φ⁻¹(p̲A)
//
// around x whenever p̲A > 1/2 is a lower bound on pA = P(f(x+δ) = cA). Only f's
// class scores are used: the base model is a black box (nets.Classifier).
//
// The probabilities are estimated by Monte Carlo, so every answer holds with
// probability at least 1−α over the noise, as in the paper:
//
//   - CERTIFY (Smoothed.Certify): n0 noisy samples select the guess ĉA (the most
//     frequent class); n fresh samples count nA = #{f(x+δ) = ĉA}; p̲A is the one-sided
//     Clopper–Pearson lower bound at level 1−α (ClopperPearsonLower). The certificate
//     abstains when p̲A ≤ 1/2, where the radius would not be positive (the reference
//     code abstains when pABar < 0.5; at exactly 1/2 it would return radius 0, which
//     certifies nothing, so the two differ only in what they call that case).
//   - PREDICT (Smoothed.Predict): n samples give the top two counts nA, nB; g(x) = ĉA
//     is returned unless the two-sided exact binomial test of nA successes in nA+nB
//     trials at p = 1/2 has p-value above α (BinomTestP), in which case it abstains.
//
// Noise is added in the model's input space and is not clipped to the data domain,
// as in the paper. Sample i of a Counts call draws its noise from SampleRand(seed, i),
// where seed is the next Uint64 of the caller's *rand.Rand: the noise is the same for
// any batch size and any number of cores, and is drawn in parallel. With a base
// classifier whose rows do not depend on the core count, as nets.Graph.Logits, the
// counts and certificates do not either (a different Batch may change a logit in its
// last bit, as BLAS sums in another order, and so in principle a near-tied argmax).
package smoothing
