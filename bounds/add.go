package bounds

// newAdd relaxes Add, y = a + b with numpy broadcasting, where either operand is a
// constant (a shift: y = x + c) or both are bounded (a residual connection): an
// affine map (affineLayer), exact in both rules. IBP: [l_a + l_b, u_a + u_b]. CROWN:
// the coefficient of y goes unchanged (summed over broadcast axes) to both
// operands; with a residual graph the engine adds up the coefficients that reach a
// value along all its paths before going on (engine.go, pass.run).
func newAdd(b base) (layer, error) { return newLinearBinary(b, "Add", 1) }
