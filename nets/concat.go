package nets

import "fmt"

// Concat joins its inputs along Axis (ONNX Concat). All inputs have the same rank
// and agree on every other dimension; a negative axis (opset 11) counts from the back.
type Concat struct {
	Axis int
}

func newConcat(spec NodeSpec) (Op, error) {
	if _, ok := spec.Attrs.Ints["axis"]; !ok {
		if spec.Opset >= 4 || spec.Opset <= 0 {
			return nil, fmt.Errorf("Concat: attribute axis is required")
		}
		return Concat{Axis: 1}, nil // opsets 1–3 defaulted to 1
	}
	return Concat{Axis: spec.Attrs.Int("axis", 1)}, nil
}

func (Concat) OpType() string { return "Concat" }

func (op Concat) Attrs() Attrs {
	a := NewAttrs()
	a.SetInt("axis", op.Axis)
	return a
}

// layout checks the inputs and returns the resolved axis, the output shape, the
// number of outer blocks and each input's contiguous chunk per block.
func (op Concat) layout(in []*Tensor) (axis int, shape []int, outer int, chunk []int, err error) {
	if err := checkArity("Concat", in, 1, -1); err != nil {
		return 0, nil, 0, nil, err
	}
	for i, t := range in {
		if t == nil {
			return 0, nil, 0, nil, fmt.Errorf("Concat: input %d is absent", i)
		}
	}
	first := in[0].Shape
	r := len(first)
	axis, err = resolveAxis("Concat", op.Axis, r, r-1)
	if err != nil {
		return 0, nil, 0, nil, err
	}
	shape = append([]int(nil), first...)
	shape[axis] = 0
	chunk = make([]int, len(in))
	for i, t := range in {
		if t.Rank() != r {
			return 0, nil, 0, nil, fmt.Errorf("Concat: input 0 is %s but input %d is %s: ranks differ",
				fmtShape(first), i, fmtShape(t.Shape))
		}
		for d := range first {
			if d != axis && t.Shape[d] != first[d] {
				return 0, nil, 0, nil, fmt.Errorf("Concat: input 0 is %s but input %d is %s: dimension %d differs (axis %d)",
					fmtShape(first), i, fmtShape(t.Shape), d, axis)
			}
		}
		shape[axis] += t.Shape[axis]
		chunk[i] = NumElements(t.Shape[axis:])
	}
	return axis, shape, NumElements(first[:axis]), chunk, nil
}

func (op Concat) Forward(in []*Tensor) ([]*Tensor, error) {
	_, shape, outer, chunk, err := op.layout(in)
	if err != nil {
		return nil, err
	}
	y := NewTensor(shape...)
	off := 0
	for o := 0; o < outer; o++ {
		for i, t := range in {
			off += copy(y.Data[off:off+chunk[i]], t.Data[o*chunk[i]:(o+1)*chunk[i]])
		}
	}
	return []*Tensor{y}, nil
}

// Backward hands each input its slice of the output gradient.
func (op Concat) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	_, shape, outer, chunk, err := op.layout(in)
	if err != nil {
		return nil, err
	}
	g := gradOut[0]
	if g == nil {
		return zeroGrads(in, need), nil
	}
	if err := checkGradOut("Concat", g, shape); err != nil {
		return nil, err
	}
	grads := zeroGrads(in, need)
	off := 0
	for o := 0; o < outer; o++ {
		for i := range in {
			if grads[i] != nil {
				copy(grads[i].Data[o*chunk[i]:(o+1)*chunk[i]], g.Data[off:off+chunk[i]])
			}
			off += chunk[i]
		}
	}
	return grads, nil
}
