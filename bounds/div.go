package bounds

import (
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// newDiv relaxes Div, y = a / b with numpy broadcasting. Division of a bounded a
// by a non-zero constant is the scaling by 1/c, exact in both rules (affineLayer);
// input normalisation (x − mean)/std is the common case. A constant divided by a
// bounded b whose interval excludes 0 is bounded by IBP only (c/x is monotone on
// each side of 0, so its extremes are at the interval's ends); a quotient of two
// bounded tensors is refused.
func newDiv(b base) (layer, error) {
	if len(b.in) != 2 || b.in[0].shape() == nil || b.in[1].shape() == nil {
		return nil, fmt.Errorf("Div: want 2 inputs")
	}
	switch {
	case b.in[0].bounded() && b.in[1].bounded():
		return nil, fmt.Errorf("%w: Div of two bounded tensors", ErrUnsupported)
	case b.in[0].bounded():
		return newScaling(b, "Div", true)
	default:
		return &reciprocalLayer{base: b,
			ibpOnly: "CROWN has no linear relaxation for a constant divided by a bounded tensor (IBP bounds it)"}, nil
	}
}

// reciprocalLayer is c / x for a constant c and a bounded x (IBP only).
type reciprocalLayer struct {
	base
	ibpOnly
}

func (l *reciprocalLayer) interval() (Box, error) {
	c, x := l.in[0].c, l.in[1].box
	for i, lo := range x.Lo.Data {
		if hi := x.Hi.Data[i]; !(lo > 0 || hi < 0) {
			return Box{}, fmt.Errorf("%w: division by %q whose interval [%v, %v] (element %d) contains 0", ErrUnsupported, l.in[1].name, lo, hi, i)
		}
	}
	a, err := forward1(nets.Div{}, c, x.Lo)
	if err != nil {
		return Box{}, err
	}
	b, err := forward1(nets.Div{}, c, x.Hi)
	if err != nil {
		return Box{}, err
	}
	out := Box{Lo: a, Hi: b.Clone()}
	for i, v := range b.Data {
		out.Lo.Data[i], out.Hi.Data[i] = min(a.Data[i], v), max(a.Data[i], v)
	}
	if l.e.opt.SoundFP {
		widenBox(out.Lo.Data, out.Hi.Data, nil) // monotone rounding, as for Mul
	}
	return out, nil
}
