// Package verify decides properties of a network over a region of inputs: every
// input x with Lo ≤ x ≤ Hi must give an output y with C·y + D > 0 in every row (a
// bounds.Spec; "class label wins" is bounds.RobustnessSpec).
//
// A Verifier answers with a Result: Verified (proved for the whole region),
// Falsified (a point of the region violating the spec was found, and is returned)
// or Unknown, with Margin, the best proven lower bound of min_row (C·y + D)_row over
// the region. Verified holds exactly when Margin > 0.
//
// The verifiers here are the incomplete, bound-propagation ones of package bounds:
//
//   - IBP: interval bound propagation (Gowal et al., "On the Effectiveness of
//     Interval Bound Propagation for Training Verifiably Robust Models", 2018);
//   - CROWN: backward linear relaxation (Zhang et al., "Efficient Neural Network
//     Robustness Certification with General Activation Functions", NeurIPS 2018);
//   - AlphaCROWN: CROWN with ReLU lower slopes optimised by projected gradient
//     ascent (Xu et al., "Fast and Complete: Enabling Complete Neural Network
//     Verification with Rapid and Massively Parallel Incomplete Verifiers", ICLR
//     2021).
//
// Their cost is per batch rather than per sample (one backward pass of matrices
// serves every sample), so each is also a BatchVerifier: one call verifies a batch
// of regions, each with its own spec. A sample's result does not depend on the
// other samples of its batch nor on their order; only the last bits of a margin
// may change with the batch size, as BLAS sums products of different shapes in
// different orders (with SoundFP every such margin is sound).
//
// Bound propagation cannot falsify by itself. When it does not verify, the centre
// of the region (Lo+Hi)/2 is evaluated: if it violates the spec, the verdict is
// Falsified with that point as the counterexample. Anything else is Unknown.
package verify
