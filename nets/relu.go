package nets

// Relu is max(0, x), elementwise.
type Relu struct{}

func newRelu(NodeSpec) (Op, error) { return Relu{}, nil }

func (Relu) OpType() string { return "Relu" }
func (Relu) Attrs() Attrs   { return NewAttrs() }

func (Relu) Forward(in []*Tensor) ([]*Tensor, error) {
	x := in[0]
	y := NewTensor(x.Shape...)
	for i, v := range x.Data {
		if v > 0 {
			y.Data[i] = v
		}
	}
	return []*Tensor{y}, nil
}

// Backward passes the gradient where the input was positive. At 0 the subgradient 0
// is taken, as PyTorch does.
func (Relu) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	if !need[0] {
		return []*Tensor{nil}, nil
	}
	x, g := in[0], gradOut[0]
	dx := NewTensor(x.Shape...)
	for i, v := range x.Data {
		if v > 0 {
			dx.Data[i] = g.Data[i]
		}
	}
	return []*Tensor{dx}, nil
}
