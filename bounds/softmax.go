package bounds

import (
	"fmt"
	"math"

	"github.com/certify-dev/certify/nets"
)

// softmaxLayer bounds y_i = e^{x_i} / Σ_j e^{x_j} over each reduced slice by
// interval arithmetic (IBP only): y_i increases with x_i and decreases with every
// other x_j, so
//
//	y_i ≥ e^{l_i} / (e^{l_i} + Σ_{j≠i} e^{u_j}),   y_i ≤ e^{u_i} / (e^{u_i} + Σ_{j≠i} e^{l_j}).
//
// Each quotient is evaluated after subtracting its largest exponent, so the
// denominator is at least 1 and nothing overflows. CROWN has no linear relaxation
// for Softmax here: a robustness spec should bound the logits before it (Softmax
// preserves their order).
type softmaxLayer struct {
	base
	ibpOnly
	op nets.Softmax
}

func newSoftmax(b base, op nets.Softmax) (layer, error) {
	if len(b.in) != 1 || !b.in[0].bounded() {
		return nil, errArity("Softmax", 1)
	}
	return &softmaxLayer{base: b, op: op,
		ibpOnly: "CROWN has no linear relaxation for Softmax (IBP bounds it); bound the logits before the Softmax instead"}, nil
}

// ibpOnly is embedded by layers that have an interval rule but no linear one.
type ibpOnly string

func (o ibpOnly) back(*pass, []float64) ([][]float64, error) {
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, string(o))
}

func (o ibpOnly) fwd(*pass, [][]float64, []float64) ([]float64, error) {
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, string(o))
}

// layout returns the reduction geometry of nets.Softmax: outer blocks, d elements
// reduced per block with stride inner.
func (l *softmaxLayer) layout(shape []int) (outer, d, inner int, err error) {
	r := len(shape)
	axis := l.op.Axis
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= max(r, 1) {
		return 0, 0, 0, fmt.Errorf("axis %d out of range for shape %v", l.op.Axis, shape)
	}
	outer = nets.NumElements(shape[:axis])
	if l.op.Coerce2D {
		return outer, nets.NumElements(shape[axis:]), 1, nil
	}
	return outer, shape[axis], nets.NumElements(shape[axis+1:]), nil
}

func (l *softmaxLayer) interval() (Box, error) {
	x := l.in[0].box
	outer, d, inner, err := l.layout(x.Lo.Shape)
	if err != nil {
		return Box{}, err
	}
	out := Box{Lo: nets.NewTensor(x.Lo.Shape...), Hi: nets.NewTensor(x.Lo.Shape...)}
	lo, hi := make([]float64, d), make([]float64, d)
	fp := l.e.opt.SoundFP
	for o := 0; o < outer; o++ {
		for in := 0; in < inner; in++ {
			base := o*d*inner + in
			span := 0.0
			for j := 0; j < d; j++ {
				lo[j], hi[j] = x.Lo.Data[base+j*inner], x.Hi.Data[base+j*inner]
			}
			if fp {
				mn, mx := lo[0], hi[0]
				for j := range lo {
					mn, mx = min(mn, lo[j]), max(mx, hi[j])
				}
				span = mx - mn
			}
			// SoundFP: the sums and the quotient (γ), the library exp (1 ulp per
			// term), and the rounding of each shifted exponent y − m, which exp
			// turns into a relative error up to |y − m|·u ≤ span·u; ours and the
			// network's (max-shifted) evaluation alike.
			rel := gamma(2*d+16) + 4*unitRoundoff*span*(1+1e-6)
			for i := 0; i < d; i++ {
				yl := softmaxBound(i, lo, hi)
				yh := softmaxBound(i, hi, lo)
				if fp {
					yl = down(yl*(1-rel) - tiny)
					yh = up(yh*(1+rel) + tiny)
				}
				out.Lo.Data[base+i*inner] = max(yl, 0)
				out.Hi.Data[base+i*inner] = min(yh, 1)
			}
		}
	}
	return out, nil
}

// softmaxBound returns e^{a_i} / (e^{a_i} + Σ_{j≠i} e^{b_j}), shifted by the largest
// exponent.
func softmaxBound(i int, a, b []float64) float64 {
	m := a[i]
	for j, v := range b {
		if j != i {
			m = max(m, v)
		}
	}
	num := math.Exp(a[i] - m)
	den := num
	for j, v := range b {
		if j != i {
			den += math.Exp(v - m)
		}
	}
	return num / den
}
