package bounds

import (
	"fmt"
	"math"

	"github.com/certify-dev/certify/nets"
)

// newBatchNormalization relaxes inference BatchNormalization, the per-channel
// affine map y = a[c]·x + b[c] with a = γ/√(σ²+ε), b = β − μ·a
// (nets.BatchNormalization.Affine): an affineLayer, exact in both rules; IBP is
// sign-aware (a[c] < 0 swaps the ends).
//
// With SoundFP, a and b carry the rounding of their own computation (a sqrt, a
// division, a product and a difference: |Δa| ≤ 4u|a|, |Δb| ≤ 2u(|β| + |μa|) + |μ||Δa|),
// which the error weight adds as 8u·(|a|·max|x| + |β| + |μ·a|).
func newBatchNormalization(b base, op nets.BatchNormalization) (layer, error) {
	if len(b.in) != 5 || !b.in[0].bounded() {
		return nil, errArity("BatchNormalization", 5)
	}
	params := []*nets.Tensor{b.in[0].box.Lo}
	for i, o := range b.in[1:] {
		if o.c == nil {
			return nil, fmt.Errorf("%w: BatchNormalization with a bounded or absent parameter (input %d)", ErrUnsupported, i+1)
		}
		params = append(params, o.c)
	}
	scale, shift, err := op.Affine(params)
	if err != nil {
		return nil, err
	}
	x := b.in[0].box.Lo
	l := &affineLayer{base: b, outShape: x.Shape, so: len(x.Data) / b.e.n, terms: make([]affineTerm, 5)}
	ch := x.Shape[1]
	area := nets.NumElements(x.Shape[2:])
	tm := affineTerm{name: b.in[0].name, si: l.so, s: make([]float64, len(x.Data)), fanout: 1}
	l.t = make([]float64, len(x.Data))
	for g := range tm.s {
		c := (g / area) % ch
		tm.s[g], l.t[g] = scale[c], shift[c]
	}
	l.terms[0] = tm
	if b.e.opt.SoundFP {
		mag := b.e.mag(b.in[0].name)
		beta, mu := params[2].Data, params[3].Data
		l.extra = make([]float64, len(x.Data))
		for g := range l.extra {
			c := (g / area) % ch
			l.extra[g] = up(8 * unitRoundoff * (math.Abs(scale[c])*mag[g] + math.Abs(beta[c]) + math.Abs(mu[c]*scale[c])))
		}
	}
	return l, nil
}
