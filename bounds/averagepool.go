package bounds

import (
	"math"

	"github.com/certify-dev/certify/nets"
)

// poolLayer relaxes a linear pooling op with non-negative weights and no bias:
// AveragePool (this file) and GlobalAveragePool. Both rules are exact and reuse
// the op: IBP is [pool(l), pool(u)] (non-negative weights map lower to lower), and
// CROWN's back-substitution is the op's input gradient (its adjoint), which
// nets' Backward computes for the n·r coefficient rows of a pass as its batch.
type poolLayer struct {
	base
	op       nets.Op
	inShape  []int // one row of X: [C, H, W, …]
	outShape []int
	p        int // rows of X per sample
	nf       int // terms per output (window size), for γ
	t        []float64
}

func newPool(b base, op nets.Op, window func(x *nets.Tensor) (int, error)) (layer, error) {
	if len(b.in) != 1 || !b.in[0].bounded() {
		return nil, errArity(op.OpType(), 1)
	}
	x := b.in[0].box.Lo
	nf, err := window(x)
	if err != nil {
		return nil, err
	}
	return &poolLayer{base: b, op: op, inShape: x.Shape[1:], p: x.Shape[0] / b.e.n, nf: nf + 2}, nil
}

func newAveragePool(b base, op nets.AveragePool) (layer, error) {
	return newPool(b, op, func(x *nets.Tensor) (int, error) {
		w, err := op.Window(x)
		return w.KH * w.KW, err
	})
}

func (l *poolLayer) interval() (Box, error) {
	x := l.in[0].box
	lo, err := forward1(l.op, x.Lo)
	if err != nil {
		return Box{}, err
	}
	hi, err := forward1(l.op, x.Hi)
	if err != nil {
		return Box{}, err
	}
	l.outShape = lo.Shape[1:]
	if l.e.opt.SoundFP {
		// The window sums of our evaluation and of the network's: γ each, on
		// pool(max(|l|, |u|)) (Higham (3.5)); the division's rounding is in γ.
		m, err := forward1(l.op, nets.FromData(l.e.mag(l.in[0].name), x.Lo.Shape...))
		if err != nil {
			return Box{}, err
		}
		g := gamma(l.nf)
		l.t = m.Data
		e := make([]float64, len(m.Data))
		for i, v := range m.Data {
			l.t[i] = up(v*(1+2*g) + underflow(l.nf))
			e[i] = up(2*g*l.t[i] + 2*unitRoundoff*max(math.Abs(lo.Data[i]), math.Abs(hi.Data[i])))
		}
		widenBox(lo.Data, hi.Data, e)
	}
	return Box{Lo: lo, Hi: hi}, nil
}

func (l *poolLayer) linearize() error {
	if l.e.opt.SoundFP {
		// The network's sum, and the adjoint's sum over the windows covering an
		// input (at most the window size).
		l.epsv = scaleEps(l.t, 2*gamma(l.nf))
	}
	return nil
}

func (l *poolLayer) back(p *pass, a []float64) ([][]float64, error) {
	rows := p.rows() * l.p
	x := l.e.shapeOnly(append([]int{rows}, l.inShape...)...) // its data do not matter
	gy := &nets.Tensor{Shape: append([]int{rows}, l.outShape...), Data: a}
	grads, err := l.op.Backward([]*nets.Tensor{x}, nil, []*nets.Tensor{gy}, []bool{true})
	if err != nil {
		return nil, err
	}
	return [][]float64{grads[0].Data}, nil
}

func (l *poolLayer) fwd(p *pass, x [][]float64, _ []float64) ([]float64, error) {
	rows := p.rows() * l.p
	y, err := forward1(l.op, &nets.Tensor{Shape: append([]int{rows}, l.inShape...), Data: x[0]})
	if err != nil {
		return nil, err
	}
	return y.Data, nil
}
