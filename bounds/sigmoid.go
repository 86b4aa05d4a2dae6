package bounds

import "math"

// sigmoidCurve is σ(x) = 1/(1 + e^{−x}), relaxed as an S-curve (sshaped.go).
type sigmoidCurve struct{}

func (sigmoidCurve) name() string { return "Sigmoid" }

// f evaluates σ as nets.Sigmoid does (never e^{|x|}), so that without SoundFP the
// IBP box of a Sigmoid node holds the network's own values at the box's corners.
func (sigmoidCurve) f(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// df is σ' = σ·(1 − σ), in the form that keeps its precision in both tails.
func (c sigmoidCurve) df(x float64) float64 {
	s := c.f(-math.Abs(x)) // σ(−|x|) ≤ 1/2, computed without cancellation
	return s * (1 - s)
}

var _ sCurve = sigmoidCurve{}
