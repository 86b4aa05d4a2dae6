package nets

// Mul is y = a · b elementwise with multidirectional (numpy) broadcasting
// (ONNX Mul, opset 7 and later; see broadcast.go).
type Mul struct{}

func newMul(spec NodeSpec) (Op, error) {
	if err := checkLegacyBroadcast("Mul", spec); err != nil {
		return nil, err
	}
	return Mul{}, nil
}

func (Mul) OpType() string { return "Mul" }
func (Mul) Attrs() Attrs   { return NewAttrs() }

func (Mul) Forward(in []*Tensor) ([]*Tensor, error) { return binaryOp("Mul", kindMul, in) }

// Backward: ∂y/∂a = b and ∂y/∂b = a (product rule), each summed over the operand's
// broadcast axes.
func (Mul) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	return binaryBackward("Mul", in, gradOut, need, func(p *bcastPlan, which int, g []float64) []float64 {
		other := 1 - which
		return p.withOperand(kindMul, other, g, in[other].Data)
	})
}
