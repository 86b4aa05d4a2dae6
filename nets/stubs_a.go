package nets

// Temporary: constructors not yet written (helper A's list). Delete each line as its
// op file lands.
func newGemm(NodeSpec) (Op, error)      { return nil, unsupported("Gemm") }
func newMatMul(NodeSpec) (Op, error)    { return nil, unsupported("MatMul") }
func newAdd(NodeSpec) (Op, error)       { return nil, unsupported("Add") }
func newSub(NodeSpec) (Op, error)       { return nil, unsupported("Sub") }
func newMul(NodeSpec) (Op, error)       { return nil, unsupported("Mul") }
func newDiv(NodeSpec) (Op, error)       { return nil, unsupported("Div") }
func newSigmoid(NodeSpec) (Op, error)   { return nil, unsupported("Sigmoid") }
func newTanh(NodeSpec) (Op, error)      { return nil, unsupported("Tanh") }
func newSoftmax(NodeSpec) (Op, error)   { return nil, unsupported("Softmax") }
func newFlatten(NodeSpec) (Op, error)   { return nil, unsupported("Flatten") }
func newReshape(NodeSpec) (Op, error)   { return nil, unsupported("Reshape") }
func newTranspose(NodeSpec) (Op, error) { return nil, unsupported("Transpose") }
func newConcat(NodeSpec) (Op, error)    { return nil, unsupported("Concat") }
func newIdentity(NodeSpec) (Op, error)  { return nil, unsupported("Identity") }
func newConstant(NodeSpec) (Op, error)  { return nil, unsupported("Constant") }
func newDropout(NodeSpec) (Op, error)   { return nil, unsupported("Dropout") }
