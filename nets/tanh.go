package nets

import "math"

// Tanh is the hyperbolic tangent, elementwise (ONNX Tanh). math.Tanh saturates to
// ±1 for large |x| without overflow.
type Tanh struct{}

func newTanh(NodeSpec) (Op, error) { return Tanh{}, nil }

func (Tanh) OpType() string { return "Tanh" }
func (Tanh) Attrs() Attrs   { return NewAttrs() }

func (Tanh) Forward(in []*Tensor) ([]*Tensor, error) {
	if err := checkArity("Tanh", in, 1, 1); err != nil {
		return nil, err
	}
	x := in[0]
	y := NewTensor(x.Shape...)
	for i, v := range x.Data {
		y.Data[i] = math.Tanh(v)
	}
	return []*Tensor{y}, nil
}

// Backward uses tanh'(x) = 1 − tanh²(x), from the forward output when available.
func (op Tanh) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	return unaryBackward(op, in, out, gradOut, need, func(_, y float64) float64 { return 1 - y*y })
}
