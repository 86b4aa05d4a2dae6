package nets

import "fmt"

// Constant outputs a fixed tensor and has no inputs (ONNX Constant). The value is
// given by exactly one attribute: value (a tensor), or, from opset 12, value_float,
// value_floats, value_int or value_ints. Strings and sparse tensors are not
// supported.
type Constant struct {
	Value *Tensor
}

func newConstant(spec NodeSpec) (Op, error) {
	a := spec.Attrs
	var vals []*Tensor
	if t, ok := a.Tensors["value"]; ok {
		if t == nil || len(t.Data) != NumElements(t.Shape) {
			return nil, fmt.Errorf("Constant: attribute value is not a valid tensor")
		}
		vals = append(vals, t.Clone())
	}
	if v, ok := a.Floats["value_float"]; ok {
		if len(v) != 1 {
			return nil, fmt.Errorf("Constant: value_float has %d values, want 1", len(v))
		}
		vals = append(vals, Scalar(v[0]))
	}
	if v, ok := a.Floats["value_floats"]; ok {
		vals = append(vals, FromData(append([]float64(nil), v...), len(v)))
	}
	if v, ok := a.Ints["value_int"]; ok {
		if len(v) != 1 {
			return nil, fmt.Errorf("Constant: value_int has %d values, want 1", len(v))
		}
		vals = append(vals, Scalar(float64(v[0])))
	}
	if v, ok := a.Ints["value_ints"]; ok {
		t := NewTensor(len(v))
		for i, x := range v {
			t.Data[i] = float64(x)
		}
		vals = append(vals, t)
	}
	for _, name := range []string{"value_string", "value_strings", "sparse_value"} {
		if _, ok := a.Strings[name]; ok {
			return nil, unsupported("Constant: attribute %s", name)
		}
	}
	switch len(vals) {
	case 0:
		return nil, fmt.Errorf("Constant: no value attribute (value, value_float(s), value_int(s))")
	case 1:
		return Constant{Value: vals[0]}, nil
	default:
		return nil, fmt.Errorf("Constant: %d value attributes given, exactly one is allowed", len(vals))
	}
}

func (Constant) OpType() string { return "Constant" }

// Attrs exports the value as a tensor attribute, which every opset accepts.
func (op Constant) Attrs() Attrs {
	a := NewAttrs()
	a.Tensors["value"] = op.Value.Clone()
	return a
}

// Forward returns a copy of the value, so that no consumer can alter the constant.
func (op Constant) Forward(in []*Tensor) ([]*Tensor, error) {
	if len(in) != 0 {
		return nil, fmt.Errorf("Constant: got %d inputs, want none", len(in))
	}
	if op.Value == nil {
		return nil, fmt.Errorf("Constant: no value")
	}
	return []*Tensor{op.Value.Clone()}, nil
}

// Backward has nothing to do: a constant has no inputs.
func (Constant) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	return []*Tensor{}, nil
}
