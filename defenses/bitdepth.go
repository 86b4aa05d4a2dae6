package defenses

import (
	"fmt"
	"math"
)

// BitDepth is colour bit-depth reduction, the first squeezer of Xu, Evans & Qi
// ("Feature Squeezing: Detecting Adversarial Examples in Deep Neural Networks",
// NDSS 2018, Section 4.1): each value x ∈ [0, 1] is quantised to b bits,
//
//	t(x) = round(x·(2^b − 1)) / (2^b − 1),
//
// after clipping x to [0, 1] (a value outside the image range is first moved to the
// nearest end of it). round sends halves up (math.Round on x ≥ 0). With b = 1 the
// image is thresholded at 1/2, Xu et al.'s setting for MNIST; b = 8 is the 8-bit
// grid of an ordinary image file. The map is idempotent: t(t(x)) = t(x).
//
// t is piecewise constant, so its derivative is 0 almost everywhere: a wrapper
// around it has zero naive gradient (gradient masking: PGD on it never moves), and
// its adaptive target is BPDA with the identity backward pass.
//
// Bits must be from 1 to 8.
type BitDepth struct {
	Bits int
}

// defaultBitDepthBits is the bit depth of a "bit-depth" spec that gives none: 1 bit, Xu et
// al.'s choice for MNIST, where it keeps the accuracy of a clean classifier.
const defaultBitDepthBits = 1

// Name implements Transform.
func (BitDepth) Name() string { return "bit-depth" }

func (b BitDepth) check() error {
	if b.Bits < 1 || b.Bits > 8 {
		return fmt.Errorf("bit-depth: bits %d: want 1 to 8", b.Bits)
	}
	return nil
}

// Apply implements Transform; dst and src may be the same slice.
func (b BitDepth) Apply(dst, src []float64, c, h, w int) error {
	if err := b.check(); err != nil {
		return err
	}
	if len(src) != c*h*w || len(dst) != c*h*w {
		return fmt.Errorf("bit-depth: %d and %d values for a %d×%d×%d image", len(dst), len(src), c, h, w)
	}
	levels := float64(int(1)<<b.Bits - 1)
	for i, v := range src {
		if math.IsNaN(v) {
			return fmt.Errorf("bit-depth: NaN input at value %d", i)
		}
		dst[i] = math.Round(min(max(v, 0), 1)*levels) / levels
	}
	return nil
}

// buildBitDepth makes a "bit-depth" wrapper: {"bits": 1..8 (default 1)}.
func buildBitDepth(l *Loader, s Spec) (Model, error) {
	p := struct {
		Bits int `json:"bits"`
	}{Bits: defaultBitDepthBits}
	if err := l.Params(s, &p); err != nil {
		return nil, err
	}
	b := BitDepth{Bits: p.Bits}
	if err := b.check(); err != nil {
		return nil, err
	}
	return buildTransformed(l, s, b)
}
