package nets

// Flatten reshapes its input to the matrix [d_0·…·d_{axis−1}, d_axis·…·d_{n−1}]
// (ONNX Flatten). Axis defaults to 1 and lies in [−r, r]; negative values (opset 11)
// count from the back, and axis 0 gives [1, all].
type Flatten struct {
	Axis int
}

func newFlatten(spec NodeSpec) (Op, error) {
	return Flatten{Axis: spec.Attrs.Int("axis", 1)}, nil
}

func (Flatten) OpType() string { return "Flatten" }

func (op Flatten) Attrs() Attrs {
	a := NewAttrs()
	a.SetInt("axis", op.Axis)
	return a
}

// OutShape returns the output shape for an input of the given shape.
func (op Flatten) OutShape(shape []int) ([]int, error) {
	axis, err := resolveAxis("Flatten", op.Axis, len(shape), len(shape))
	if err != nil {
		return nil, err
	}
	return []int{NumElements(shape[:axis]), NumElements(shape[axis:])}, nil
}

// Forward copies rather than aliasing the input: no value in a graph ever shares
// storage with another, so no caller can be surprised by a write through a view.
func (op Flatten) Forward(in []*Tensor) ([]*Tensor, error) {
	if err := checkArity("Flatten", in, 1, 1); err != nil {
		return nil, err
	}
	shape, err := op.OutShape(in[0].Shape)
	if err != nil {
		return nil, err
	}
	return []*Tensor{FromData(append([]float64(nil), in[0].Data...), shape...)}, nil
}

// Backward reshapes the gradient back to the input's shape.
func (op Flatten) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	if err := checkArity("Flatten", in, 1, 1); err != nil {
		return nil, err
	}
	shape, err := op.OutShape(in[0].Shape)
	if err != nil {
		return nil, err
	}
	return reshapeGrad("Flatten", in, gradOut, need, shape)
}

// reshapeGrad is the backward of the ops that only reinterpret the shape (Flatten,
// Reshape, Identity, Dropout): the gradient of in[0] is the output gradient, copied
// under the input's shape. Other inputs (Reshape's shape) get zero gradients.
func reshapeGrad(op string, in, gradOut []*Tensor, need []bool, outShape []int) ([]*Tensor, error) {
	grads := zeroGrads(in, need)
	if !need[0] || len(gradOut) == 0 || gradOut[0] == nil {
		return grads, nil
	}
	g := gradOut[0]
	if err := checkGradOut(op, g, outShape); err != nil {
		return nil, err
	}
	grads[0] = FromData(append([]float64(nil), g.Data...), in[0].Shape...)
	return grads, nil
}
