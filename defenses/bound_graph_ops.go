package defenses

import (
	"fmt"
	"math"

	"github.com/certify-dev/certify/nets"
)

// The ops below exist only inside bound graphs (they have no ONNX meaning and
// are never exported).

// sliceCols keeps the columns [From, To) of a 2-D input. Its input is data (the
// bound graph's packed rows), so Backward gives it no gradient.
type sliceCols struct{ From, To int }

func (sliceCols) OpType() string    { return "certify.SliceCols" }
func (sliceCols) Attrs() nets.Attrs { return nets.NewAttrs() }

func (op sliceCols) Forward(in []*nets.Tensor) ([]*nets.Tensor, error) {
	if len(in) != 1 || in[0].Rank() != 2 || op.From < 0 || op.To > in[0].Shape[1] || op.From >= op.To {
		return nil, fmt.Errorf("slice cols [%d,%d): bad input", op.From, op.To)
	}
	x := in[0]
	n, c, w := x.Shape[0], x.Shape[1], op.To-op.From
	out := nets.NewTensor(n, w)
	for i := 0; i < n; i++ {
		copy(out.Data[i*w:(i+1)*w], x.Data[i*c+op.From:i*c+op.To])
	}
	return []*nets.Tensor{out}, nil
}

func (sliceCols) Backward(in, out, gradOut []*nets.Tensor, need []bool) ([]*nets.Tensor, error) {
	return make([]*nets.Tensor, len(in)), nil
}

// reluRelax gives, from pre-activation bounds l ≤ u (two tensors of one shape), the
// linear relaxation of relu on [l, u] that CROWN-IBP uses (Zhang et al., ICLR 2020,
// after CROWN, Zhang et al. 2018): outputs α (lower slope), s (upper slope) and t
// (upper intercept), so that α·z ≤ relu(z) ≤ s·z + t on [l, u]:
//
//	u ≤ 0:        α = 0, s = 0,          t = 0
//	l ≥ 0:        α = 1, s = 1,          t = 0
//	l < 0 < u:    α = [u > −l], s = u/(u−l), t = −s·l = −l·u/(u−l).
//
// Backward differentiates s and t (∂s/∂u = −l/(u−l)², ∂s/∂l = u/(u−l)²,
// ∂t/∂u = l²/(u−l)², ∂t/∂l = −u²/(u−l)²) and treats α as a constant (it is piecewise
// constant in l and u).
type reluRelax struct{}

func (reluRelax) OpType() string    { return "certify.ReluRelax" }
func (reluRelax) Attrs() nets.Attrs { return nets.NewAttrs() }

func (reluRelax) Forward(in []*nets.Tensor) ([]*nets.Tensor, error) {
	if len(in) != 2 || !nets.SameShape(in[0].Shape, in[1].Shape) {
		return nil, fmt.Errorf("relu relaxation: want two bounds of one shape")
	}
	l, u := in[0], in[1]
	a, s, t := nets.NewTensor(l.Shape...), nets.NewTensor(l.Shape...), nets.NewTensor(l.Shape...)
	for i, lo := range l.Data {
		hi := u.Data[i]
		switch {
		case hi <= 0:
		case lo >= 0:
			a.Data[i], s.Data[i] = 1, 1
		default:
			if hi > -lo {
				a.Data[i] = 1
			}
			s.Data[i] = hi / (hi - lo)
			t.Data[i] = -s.Data[i] * lo
		}
	}
	return []*nets.Tensor{a, s, t}, nil
}

func (reluRelax) Backward(in, out, gradOut []*nets.Tensor, need []bool) ([]*nets.Tensor, error) {
	l, u := in[0], in[1]
	gl, gu := nets.NewTensor(l.Shape...), nets.NewTensor(l.Shape...)
	gs, gt := gradOut[1], gradOut[2]
	for i, lo := range l.Data {
		hi := u.Data[i]
		if hi <= 0 || lo >= 0 {
			continue
		}
		w2 := (hi - lo) * (hi - lo)
		if gs != nil {
			gu.Data[i] += gs.Data[i] * (-lo / w2)
			gl.Data[i] += gs.Data[i] * (hi / w2)
		}
		if gt != nil {
			gu.Data[i] += gt.Data[i] * (lo * lo / w2)
			gl.Data[i] += gt.Data[i] * (-hi * hi / w2)
		}
	}
	return []*nets.Tensor{gl, gu}, nil
}

// concretise is the minimum of a batch of linear functions over a box in
// centre/radius form: for Λ [n, R, w], μ and r [n, w] (r ≥ 0), out [n, R] is
//
//	min over |x − μ| ≤ r of Λ_i·x = Λ_i·μ − |Λ_i|·r,
//
// with ∂/∂Λ_ip = μ_p − sign(Λ_ip)·r_p (the subgradient 0 at Λ_ip = 0),
// ∂/∂μ_p = Λ_ip and ∂/∂r_p = −|Λ_ip|.
type concretise struct{}

func (concretise) OpType() string    { return "certify.Concretise" }
func (concretise) Attrs() nets.Attrs { return nets.NewAttrs() }

func concretiseDims(in []*nets.Tensor) (n, rows, w int, err error) {
	if len(in) != 3 || in[0].Rank() != 3 || in[1].Rank() != 2 || !nets.SameShape(in[1].Shape, in[2].Shape) ||
		in[1].Shape[0] != in[0].Shape[0] || in[1].Shape[1] != in[0].Shape[2] {
		return 0, 0, 0, fmt.Errorf("concretise: want Λ [n,R,w] and a box [n,w]")
	}
	return in[0].Shape[0], in[0].Shape[1], in[0].Shape[2], nil
}

func (concretise) Forward(in []*nets.Tensor) ([]*nets.Tensor, error) {
	n, rows, w, err := concretiseDims(in)
	if err != nil {
		return nil, err
	}
	lam, mu, r := in[0].Data, in[1].Data, in[2].Data
	out := nets.NewTensor(n, rows)
	for i := 0; i < n; i++ {
		m, rr := mu[i*w:(i+1)*w], r[i*w:(i+1)*w]
		for j := 0; j < rows; j++ {
			a := lam[(i*rows+j)*w : (i*rows+j+1)*w]
			s := 0.0
			for p, v := range a {
				s += v*m[p] - math.Abs(v)*rr[p]
			}
			out.Data[i*rows+j] = s
		}
	}
	return []*nets.Tensor{out}, nil
}

func (concretise) Backward(in, out, gradOut []*nets.Tensor, need []bool) ([]*nets.Tensor, error) {
	n, rows, w, err := concretiseDims(in)
	if err != nil {
		return nil, err
	}
	lam, mu, r, g := in[0].Data, in[1].Data, in[2].Data, gradOut[0].Data
	grads := make([]*nets.Tensor, 3)
	for k := range grads {
		if need[k] {
			grads[k] = nets.NewTensor(in[k].Shape...)
		}
	}
	for i := 0; i < n; i++ {
		m, rr := mu[i*w:(i+1)*w], r[i*w:(i+1)*w]
		for j := 0; j < rows; j++ {
			gij := g[i*rows+j]
			a := lam[(i*rows+j)*w : (i*rows+j+1)*w]
			if need[0] {
				ga := grads[0].Data[(i*rows+j)*w : (i*rows+j+1)*w]
				for p, v := range a {
					switch {
					case v > 0:
						ga[p] = gij * (m[p] - rr[p])
					case v < 0:
						ga[p] = gij * (m[p] + rr[p])
					default:
						ga[p] = gij * m[p]
					}
				}
			}
			if need[1] {
				gm := grads[1].Data[i*w : (i+1)*w]
				for p, v := range a {
					gm[p] += gij * v
				}
			}
			if need[2] {
				gr := grads[2].Data[i*w : (i+1)*w]
				for p, v := range a {
					gr[p] -= gij * math.Abs(v)
				}
			}
		}
	}
	return grads, nil
}
