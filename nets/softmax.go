package nets

import "math"

// Softmax is y_i = e^{x_i} / Σ_j e^{x_j} over one axis (ONNX Softmax).
//
// The meaning of the axis changed in opset 13:
//   - opset < 13 (Coerce2D): the input is viewed as a matrix
//     [d_0·…·d_{axis−1}, d_axis·…·d_{n−1}] and softmax runs over each row, so every
//     dimension from axis on is normalised jointly; default axis 1.
//   - opset ≥ 13: softmax runs along the single dimension axis; default −1.
//
// Negative axes count from the back. Axis keeps the attribute as written (it is
// resolved against the input's rank at run time) so export reproduces it.
type Softmax struct {
	Axis     int
	Coerce2D bool
}

func newSoftmax(spec NodeSpec) (Op, error) {
	if spec.Opset > 0 && spec.Opset < 13 {
		return Softmax{Axis: spec.Attrs.Int("axis", 1), Coerce2D: true}, nil
	}
	return Softmax{Axis: spec.Attrs.Int("axis", -1)}, nil
}

func (Softmax) OpType() string { return "Softmax" }

func (op Softmax) Attrs() Attrs {
	a := NewAttrs()
	a.SetInt("axis", op.Axis)
	return a
}

// layout returns the reduction geometry: outer blocks, d elements reduced per block
// with stride inner, and inner independent positions per block.
func (op Softmax) layout(x *Tensor) (outer, d, inner int, err error) {
	r := x.Rank()
	axis, err := resolveAxis("Softmax", op.Axis, r, r-1)
	if err != nil {
		return 0, 0, 0, err
	}
	outer = NumElements(x.Shape[:axis])
	if op.Coerce2D {
		return outer, NumElements(x.Shape[axis:]), 1, nil
	}
	return outer, x.Shape[axis], NumElements(x.Shape[axis+1:]), nil
}

// Forward subtracts the maximum before exponentiating (softmax is invariant to a
// shift), so no term overflows and the largest term is exactly e^0 = 1.
func (op Softmax) Forward(in []*Tensor) ([]*Tensor, error) {
	if err := checkArity("Softmax", in, 1, 1); err != nil {
		return nil, err
	}
	x := in[0]
	outer, d, inner, err := op.layout(x)
	if err != nil {
		return nil, err
	}
	y := NewTensor(x.Shape...)
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			base := o*d*inner + i
			m := math.Inf(-1)
			for j := 0; j < d; j++ {
				m = math.Max(m, x.Data[base+j*inner])
			}
			s := 0.0
			for j := 0; j < d; j++ {
				e := math.Exp(x.Data[base+j*inner] - m)
				y.Data[base+j*inner] = e
				s += e
			}
			for j := 0; j < d; j++ {
				y.Data[base+j*inner] /= s
			}
		}
	}
	return []*Tensor{y}, nil
}

// Backward: the Jacobian of softmax is diag(y) − y·yᵀ, so along each reduced slice
// ∂L/∂x = y ⊙ (g − ⟨g, y⟩).
func (op Softmax) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	if err := checkArity("Softmax", in, 1, 1); err != nil {
		return nil, err
	}
	if !need[0] {
		return []*Tensor{nil}, nil
	}
	x, g := in[0], gradOut[0]
	if g == nil {
		return zeroGrads(in, need), nil
	}
	if err := checkGradOut("Softmax", g, x.Shape); err != nil {
		return nil, err
	}
	outer, d, inner, err := op.layout(x)
	if err != nil {
		return nil, err
	}
	var y *Tensor
	if len(out) > 0 && out[0] != nil && SameShape(out[0].Shape, x.Shape) {
		y = out[0]
	} else {
		o, err := op.Forward(in)
		if err != nil {
			return nil, err
		}
		y = o[0]
	}
	dx := NewTensor(x.Shape...)
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			base := o*d*inner + i
			dot := 0.0
			for j := 0; j < d; j++ {
				dot += g.Data[base+j*inner] * y.Data[base+j*inner]
			}
			for j := 0; j < d; j++ {
				k := base + j*inner
				dx.Data[k] = y.Data[k] * (g.Data[k] - dot)
			}
		}
	}
	return []*Tensor{dx}, nil
}
