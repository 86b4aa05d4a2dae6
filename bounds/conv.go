package bounds

import (
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// convLayer relaxes Conv with a bounded X and constant weights W and bias B. The op
// is affine, so both rules are exact: IBP in centre-radius form, y_mid = conv(mid, W)
// + B, y_rad = conv(rad, |W|) (Gowal et al. 2018, eq. 6), and CROWN's
// back-substitution is the transposed convolution of the coefficient, which is the
// input gradient of the convolution: nets.Conv.Backward computes it (im2col, one
// GEMM per group, col2im), with the n·r coefficient rows of a pass as its batch
// (Zhang et al. 2018, Theorem 3.2; a convolution is a linear layer with a
// structured matrix, Boopathy et al., "CNN-Cert", AAAI 2019).
type convLayer struct {
	base
	op        nets.Conv
	w, b      *nets.Tensor
	wAbs      *nets.Tensor
	win       nets.Window2D
	cin, cout int
	p         int       // rows of X per sample
	bfull     []float64 // B stretched to one sample's output; nil without B
	nf, nb    int       // dot-product lengths of the forward and the transposed conv
	t         []float64
}

func newConv(b base, op nets.Conv) (layer, error) {
	if len(b.in) < 2 || len(b.in) > 3 {
		return nil, fmt.Errorf("%d inputs: want X, W and optional B", len(b.in))
	}
	x := b.in[0]
	if !x.bounded() || b.in[1].bounded() || b.in[1].c == nil || (len(b.in) == 3 && b.in[2].bounded()) {
		return nil, fmt.Errorf("%w: Conv with bounded weights or bias (only X may depend on the input)", ErrUnsupported)
	}
	l := &convLayer{base: b, op: op, w: b.in[1].c}
	if len(b.in) == 3 {
		l.b = b.in[2].c
	}
	win, err := op.Window(x.box.Lo, l.w, l.b)
	if err != nil {
		return nil, err
	}
	l.win, l.cin, l.cout = win, x.box.Lo.Shape[1], l.w.Shape[0]
	l.wAbs = absTensor(l.w)
	l.p = x.box.Lo.Shape[0] / b.e.n
	l.nf = l.w.Shape[1]*win.KH*win.KW + 2
	l.nb = (l.cout/max(1, op.Group))*win.KH*win.KW + 1
	return l, nil
}

func (l *convLayer) interval() (Box, error) {
	bAbs := absTensor(l.b)
	box, t, err := l.e.affineInterval(l.in[0].box, l.nf,
		func(x *nets.Tensor) (*nets.Tensor, error) { return forward1(l.op, x, l.w, l.b) },
		func(x *nets.Tensor, bias bool) (*nets.Tensor, error) {
			if bias {
				return forward1(l.op, x, l.wAbs, bAbs)
			}
			return forward1(l.op, x, l.wAbs, nil)
		})
	l.t = t
	return box, err
}

// outPer is the output size per row of X.
func (l *convLayer) outPer() int { return l.cout * l.win.OutH * l.win.OutW }

func (l *convLayer) linearize() error {
	if l.b != nil {
		area := l.win.OutH * l.win.OutW
		l.bfull = make([]float64, l.p*l.outPer())
		for i := range l.bfull {
			l.bfull[i] = l.b.Data[(i/area)%l.cout]
		}
	}
	if l.e.opt.SoundFP {
		l.epsv = scaleEps(l.t, gamma(l.nf)+gamma(l.nb)+gamma(l.p*l.outPer()))
	}
	return nil
}

func (l *convLayer) back(p *pass, a []float64) ([][]float64, error) {
	rows := p.rows() * l.p
	x := l.e.shapeOnly(rows, l.cin, l.win.InH, l.win.InW) // X's data do not matter for dX
	gy := &nets.Tensor{Shape: []int{rows, l.cout, l.win.OutH, l.win.OutW}, Data: a}
	grads, err := l.op.Backward([]*nets.Tensor{x, l.w}, nil, []*nets.Tensor{gy}, []bool{true, false})
	if err != nil {
		return nil, err
	}
	if l.bfull != nil {
		p.addDot(a, l.bfull, l.p*l.outPer(), true)
	}
	return [][]float64{grads[0].Data}, nil
}

func (l *convLayer) fwd(p *pass, x [][]float64, _ []float64) ([]float64, error) {
	rows := p.rows() * l.p
	xt := &nets.Tensor{Shape: []int{rows, l.cin, l.win.InH, l.win.InW}, Data: x[0]}
	y, err := forward1(l.op, xt, l.w, l.b)
	if err != nil {
		return nil, err
	}
	return y.Data, nil
}

// unitBack lays the kernel of each row's output channel on its receptive field.
func (l *convLayer) unitBack(p *pass, idx []int32, sign []float64) []float64 {
	w := l.win
	in := l.cin * w.InH * w.InW
	per := l.p * in
	ax := p.scratch(p.rows() * per)
	area := w.OutH * w.OutW
	mg := l.cout / max(1, l.op.Group)
	cg := l.w.Shape[1] // input channels per group
	kk := w.KH * w.KW
	for row, j := range idx {
		if j < 0 {
			continue
		}
		b, rest := int(j)/l.outPer(), int(j)%l.outPer()
		c, oh, ow := rest/area, (rest%area)/w.OutW, rest%w.OutW
		dst := ax[row*per+b*in:]
		s := sign[row]
		c0 := (c / mg) * cg
		for ci := 0; ci < cg; ci++ {
			plane := dst[(c0+ci)*w.InH*w.InW:]
			ker := l.w.Data[(c*cg+ci)*kk:]
			for ki := 0; ki < w.KH; ki++ {
				ih := oh*w.StrideH - w.PadTop + ki*w.DilH
				if ih < 0 || ih >= w.InH {
					continue
				}
				for kj := 0; kj < w.KW; kj++ {
					iw := ow*w.StrideW - w.PadLeft + kj*w.DilW
					if iw >= 0 && iw < w.InW {
						plane[ih*w.InW+iw] += s * ker[ki*w.KW+kj]
					}
				}
			}
		}
		if l.b != nil {
			p.addBias(row, s*l.b.Data[c])
		}
	}
	return ax
}
