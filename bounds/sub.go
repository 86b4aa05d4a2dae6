package bounds

// newSub relaxes Sub, y = a − b with numpy broadcasting (input normalisation
// x − mean, or a difference of two bounded tensors): an affine map (affineLayer).
// IBP: [l_a − u_b, u_a − l_b]; CROWN: the coefficient goes to a and, negated, to b.
func newSub(b base) (layer, error) { return newLinearBinary(b, "Sub", -1) }
