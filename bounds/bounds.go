package bounds

import (
	"context"
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// ErrUnsupported is wrapped by the errors for ops, or uses of ops, that a method
// cannot bound (a Softmax under CROWN, a MatMul of two bounded tensors, …). It wraps
// nets.ErrUnsupported, so errors.Is matches either.
var ErrUnsupported = fmt.Errorf("bounds: %w", nets.ErrUnsupported)

// Box is an axis-aligned set of tensors: every x with Lo ≤ x ≤ Hi elementwise.
// Lo and Hi have the same shape, batch first.
type Box struct {
	Lo, Hi *nets.Tensor
}

// LinfBox returns the L∞ ball of the given radius around the batch x, clipped to the
// data domain [lo, hi]: [max(x−r, lo), min(x+r, hi)].
func LinfBox(x *nets.Tensor, radius, lo, hi float64) Box {
	b := Box{Lo: nets.NewTensor(x.Shape...), Hi: nets.NewTensor(x.Shape...)}
	for i, v := range x.Data {
		b.Lo.Data[i] = max(v-radius, lo)
		b.Hi.Data[i] = min(v+radius, hi)
	}
	return b
}

// Spec is a linear property of one sample's output: it holds when every row of
// C·y + D is positive, y being the flattened output of the graph for that sample.
type Spec struct {
	C [][]float64 // rows × outputs
	D []float64   // rows
}

// RobustnessSpec is "class label wins": rows e_label − e_j for every j ≠ label.
func RobustnessSpec(classes, label int) (Spec, error) {
	if label < 0 || label >= classes {
		return Spec{}, fmt.Errorf("label %d outside [0,%d)", label, classes)
	}
	s := Spec{}
	for j := 0; j < classes; j++ {
		if j == label {
			continue
		}
		row := make([]float64, classes)
		row[label], row[j] = 1, -1
		s.C = append(s.C, row)
		s.D = append(s.D, 0)
	}
	return s, nil
}

// Plain returns o without the options that need a caller's domain or extra
// optimisation (Clamp, Fixed, Splits, IntermediateAlpha): plain CROWN's.
func (o Options) Plain() Options {
	return Options{SoundFP: o.SoundFP, PlainCROWN: o.PlainCROWN}
}

// Options select how bounds are computed.
type Options struct {
	// Context, when not nil, ends a long computation early: CROWN checks it
	// before refining each layer's bounds and alpha-CROWN before each iteration,
	// and they return its error (wrapped). A caller's time limit is then noticed
	// within one layer's or one iteration's work, not at the end of the call.
	Context context.Context
	// SoundFP widens every bound outward by the rounding error of each float64
	// operation, so a bound holds for the real-number network and for its float
	// evaluation alike.
	SoundFP bool
	// PlainCROWN is an ablation for comparison only, never used by a verifier: CROWN
	// as first published (Zhang et al. 2018), whose pre-activation bounds are CROWN's
	// own, not intersected with IBP's, and whose final bound is not max'ed with
	// SpecIBP's. Zhang et al. (ICLR 2020) show it can be looser than IBP on
	// IBP-trained networks; TestPlainCROWNLooserThanIBP shows it here.
	PlainCROWN bool
	// Clamp holds boxes, batched like the input, that the named values are
	// known to lie in: each is intersected with the value's computed box (IBP,
	// then CROWN) before any later node reads it. Branch and bound passes a
	// domain's split decisions this way (an active ReLU's input ≥ 0, an inactive
	// one's ≤ 0) with the bounds inherited from the parent domain, so bounds are
	// re-derived under the splits. The bounds then hold for the inputs of the box
	// whose values lie in the clamps. Where a clamp empties a value (Lo > Hi) the
	// crossing is kept, not repaired: no input reaches that domain.
	Clamp map[string]Box
	// Fixed[v][i] skips CROWN's tightening of value v for sample i: its Clamp
	// box is already as tight (inherited from a parent domain whose bounds up
	// to v are unchanged by the split).
	Fixed map[string][]bool
	// Splits marks, per ReLU input value and element (batched, [N·S]), the
	// neurons a branch-and-bound domain has split: +1 where the domain has the
	// value ≥ 0 (active), −1 where ≤ 0 (inactive), 0 elsewhere. Clamp must hold
	// the same decisions. AlphaCROWN then also optimises, per split, sample and
	// spec row, a Lagrange multiplier β ≥ 0 of the split's constraint (β-CROWN,
	// Wang, Zhang, Xu, Lin, Jana, Hsieh, Kolter, "Beta-CROWN: Efficient Bound
	// Propagation with Per-neuron Split Constraints for Neural Network
	// Robustness Verification", NeurIPS 2021, Thm. 3.1): on the domain,
	// f ≥ f − β·s·z for s·z ≥ 0, so the bound of f − β·s·z over the box is a
	// bound of f on the domain, and β makes it take the split into account
	// where clamped intermediate bounds alone cannot (the input box is not
	// cut by a split). CROWN ignores Splits (β = 0).
	Splits map[string][]int8
	// IntermediateAlpha, when > 0, optimises the lower ReLU slopes of every
	// intermediate (pre-activation) bound too, by that many projected Adam
	// steps per bound, as alpha-CROWN is published (Xu et al., ICLR 2021):
	// each neuron's lower and upper bound gets its own slopes. Tighter
	// intermediate bounds tighten every relaxation after them; the cost is
	// that many extra passes per unstable neuron. 0: CROWN's adaptive slopes.
	IntermediateAlpha int
}
