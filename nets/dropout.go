package nets

// Dropout at inference is the identity (ONNX Dropout): this package runs graphs in
// inference mode only, so the optional inputs ratio and training_mode (opset 12) and
// the attribute seed are ignored, and the optional second output, the mask, is all
// ones (true: every unit kept). Training-time dropout, where wanted, belongs to the
// training recipe, not to the imported graph.
type Dropout struct {
	// Ratio is the drop probability as read from the attribute ratio (opsets < 12;
	// 0.5 when absent). It does not affect the computation.
	Ratio float64
	// Mask is set when the node names the second output, the mask.
	Mask      bool
	ratioAttr bool
}

func newDropout(spec NodeSpec) (Op, error) {
	_, has := spec.Attrs.Floats["ratio"]
	if len(spec.Constants) > 2 && spec.Constants[2] != nil {
		var ratio *Tensor
		if len(spec.Constants) > 1 {
			ratio = spec.Constants[1]
		}
		if err := checkInference(ratio, spec.Constants[2]); err != nil {
			return nil, err
		}
	}
	return Dropout{Ratio: spec.Attrs.Float("ratio", 0.5), Mask: spec.NumOutputs >= 2, ratioAttr: has}, nil
}

func (Dropout) OpType() string { return "Dropout" }

// Attrs writes ratio back only if it came as an attribute: opset 12 made it an input.
func (op Dropout) Attrs() Attrs {
	a := NewAttrs()
	if op.ratioAttr {
		a.SetFloat("ratio", op.Ratio)
	}
	return a
}

// Forward returns (a copy of) the input, and the mask when the node asks for it.
func (op Dropout) Forward(in []*Tensor) ([]*Tensor, error) {
	if err := checkArity("Dropout", in, 1, 3); err != nil {
		return nil, err
	}
	if len(in) > 2 && in[2] != nil {
		if err := checkInference(in[1], in[2]); err != nil {
			return nil, err
		}
	}
	if !op.Mask {
		return []*Tensor{in[0].Clone()}, nil
	}
	mask := NewTensor(in[0].Shape...)
	for i := range mask.Data {
		mask.Data[i] = 1
	}
	return []*Tensor{in[0].Clone(), mask}, nil
}

// Backward passes the gradient of the output through; the mask and the ratio and
// training_mode inputs carry no gradient.
func (Dropout) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	if err := checkArity("Dropout", in, 1, 3); err != nil {
		return nil, err
	}
	return reshapeGrad("Dropout", in, gradOut, need, in[0].Shape)
}

// checkInference rejects training-mode dropout (training_mode input true with a
// non-zero ratio): its output is random, and we would silently compute something
// else. With ratio 0 training mode is the identity too.
func checkInference(ratio, trainingMode *Tensor) error {
	if trainingMode == nil || len(trainingMode.Data) == 0 || trainingMode.Data[0] == 0 {
		return nil
	}
	r := 0.5
	if ratio != nil && len(ratio.Data) > 0 {
		r = ratio.Data[0]
	}
	if r == 0 {
		return nil
	}
	return unsupported("Dropout in training mode (training_mode=1, ratio %g)", r)
}
