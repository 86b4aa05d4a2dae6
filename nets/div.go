package nets

// Div is y = a / b elementwise with multidirectional (numpy) broadcasting
// (ONNX Div, opset 7 and later; see broadcast.go). Division by zero follows IEEE 754
// (±Inf or NaN), as in the ONNX reference implementation for floats.
type Div struct{}

func newDiv(spec NodeSpec) (Op, error) {
	if err := checkLegacyBroadcast("Div", spec); err != nil {
		return nil, err
	}
	return Div{}, nil
}

func (Div) OpType() string { return "Div" }
func (Div) Attrs() Attrs   { return NewAttrs() }

func (Div) Forward(in []*Tensor) ([]*Tensor, error) { return binaryOp("Div", kindDiv, in) }

// Backward: ∂y/∂a = 1/b and ∂y/∂b = −a/b², each summed over the operand's broadcast
// axes.
func (Div) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	return binaryBackward("Div", in, gradOut, need, func(p *bcastPlan, which int, g []float64) []float64 {
		a, b := in[0].Data, in[1].Data
		if which == 0 {
			return p.withOperand(kindDiv, 1, g, b)
		}
		// −g·a/b², computed as −((g·a)/b)/b to reuse the stretched walks.
		t := p.withOperand(kindMul, 0, g, a)
		t = p.withOperand(kindDiv, 1, t, b)
		t = p.withOperand(kindDiv, 1, t, b)
		for i := range t {
			t[i] = -t[i]
		}
		return t
	})
}
