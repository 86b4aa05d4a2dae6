package nets

import "math"

// Relu is max(0, x), elementwise.
type Relu struct{}

func newRelu(NodeSpec) (Op, error) { return Relu{}, nil }

func (Relu) OpType() string { return "Relu" }
func (Relu) Attrs() Attrs   { return NewAttrs() }

func (Relu) Forward(in []*Tensor) ([]*Tensor, error) {
	x := in[0]
	y := NewTensor(x.Shape...)
	for i, v := range x.Data {
		y.Data[i] = relu0(v)
	}
	return []*Tensor{y}, nil
}

// positiveMask is all ones when v > 0 (NaN excluded) and 0 otherwise. The test is
// on the bits, u − 1 < bits(+Inf), and compiles to a conditional move: ReLU inputs
// are positive about half the time, at random, and a branch on the sign was
// mispredicted so often that it cost 5× the rest of the loop.
func positiveMask(v float64) uint64 {
	var m uint64
	if math.Float64bits(v)-1 < 0x7FF0000000000000 {
		m = ^uint64(0)
	}
	return m
}

// relu0 is v when v > 0, else +0 (for NaN and −0 too).
func relu0(v float64) float64 {
	return math.Float64frombits(math.Float64bits(v) & positiveMask(v))
}

// Backward passes the gradient where the input was positive. At 0 the subgradient 0
// is taken, as PyTorch does.
func (Relu) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	if !need[0] {
		return []*Tensor{nil}, nil
	}
	x, g := in[0], gradOut[0]
	dx := NewTensor(x.Shape...)
	gd := g.Data[:len(x.Data)]
	for i, v := range x.Data {
		dx.Data[i] = math.Float64frombits(math.Float64bits(gd[i]) & positiveMask(v))
	}
	return []*Tensor{dx}, nil
}
