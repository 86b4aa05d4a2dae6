package bounds_test

import (
	"math"
	"testing"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// netA is the 2-2-1 ReLU net y = relu(x1 + x2 + 0.5) − relu(x1 − x2 + 0.25),
// whose bounds TestHandIBP and TestHandBounds work out by hand.
func netA(t *testing.T) *nets.Graph {
	t.Helper()
	g, err := denseNet(
		[][][]float64{{{1, 1}, {1, -1}}, {{1, -1}}},
		[][]float64{{0.5, 0.25}, {0}},
		"Relu")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// unitBox is the input box [0,1]² for a batch of one.
func unitBox() bounds.Box {
	return bounds.Box{Lo: nets.FromData([]float64{0, 0}, 1, 2), Hi: nets.FromData([]float64{1, 1}, 1, 2)}
}

// TestHandIBP: net A over x ∈ [0,1]²,
//
//	z1 = x1 + x2 + 0.5   ∈ [0.5, 2.5]     (always active)
//	z2 = x1 − x2 + 0.25  ∈ [−0.75, 1.25]  (unstable)
//	h1 = relu(z1)        ∈ [0.5, 2.5]
//	h2 = relu(z2)        ∈ [0, 1.25]
//	y  = h1 − h2         ∈ [0.5 − 1.25, 2.5 − 0] = [−0.75, 2.5].
//
// Every number is a short binary fraction, so float64 computes them exactly in any
// order; with SoundFP the bounds may only move outward, by a rounding-sized amount.
func TestHandIBP(t *testing.T) {
	g := netA(t)
	want := map[string][2]float64{
		"x":  {0, 1}, // both coordinates
		"z1": {0.5, 2.5},
		"h1": {0.5, 2.5},
		"y":  {-0.75, 2.5},
	}
	// The second neuron of the hidden layer.
	want2 := map[string][2]float64{"z1": {-0.75, 1.25}, "h1": {0, 1.25}}
	for _, sound := range []bool{false, true} {
		boxes, err := bounds.IBP(g, unitBox(), bounds.Options{SoundFP: sound})
		if err != nil {
			t.Fatal(err)
		}
		check := func(name string, i int, w [2]float64) {
			b, ok := boxes[name]
			if !ok {
				t.Errorf("sound %v: no box for %q (have %d values)", sound, name, len(boxes))
				return
			}
			lo, hi := b.Lo.Data[i], b.Hi.Data[i]
			if sound {
				if lo > w[0] || hi < w[1] || lo < w[0]-1e-12 || hi > w[1]+1e-12 {
					t.Errorf("SoundFP: %s[%d] ∈ [%v, %v], want a hair around [%v, %v]", name, i, lo, hi, w[0], w[1])
				}
			} else if lo != w[0] || hi != w[1] {
				t.Errorf("%s[%d] ∈ [%v, %v], want exactly [%v, %v]", name, i, lo, hi, w[0], w[1])
			}
		}
		for name, w := range want {
			check(name, 0, w)
		}
		for name, w := range want2 {
			check(name, 1, w)
		}
	}
}

// TestHandBounds: the spec rows +y (lower bound of y) and −y (upper bound of y)
// over x ∈ [0,1]² for net A.
//
// Exact: y = x1 + x2 + 0.5 − relu(x1 − x2 + 0.25). Where x1 − x2 + 0.25 ≤ 0,
// y = x1 + x2 + 0.5 ≥ 0.75; elsewhere y = 2·x2 + 0.25, least at x2 = 0: min y =
// 0.25. The max is at (1,1): y = 2.5 − 0.25 = 2.25, so min(−y) = −2.25.
//
// IBP (spec folded into the last layer changes nothing for one output):
// +y ≥ 0.5 − 1.25 = −0.75; −y ≥ −2.5 + 0 = −2.5.
//
// CROWN, row +y = h1 − h2: h1 = z1 exactly (active); h2 has coefficient −1, so its
// upper relaxation is used, the chord h2 ≤ u/(u−l)·(z2 − l) = 0.625·(z2 + 0.75):
//
//	y ≥ z1 − 0.625·z2 − 0.46875 = 0.375·x1 + 1.625·x2 − 0.125 ≥ −0.125 (at x = 0).
//
// CROWN, row −y = −h1 + h2: h2 has coefficient +1, so its lower relaxation
// h2 ≥ α·z2 is used, CROWN's adaptive slope being α = 1 since u = 1.25 > −l = 0.75:
//
//	−y ≥ −z1 + z2 = −2·x2 − 0.25 ≥ −2.25 (at x2 = 1): exact.
//
// α-CROWN: for −y the bound is (α−1)·x1 − (1+α)·x2 − 0.5 + 0.25·α minimised at
// x = (1,1): −2.5 + 0.25·α, largest at α = 1, CROWN's choice; +y has no lower
// relaxation to optimise. So α-CROWN equals CROWN: [−0.125, −2.25].
func TestHandBounds(t *testing.T) {
	g := netA(t)
	spec := bounds.Spec{C: [][]float64{{1}, {-1}}, D: []float64{0, 0}}
	exact := []float64{0.25, -2.25}
	tests := []struct {
		name string
		run  func(opt bounds.Options) (*bounds.Result, error)
		want []float64
	}{
		{"SpecIBP", func(opt bounds.Options) (*bounds.Result, error) {
			return bounds.SpecIBP(g, unitBox(), []bounds.Spec{spec}, opt)
		}, []float64{-0.75, -2.5}},
		{"CROWN", func(opt bounds.Options) (*bounds.Result, error) {
			return bounds.CROWN(g, unitBox(), []bounds.Spec{spec}, opt)
		}, []float64{-0.125, -2.25}},
		{"AlphaCROWN", func(opt bounds.Options) (*bounds.Result, error) {
			return bounds.AlphaCROWN(g, unitBox(), []bounds.Spec{spec}, bounds.AlphaOptions{Options: opt, Iterations: 20, LR: 0.1})
		}, []float64{-0.125, -2.25}},
	}
	for _, tc := range tests {
		for _, sound := range []bool{false, true} {
			res, err := tc.run(bounds.Options{SoundFP: sound})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if len(res.Lower) != 1 || len(res.Lower[0]) != 2 {
				t.Fatalf("%s: Lower has shape %d×?, want 1×2: %v", tc.name, len(res.Lower), res.Lower)
			}
			for r, got := range res.Lower[0] {
				want := tc.want[r]
				if got > exact[r] {
					t.Errorf("%s sound=%v row %d: bound %v above the exact minimum %v: UNSOUND", tc.name, sound, r, got, exact[r])
				}
				if sound {
					if got > want || got < want-1e-12 {
						t.Errorf("%s SoundFP row %d: %v, want a hair below %v", tc.name, r, got, want)
					}
				} else if got != want {
					t.Errorf("%s row %d: %v, want exactly %v", tc.name, r, got, want)
				}
			}
		}
	}
}

// netB is the 2-2-1 net where α-CROWN beats CROWN (see TestHandAlpha).
func netB(t *testing.T) *nets.Graph {
	t.Helper()
	g, err := denseNet(
		[][][]float64{{{1, 1}, {1, 1}}, {{1, -1}}},
		[][]float64{{-0.5, -1.5}, {0}},
		"Relu")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestHandAlpha: net B over x ∈ [0,1]², s = x1 + x2 ∈ [0,2]:
//
//	z1 = s − 0.5 ∈ [−0.5, 1.5],  z2 = s − 1.5 ∈ [−1.5, 0.5]   (both unstable)
//	y  = relu(z1) − relu(z2) = clip(s − 0.5, 0, 1):  min y = 0.
//
// IBP: h1 ∈ [0, 1.5], h2 ∈ [0, 0.5], so y ≥ −0.5.
// CROWN: h2 ≤ 0.5/2·(z2 + 1.5) = 0.25·s (the chord); h1 ≥ α·z1 with the adaptive
// α = 1 (u = 1.5 > −l = 0.5): y ≥ s − 0.5 − 0.25·s = 0.75·s − 0.5 ≥ −0.5 (s = 0).
// α-CROWN: y ≥ α(s − 0.5) − 0.25·s, whose minimum over s ∈ [0,2] is
// min(−0.5·α, 1.5·α − 0.5), largest at α = 1/4: −0.125.
//
// Gradient ascent on α need not land on 1/4 exactly; it must improve on CROWN and
// never pass the optimum: −0.5 < α-CROWN ≤ −0.125. We ask for ≥ −0.3 (α within
// about 0.13 of the optimum after 50 steps).
func TestHandAlpha(t *testing.T) {
	g := netB(t)
	spec := []bounds.Spec{{C: [][]float64{{1}}, D: []float64{0}}}
	ibp, err := bounds.SpecIBP(g, unitBox(), spec, bounds.Options{})
	if err != nil {
		t.Fatal(err)
	}
	crown, err := bounds.CROWN(g, unitBox(), spec, bounds.Options{})
	if err != nil {
		t.Fatal(err)
	}
	alpha, err := bounds.AlphaCROWN(g, unitBox(), spec, bounds.AlphaOptions{Iterations: 50, LR: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	if got := ibp.Lower[0][0]; got != -0.5 {
		t.Errorf("IBP: %v, want -0.5", got)
	}
	if got := crown.Lower[0][0]; got != -0.5 {
		t.Errorf("CROWN: %v, want -0.5", got)
	}
	if got := alpha.Lower[0][0]; got > -0.125+1e-12 || got < -0.3 || math.IsNaN(got) {
		t.Errorf("α-CROWN: %v, want in [-0.3, -0.125]", got)
	}
}
