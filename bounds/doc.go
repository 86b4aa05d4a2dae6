// Package bounds computes sound bounds on the values of a nets.Graph over a box of
// inputs: interval bound propagation (IBP), CROWN's backward linear relaxation and
// alpha-CROWN's optimised ReLU slopes. Everything is float64 and batched: the first
// dimension of a box is the batch, and each sample carries its own output spec
// C·y + D, proven positive row by row when its lower bound is.
//
// # Methods
//
//   - IBP (Gowal et al. 2018) pushes boxes through the graph; SpecIBP bounds a
//     spec on the output box, with the spec folded into the last linear layer.
//   - CROWN (Zhang et al. 2018; DeepPoly, Singh et al. 2019) propagates the
//     spec's linear function backward, relaxing each nonlinearity by two lines, and
//     minimises it over the input box in closed form. Pre-activation bounds are
//     CROWN's own, intersected with IBP's, so CROWN is never below IBP.
//   - AlphaCROWN (Xu et al. 2021) optimises the ReLU lower slopes by projected
//     gradient ascent, keeping the best iterate, so it is never below CROWN.
//
// # Ops
//
// Each op's interval rule and backward linear rule live together in a file named
// after it (gemm.go, conv.go, relu.go, …), as in nets. Linear ops (Gemm, MatMul,
// Conv, BatchNormalization, AveragePool, GlobalAveragePool, Add/Sub/Mul/Div by a
// constant, Add/Sub of two bounded tensors) and data movement (Flatten, Reshape,
// Transpose, Concat, Pad, Identity, Dropout) are exact in both; Relu, Sigmoid,
// Tanh and MaxPool are relaxed; Softmax, the product of two bounded tensors and a
// constant divided by a bounded tensor are bounded by IBP only, and CROWN reports
// ErrUnsupported naming the node. Graphs may branch and merge (residual
// connections): the coefficients of a value from all its readers are summed before
// it is propagated further.
//
// # Floating point
//
// Options.SoundFP widens every bound by a bound of the rounding errors, both of
// the bound computation and of the network's own float64 evaluation, following
// the standard model of Higham's "Accuracy and Stability of Numerical
// Algorithms", §3.1 (see fp.go). Without it, a bound may miss a float evaluation
// by rounding noise (about 1e-15 relative); with it, never. The widening costs
// about one extra matrix product per linear layer in IBP and a few percent in
// CROWN (see the benchmarks).
//
// # Cost
//
// CROWN's pre-activation bounds need one backward pass per unstable neuron and
// side; a pass is batched over samples and neurons and split into chunks of at
// most 2¹⁶ coefficients (they stay in cache) spread over all cores. Layers whose
// output is a single linear image of the input box keep their (exact) IBP bounds.
package bounds
