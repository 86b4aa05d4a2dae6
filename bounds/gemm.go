package bounds

import (
	"fmt"
	"math"

	"github.com/certify-dev/certify/nets"
)

// gemmLayer relaxes Gemm with a bounded A and constant B and C: per row of A,
//
//	y = α·x·B' + β·C,   B' = Bᵀ if transB else B,
//
// an affine map, so both rules are exact: IBP in centre-radius form (affineInterval)
// and CROWN's back-substitution a ↦ α·a·B'ᵀ with constant term a·(β·C) (Zhang et
// al., "Efficient Neural Network Robustness Certification with General Activation
// Functions", NeurIPS 2018, Theorem 3.2: Λ⁽ᵏ⁾ = Λ⁽ᵏ⁺¹⁾·W⁽ᵏ⁺¹⁾ for a linear layer).
// One GEMM covers all samples and spec rows of a pass: the coefficient [n, r, p, M]
// is a matrix of n·r·p rows.
type gemmLayer struct {
	base
	op      nets.Gemm
	b, c    *nets.Tensor
	bAbs    *nets.Tensor
	m, k, p int       // output features, input features, rows of A per sample
	cb      []float64 // β·C stretched to [N·p, M]; nil without C
	t       []float64 // SoundFP: |α||B'|·m + |β||C| (affineInterval)
}

func newGemm(b base, op nets.Gemm) (layer, error) {
	if len(b.in) < 2 || len(b.in) > 3 {
		return nil, fmt.Errorf("%d inputs: want A, B and optional C", len(b.in))
	}
	x := b.in[0]
	if !x.bounded() || b.in[1].bounded() || (len(b.in) == 3 && b.in[2].bounded()) || b.in[1].c == nil {
		return nil, fmt.Errorf("%w: Gemm with bounded B or C (only A may depend on the input; B must be given)", ErrUnsupported)
	}
	if op.TransA {
		return nil, fmt.Errorf("%w: Gemm with transA=1 on a bounded A (its rows would not be samples)", ErrUnsupported)
	}
	if x.box.Lo.Rank() != 2 || b.in[1].c.Rank() != 2 {
		return nil, fmt.Errorf("A is %v and B is %v: want 2-D", x.box.Lo.Shape, b.in[1].c.Shape)
	}
	l := &gemmLayer{base: b, op: op, b: b.in[1].c}
	if len(b.in) == 3 {
		l.c = b.in[2].c
	}
	l.bAbs = absTensor(l.b)
	l.k = x.box.Lo.Shape[1]
	l.m = l.b.Shape[1]
	if op.TransB {
		l.m = l.b.Shape[0]
	}
	l.p = x.box.Lo.Shape[0] / b.e.n
	return l, nil
}

func (l *gemmLayer) interval() (Box, error) {
	absOp := nets.Gemm{TransB: l.op.TransB, Alpha: math.Abs(l.op.Alpha), Beta: math.Abs(l.op.Beta)}
	cAbs := absTensor(l.c)
	box, t, err := l.e.affineInterval(l.in[0].box, l.k+3,
		func(x *nets.Tensor) (*nets.Tensor, error) { return forward1(l.op, x, l.b, l.c) },
		func(x *nets.Tensor, bias bool) (*nets.Tensor, error) {
			if bias {
				return forward1(absOp, x, l.bAbs, cAbs)
			}
			return forward1(absOp, x, l.bAbs, nil)
		})
	l.t = t
	return box, err
}

// forward1 runs op on the inputs and returns its first output.
func forward1(op nets.Op, in ...*nets.Tensor) (*nets.Tensor, error) {
	for len(in) > 0 && in[len(in)-1] == nil {
		in = in[:len(in)-1]
	}
	out, err := op.Forward(in)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (l *gemmLayer) linearize() error {
	rows := l.in[0].box.Lo.Shape[0]
	if l.c != nil {
		z := nets.NewTensor(rows, l.m)
		cb, err := forward1(nets.Add{}, z, l.c)
		if err != nil || len(cb.Data) != rows*l.m {
			return fmt.Errorf("C of shape %v does not broadcast to [%d, %d]", l.c.Shape, rows, l.m)
		}
		for i := range cb.Data {
			cb.Data[i] *= l.op.Beta
		}
		l.cb = cb.Data
	}
	if l.e.opt.SoundFP {
		// The network's evaluation (γ over K+3 terms), back's product a·B (M terms)
		// and the constant term a·(βC) (p·M terms).
		l.epsv = scaleEps(l.t, gamma(l.k+3)+gamma(l.m)+gamma(l.p*l.m))
	}
	return nil
}

func (l *gemmLayer) back(p *pass, a []float64) ([][]float64, error) {
	rows := p.rows() * l.p
	ax := make([]float64, rows*l.k)
	if l.op.TransB { // B is [M, K]: α·a·B
		gemm(false, false, rows, l.k, l.m, l.op.Alpha, a, l.m, l.b.Data, l.k, 0, ax, l.k)
	} else { // B is [K, M]: α·a·Bᵀ
		gemm(false, true, rows, l.k, l.m, l.op.Alpha, a, l.m, l.b.Data, l.m, 0, ax, l.k)
	}
	if l.cb != nil {
		p.addDot(a, l.cb, l.p*l.m, false)
	}
	return [][]float64{ax}, nil
}

func (l *gemmLayer) fwd(p *pass, x [][]float64, _ []float64) ([]float64, error) {
	rows := p.rows() * l.p
	y := make([]float64, rows*l.m)
	if l.op.TransB {
		gemm(false, true, rows, l.m, l.k, l.op.Alpha, x[0], l.k, l.b.Data, l.k, 0, y, l.m)
	} else {
		gemm(false, false, rows, l.m, l.k, l.op.Alpha, x[0], l.k, l.b.Data, l.m, 0, y, l.m)
	}
	if l.cb != nil {
		addPerSample(p, y, l.cb, l.p*l.m)
	}
	return y, nil
}

// addPerSample adds t (per sample, [N·s]) to every row of y ([n, r, s]).
func addPerSample(p *pass, y, t []float64, s int) {
	for i := 0; i < p.n; i++ {
		tv := t[(p.s0+i)*s : (p.s0+i+1)*s]
		for r := 0; r < p.r; r++ {
			yr := y[(i*p.r+r)*s : (i*p.r+r+1)*s]
			for j, v := range tv {
				yr[j] += v
			}
		}
	}
}

// unitBack copies row j of α·B'ᵀ (column j of B') into each row's coefficient.
func (l *gemmLayer) unitBack(p *pass, idx []int32, sign []float64) []float64 {
	per := l.p * l.k
	ax := make([]float64, p.rows()*per)
	for row, j := range idx {
		if j < 0 {
			continue
		}
		b, m := int(j)/l.m, int(j)%l.m
		dst := ax[row*per+b*l.k : row*per+(b+1)*l.k]
		s := sign[row] * l.op.Alpha
		if l.op.TransB { // B [M, K]: row m
			for k, v := range l.b.Data[m*l.k : (m+1)*l.k] {
				dst[k] = s * v
			}
		} else { // B [K, M]: column m
			for k := range dst {
				dst[k] = s * l.b.Data[k*l.m+m]
			}
		}
		if l.cb != nil {
			i := row / p.r
			p.addBias(row, sign[row]*l.cb[(p.s0+i)*l.p*l.m+int(j)])
		}
	}
	return ax
}
