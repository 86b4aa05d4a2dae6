package nets

import (
	"fmt"
	"math"
)

// Reshape gives its input a new shape with the same number of elements (ONNX
// Reshape). The target shape comes from the second input (opset ≥ 5) or, in opset
// < 5, from the attribute shape, held in Shape. In the target:
//   - −1 (at most once) is inferred from the remaining dimensions;
//   - 0 copies the input's dimension at the same index, unless AllowZero (attribute
//     allowzero, opset 14), in which case it is a literal 0 and may not be combined
//     with −1.
type Reshape struct {
	Shape     []int // opset < 5 only; nil means the shape is in[1]
	AllowZero bool
}

func newReshape(spec NodeSpec) (Op, error) {
	op := Reshape{AllowZero: spec.Attrs.Int("allowzero", 0) != 0}
	_, hasAttr := spec.Attrs.Ints["shape"]
	if (spec.Opset > 0 && spec.Opset < 5) || (spec.Opset <= 0 && hasAttr) {
		if !hasAttr {
			return nil, fmt.Errorf("Reshape (opset %d): attribute shape is missing", spec.Opset)
		}
		op.Shape = spec.Attrs.IntList("shape", nil)
		if op.Shape == nil {
			op.Shape = []int{} // an empty list: reshape to a scalar
		}
	}
	return op, nil
}

func (Reshape) OpType() string { return "Reshape" }

func (op Reshape) Attrs() Attrs {
	a := NewAttrs()
	if op.AllowZero {
		a.SetInt("allowzero", 1)
	}
	if op.Shape != nil {
		a.SetInts("shape", op.Shape)
	}
	return a
}

// target returns the requested shape, as written (with 0s and −1).
func (op Reshape) target(in []*Tensor) ([]int, error) {
	if op.Shape != nil {
		if err := checkArity("Reshape", in, 1, 1); err != nil {
			return nil, err
		}
		return op.Shape, nil
	}
	if err := checkArity("Reshape", in, 2, 2); err != nil {
		return nil, err
	}
	s := in[1]
	if s.Rank() != 1 {
		return nil, fmt.Errorf("Reshape: the shape input must be 1-D, got shape %s", fmtShape(s.Shape))
	}
	out := make([]int, len(s.Data))
	for i, v := range s.Data {
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			return nil, fmt.Errorf("Reshape: shape[%d] = %v is not an integer", i, v)
		}
		out[i] = int(v)
	}
	return out, nil
}

// OutShape resolves the 0s and −1 of the requested shape for an input of shape from.
func (op Reshape) OutShape(from, shape []int) ([]int, error) {
	out := make([]int, len(shape))
	infer, known := -1, 1
	hasZero := false
	for i, d := range shape {
		switch {
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("Reshape: shape %s has more than one -1", fmtShape(shape))
			}
			infer = i
			continue
		case d < -1:
			return nil, fmt.Errorf("Reshape: shape %s has invalid dimension %d", fmtShape(shape), d)
		case d == 0 && !op.AllowZero:
			if i >= len(from) {
				return nil, fmt.Errorf("Reshape: shape %s copies dimension %d (0) but the input %s has rank %d",
					fmtShape(shape), i, fmtShape(from), len(from))
			}
			d = from[i]
		case d == 0:
			hasZero = true
		}
		out[i] = d
		known *= d
	}
	n := NumElements(from)
	if infer >= 0 {
		if hasZero {
			return nil, fmt.Errorf("Reshape: shape %s combines -1 with 0 under allowzero=1", fmtShape(shape))
		}
		if known == 0 || n%known != 0 {
			return nil, fmt.Errorf("Reshape: cannot reshape %s (%d elements) to %s",
				fmtShape(from), n, fmtShape(shape))
		}
		out[infer] = n / known
		known *= out[infer]
	}
	if known != n {
		return nil, fmt.Errorf("Reshape: cannot reshape %s (%d elements) to %s (%d elements)",
			fmtShape(from), n, fmtShape(shape), known)
	}
	return out, nil
}

func (op Reshape) outShape(in []*Tensor) ([]int, error) {
	shape, err := op.target(in)
	if err != nil {
		return nil, err
	}
	return op.OutShape(in[0].Shape, shape)
}

func (op Reshape) Forward(in []*Tensor) ([]*Tensor, error) {
	shape, err := op.outShape(in)
	if err != nil {
		return nil, err
	}
	return []*Tensor{FromData(append([]float64(nil), in[0].Data...), shape...)}, nil
}

// Backward reshapes the gradient back. The shape input is integer-valued and the
// output is piecewise constant in it, so its gradient is zero.
func (op Reshape) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	shape, err := op.outShape(in)
	if err != nil {
		return nil, err
	}
	return reshapeGrad("Reshape", in, gradOut, need, shape)
}
