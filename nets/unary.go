package nets

// unaryBackward is the backward of a one-input elementwise op whose derivative is
// deriv(x, y) with y = f(x). The output y is recomputed when out is not supplied.
func unaryBackward(op Op, in, out, gradOut []*Tensor, need []bool, deriv func(x, y float64) float64) ([]*Tensor, error) {
	name := op.OpType()
	if err := checkArity(name, in, 1, 1); err != nil {
		return nil, err
	}
	if !need[0] {
		return []*Tensor{nil}, nil
	}
	x, g := in[0], gradOut[0]
	if g == nil {
		return zeroGrads(in, need), nil
	}
	if err := checkGradOut(name, g, x.Shape); err != nil {
		return nil, err
	}
	var y *Tensor
	if len(out) > 0 && out[0] != nil && SameShape(out[0].Shape, x.Shape) {
		y = out[0]
	} else {
		o, err := op.Forward(in)
		if err != nil {
			return nil, err
		}
		y = o[0]
	}
	dx := NewTensor(x.Shape...)
	for i, v := range x.Data {
		dx.Data[i] = g.Data[i] * deriv(v, y.Data[i])
	}
	return []*Tensor{dx}, nil
}
