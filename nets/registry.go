package nets

// constructors lists every supported ONNX operator. Adding an op means a file named
// after it with its forward and backward, and one line here.
func constructors() map[string]OpConstructor {
	return map[string]OpConstructor{
		"Gemm":               newGemm,
		"MatMul":             newMatMul,
		"Add":                newAdd,
		"Sub":                newSub,
		"Mul":                newMul,
		"Div":                newDiv,
		"Relu":               newRelu,
		"Sigmoid":            newSigmoid,
		"Tanh":               newTanh,
		"Softmax":            newSoftmax,
		"Conv":               newConv,
		"Flatten":            newFlatten,
		"Reshape":            newReshape,
		"Transpose":          newTranspose,
		"Concat":             newConcat,
		"Pad":                newPad,
		"BatchNormalization": newBatchNormalization,
		"AveragePool":        newAveragePool,
		"MaxPool":            newMaxPool,
		"GlobalAveragePool":  newGlobalAveragePool,
		"Identity":           newIdentity,
		"Constant":           newConstant,
		"Dropout":            newDropout,
	}
}
