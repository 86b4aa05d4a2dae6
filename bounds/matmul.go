package bounds

import (
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// matmulLayer relaxes MatMul with one bounded operand and one constant matrix: the
// weight on the right, Y = X·W (X [..., K], W [K, N'] or [K], as PyTorch exports
// Linear), or on the left, Y = W·X (W [M, K] or [K], X [..., K, N'], as in some
// VNN-COMP models). Either way the op is linear and the rules are exact, as for
// Gemm: IBP in centre-radius form, CROWN's back-substitution a ↦ a·Wᵀ (right) or
// Wᵀ·a per matrix of X (left). A product of two bounded tensors is bilinear and
// refused.
type matmulLayer struct {
	base
	left     bool // W is the left operand
	w, wAbs  *nets.Tensor
	m, k, nn int // right: X rows × K times W K × nn; left: W m × K times X K × nn
	blocks   int // right: rows of X per sample; left: matrices of X per sample
	t        []float64
}

func newMatMul(b base) (layer, error) {
	if len(b.in) != 2 {
		return nil, fmt.Errorf("%d inputs: want 2", len(b.in))
	}
	a, c := b.in[0], b.in[1]
	if a.bounded() && c.bounded() {
		return nil, fmt.Errorf("%w: MatMul of two bounded tensors (bilinear)", ErrUnsupported)
	}
	l := &matmulLayer{base: b}
	n := b.e.n
	if a.bounded() {
		if c.c == nil {
			return nil, fmt.Errorf("B is absent")
		}
		l.w = c.c
		xs := a.box.Lo.Shape
		switch l.w.Rank() {
		case 1:
			l.k, l.nn = l.w.Shape[0], 1
		case 2:
			l.k, l.nn = l.w.Shape[0], l.w.Shape[1]
		default:
			return nil, fmt.Errorf("%w: MatMul with a constant B of rank %d (only matrices and vectors)", ErrUnsupported, l.w.Rank())
		}
		if len(xs) == 0 || xs[len(xs)-1] != l.k {
			return nil, fmt.Errorf("A is %v and B is %v: inner dimensions differ", xs, l.w.Shape)
		}
		if n > 1 && len(xs) < 2 {
			return nil, fmt.Errorf("%w: MatMul of a 1-D bounded A with a batch of %d", ErrUnsupported, n)
		}
		l.blocks = len(a.box.Lo.Data) / l.k / n
	} else {
		if a.c == nil {
			return nil, fmt.Errorf("A is absent")
		}
		l.left, l.w = true, a.c
		xs := c.box.Lo.Shape
		switch l.w.Rank() {
		case 1:
			l.m, l.k = 1, l.w.Shape[0]
		case 2:
			l.m, l.k = l.w.Shape[0], l.w.Shape[1]
		default:
			return nil, fmt.Errorf("%w: MatMul with a constant A of rank %d (only matrices and vectors)", ErrUnsupported, l.w.Rank())
		}
		switch {
		case len(xs) == 1 && xs[0] == l.k:
			l.nn = 1
		case len(xs) >= 2 && xs[len(xs)-2] == l.k:
			l.nn = xs[len(xs)-1]
		default:
			return nil, fmt.Errorf("A is %v and B is %v: inner dimensions differ", l.w.Shape, xs)
		}
		if n > 1 && len(xs) < 3 {
			// X [K, N'] would put the batch in the contracted dimension.
			return nil, fmt.Errorf("%w: MatMul(W, X) with X of shape %v and a batch of %d: the batch must be a leading dimension of X", ErrUnsupported, xs, n)
		}
		l.blocks = len(c.box.Lo.Data) / (l.k * l.nn) / n
	}
	l.wAbs = absTensor(l.w)
	return l, nil
}

// apply runs MatMul with the constant w and the operand x in their places.
func (l *matmulLayer) apply(w, x *nets.Tensor) (*nets.Tensor, error) {
	if l.left {
		return forward1(nets.MatMul{}, w, x)
	}
	return forward1(nets.MatMul{}, x, w)
}

func (l *matmulLayer) xbox() Box {
	if l.left {
		return l.in[1].box
	}
	return l.in[0].box
}

func (l *matmulLayer) interval() (Box, error) {
	box, t, err := l.e.affineInterval(l.xbox(), l.k+1,
		func(x *nets.Tensor) (*nets.Tensor, error) { return l.apply(l.w, x) },
		func(x *nets.Tensor, _ bool) (*nets.Tensor, error) { return l.apply(l.wAbs, x) })
	l.t = t
	return box, err
}

func (l *matmulLayer) linearize() error {
	if l.e.opt.SoundFP {
		nb := l.nn
		if l.left {
			nb = l.m
		}
		l.epsv = scaleEps(l.t, gamma(l.k+1)+gamma(nb))
	}
	return nil
}

func (l *matmulLayer) back(p *pass, a []float64) ([][]float64, error) {
	blocks := p.rows() * l.blocks
	if !l.left { // a [rows, nn] · Wᵀ, W [K, nn]
		ax := make([]float64, blocks*l.k)
		gemm(false, true, blocks, l.k, l.nn, 1, a, l.nn, l.w.Data, l.nn, 0, ax, l.k)
		return [][]float64{ax, nil}, nil
	}
	ax := make([]float64, blocks*l.k*l.nn)
	switch {
	case l.nn == 1: // every block is a vector: a [blocks, m] · W [m, K]
		gemm(false, false, blocks, l.k, l.m, 1, a, l.m, l.w.Data, l.k, 0, ax, l.k)
	default: // Wᵀ [K, m] · a_b [m, nn] per block
		for b := 0; b < blocks; b++ {
			gemm(true, false, l.k, l.nn, l.m, 1, l.w.Data, l.k, a[b*l.m*l.nn:], l.nn, 0, ax[b*l.k*l.nn:], l.nn)
		}
	}
	return [][]float64{nil, ax}, nil
}

func (l *matmulLayer) fwd(p *pass, x [][]float64, _ []float64) ([]float64, error) {
	blocks := p.rows() * l.blocks
	switch {
	case !l.left:
		y := make([]float64, blocks*l.nn)
		gemm(false, false, blocks, l.nn, l.k, 1, x[0], l.k, l.w.Data, l.nn, 0, y, l.nn)
		return y, nil
	case l.nn == 1:
		y := make([]float64, blocks*l.m)
		gemm(false, true, blocks, l.m, l.k, 1, x[1], l.k, l.w.Data, l.k, 0, y, l.m)
		return y, nil
	default:
		y := make([]float64, blocks*l.m*l.nn)
		for b := 0; b < blocks; b++ {
			gemm(false, false, l.m, l.nn, l.k, 1, l.w.Data, l.k, x[1][b*l.k*l.nn:], l.nn, 0, y[b*l.m*l.nn:], l.nn)
		}
		return y, nil
	}
}
