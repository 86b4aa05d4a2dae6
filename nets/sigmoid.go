package nets

import "math"

// Sigmoid is σ(x) = 1/(1+e^{−x}), elementwise (ONNX Sigmoid).
type Sigmoid struct{}

func newSigmoid(NodeSpec) (Op, error) { return Sigmoid{}, nil }

func (Sigmoid) OpType() string { return "Sigmoid" }
func (Sigmoid) Attrs() Attrs   { return NewAttrs() }

// sigmoid never evaluates e^{|x|}: for x < 0 it uses σ(x) = e^x/(1+e^x), so neither
// branch overflows, and deep in the negative tail (x < −709, where e^{−x} is +Inf
// and 1/(1+e^{−x}) would round to 0) it still returns e^x to full precision.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

func (Sigmoid) Forward(in []*Tensor) ([]*Tensor, error) {
	if err := checkArity("Sigmoid", in, 1, 1); err != nil {
		return nil, err
	}
	x := in[0]
	y := NewTensor(x.Shape...)
	for i, v := range x.Data {
		y.Data[i] = sigmoid(v)
	}
	return []*Tensor{y}, nil
}

// Backward uses σ'(x) = σ(x)(1−σ(x)), from the forward output when available.
func (op Sigmoid) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	return unaryBackward(op, in, out, gradOut, need, func(_, y float64) float64 { return y * (1 - y) })
}
