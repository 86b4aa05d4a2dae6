package bounds

import (
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

// Options select how bounds are computed.
type Options struct {
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
}
