// Package pipeline evaluates one classifier on one sample set with many methods and
// reports, per sample and in summary, what each found.
//
// A run has four kinds of stage, all over the same samples:
//
//   - the clean pass: one batched forward pass, giving each sample's prediction;
//   - certification methods (Method): prove that no input in the region around a
//     correctly classified sample changes its class (IBP, CROWN, LP, ...);
//   - attacks (Attack): search the same region for an input that does; audit
//     attacks (Config.Audit), stronger and costlier, only around the samples some
//     method certified;
//   - the soundness audit: a sample certified by a method and attacked successfully
//     is a falsified certificate, i.e. a bug in that method. It is counted, named per
//     sample and never hidden.
//
// The semantics shared with the rest of certify (design.md):
//
//   - The region of radius r around x in norm p, intersected with the data domain
//     [lo, hi]^d, is {x' : ||x'-x||_p <= r, lo <= x'_i <= hi}.
//   - A sample is certified by a method only if it is classified correctly and the
//     method proves every other logit below the true one over the whole region.
//   - A sample is empirically robust only if it is classified correctly and every
//     attack failed. Certified ⊆ empirically robust must hold for every method.
//
// Misclassified samples are not given to methods or attacks: they count as neither
// certified nor robust (certified.<method> is false, no margin, no attack entries).
//
// The result is a Report, whose JSON encoding is a contract other tools read: fields
// may be added, never renamed. Output is deterministic for the same inputs and seed:
// samples are in data-file order and only summary.seconds varies between runs.
package pipeline
