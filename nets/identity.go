package nets

// Identity returns (a copy of) its input (ONNX Identity).
type Identity struct{}

func newIdentity(NodeSpec) (Op, error) { return Identity{}, nil }

func (Identity) OpType() string { return "Identity" }
func (Identity) Attrs() Attrs   { return NewAttrs() }

func (Identity) Forward(in []*Tensor) ([]*Tensor, error) {
	if err := checkArity("Identity", in, 1, 1); err != nil {
		return nil, err
	}
	return []*Tensor{in[0].Clone()}, nil
}

func (Identity) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	if err := checkArity("Identity", in, 1, 1); err != nil {
		return nil, err
	}
	return reshapeGrad("Identity", in, gradOut, need, in[0].Shape)
}
