package nets

// Add is y = a + b elementwise with multidirectional (numpy) broadcasting
// (ONNX Add, opset 7 and later; see broadcast.go).
type Add struct{}

func newAdd(spec NodeSpec) (Op, error) {
	if err := checkLegacyBroadcast("Add", spec); err != nil {
		return nil, err
	}
	return Add{}, nil
}

func (Add) OpType() string { return "Add" }
func (Add) Attrs() Attrs   { return NewAttrs() }

func (Add) Forward(in []*Tensor) ([]*Tensor, error) { return binaryOp("Add", kindAdd, in) }

// Backward: ∂y/∂a = ∂y/∂b = 1, so each operand receives g summed over the axes it
// was broadcast along.
func (Add) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	return binaryBackward("Add", in, gradOut, need, func(_ *bcastPlan, _ int, g []float64) []float64 {
		return g
	})
}
