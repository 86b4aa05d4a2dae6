package nets

// Sub is y = a − b elementwise with multidirectional (numpy) broadcasting
// (ONNX Sub, opset 7 and later; see broadcast.go). Models use it to normalise
// inputs, (x − mean) / std.
type Sub struct{}

func newSub(spec NodeSpec) (Op, error) {
	if err := checkLegacyBroadcast("Sub", spec); err != nil {
		return nil, err
	}
	return Sub{}, nil
}

func (Sub) OpType() string { return "Sub" }
func (Sub) Attrs() Attrs   { return NewAttrs() }

func (Sub) Forward(in []*Tensor) ([]*Tensor, error) { return binaryOp("Sub", kindSub, in) }

// Backward: ∂y/∂a = 1, ∂y/∂b = −1, each summed over the operand's broadcast axes.
func (Sub) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	return binaryBackward("Sub", in, gradOut, need, func(_ *bcastPlan, which int, g []float64) []float64 {
		if which == 0 {
			return g
		}
		neg := make([]float64, len(g))
		for i, v := range g {
			neg[i] = -v
		}
		return neg
	})
}
