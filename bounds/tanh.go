package bounds

import "math"

// tanhCurve is tanh, relaxed as an S-curve (sshaped.go).
type tanhCurve struct{}

func (tanhCurve) name() string        { return "Tanh" }
func (tanhCurve) f(x float64) float64 { return math.Tanh(x) }

// df is tanh' = 1 − tanh² = 1/cosh², accurate in the tails where 1 − tanh² cancels.
func (tanhCurve) df(x float64) float64 {
	if math.Abs(x) > 0.5 {
		c := math.Cosh(x)
		return 1 / (c * c)
	}
	t := math.Tanh(x)
	return 1 - t*t
}

var _ sCurve = tanhCurve{}
