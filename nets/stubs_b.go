package nets

// Temporary: constructors not yet written (helper B's list). Delete each line as its
// op file lands.
func newConv(NodeSpec) (Op, error)               { return nil, unsupported("Conv") }
func newPad(NodeSpec) (Op, error)                { return nil, unsupported("Pad") }
func newBatchNormalization(NodeSpec) (Op, error) { return nil, unsupported("BatchNormalization") }
func newAveragePool(NodeSpec) (Op, error)        { return nil, unsupported("AveragePool") }
func newMaxPool(NodeSpec) (Op, error)            { return nil, unsupported("MaxPool") }
func newGlobalAveragePool(NodeSpec) (Op, error)  { return nil, unsupported("GlobalAveragePool") }
