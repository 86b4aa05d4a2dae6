package bounds

import (
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// newMul relaxes Mul, y = a·b with numpy broadcasting. By a constant it is a
// scaling, exact in both rules (affineLayer). Of two bounded tensors it is
// bilinear: IBP bounds it by the extreme products of the interval ends (Moore,
// "Interval Analysis", 1966: [l_a, u_a]·[l_b, u_b] = [min, max] of the four corner
// products); CROWN has no relaxation for it here (McCormick planes would be one).
func newMul(b base) (layer, error) {
	if len(b.in) != 2 || b.in[0].shape() == nil || b.in[1].shape() == nil {
		return nil, fmt.Errorf("Mul: want 2 inputs")
	}
	if b.in[0].bounded() && b.in[1].bounded() {
		return &bilinearLayer{base: b,
			ibpOnly: "CROWN has no linear relaxation for Mul of two bounded tensors (IBP bounds it)"}, nil
	}
	return newScaling(b, "Mul", false)
}

// bilinearLayer is Mul of two bounded tensors (IBP only).
type bilinearLayer struct {
	base
	ibpOnly
}

func (l *bilinearLayer) interval() (Box, error) {
	a, b := l.in[0].box, l.in[1].box
	var out Box
	for i, pair := range [4][2]*nets.Tensor{{a.Lo, b.Lo}, {a.Lo, b.Hi}, {a.Hi, b.Lo}, {a.Hi, b.Hi}} {
		y, err := forward1(nets.Mul{}, pair[0], pair[1])
		if err != nil {
			return Box{}, err
		}
		if i == 0 {
			out = Box{Lo: y, Hi: y.Clone()}
			continue
		}
		for j, v := range y.Data {
			out.Lo.Data[j] = min(out.Lo.Data[j], v)
			out.Hi.Data[j] = max(out.Hi.Data[j], v)
		}
	}
	if l.e.opt.SoundFP {
		// Rounding is monotone, so the network's fl(x·y) lies between the rounded
		// extreme products; one ulp outward covers the exact ones.
		widenBox(out.Lo.Data, out.Hi.Data, nil)
	}
	return out, nil
}
