package bounds

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// cancelNet is y = (x + 1) − x through two Gemm layers, h = [x + 1, x], y = h₁ − h₂.
// At x = 2⁵³, float64 rounds x + 1 to x (ties to even): the network computes y = 0
// while the real value is 1.
func cancelNet() *nets.Graph {
	gemm := nets.Gemm{TransB: true, Alpha: 1, Beta: 1}
	return &nets.Graph{
		Inputs:  []nets.ValueInfo{{Name: "x", Shape: []int{-1, 1}}},
		Outputs: []nets.ValueInfo{{Name: "y"}},
		Params: map[string]*nets.Tensor{
			"W1": nets.FromData([]float64{1, 1}, 2, 1), "b1": nets.FromData([]float64{1, 0}, 2),
			"W2": nets.FromData([]float64{1, -1}, 1, 2), "b2": nets.FromData([]float64{0}, 1),
		},
		Nodes: []*nets.Node{
			{Name: "h", Op: gemm, Inputs: []string{"x", "W1", "b1"}, Outputs: []string{"h"}},
			{Name: "y", Op: gemm, Inputs: []string{"h", "W2", "b2"}, Outputs: []string{"y"}},
		},
	}
}

// TestSoundFPCancellation: without SoundFP, CROWN's back-substitution computes the
// real y ≥ 1 exactly, which the network's float evaluation (0) violates, and IBP's
// box [0, 0] misses the real value 1. With SoundFP both bounds hold for both.
func TestSoundFPCancellation(t *testing.T) {
	g := cancelNet()
	x := nets.FromData([]float64{0x1p53}, 1, 1)
	box := Box{Lo: x, Hi: x}
	vals, err := g.Forward(map[string]*nets.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	if y := vals["y"].Data[0]; y != 0 {
		t.Fatalf("the network computes y = %v, want 0 (the rounding this test is about)", y)
	}
	spec := []Spec{{C: [][]float64{{1}, {-1}}, D: []float64{0, 0}}}
	plain, err := CROWN(g, box, spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Lower[0][0] != 1 {
		t.Errorf("plain CROWN: y ≥ %v, want exactly 1 (the real value)", plain.Lower[0][0])
	}
	ibp, err := IBP(g, box, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b := ibp["y"]; b.Hi.Data[0] >= 1 {
		t.Errorf("plain IBP: y ∈ [%v, %v]; expected it to miss the real value 1", b.Lo.Data[0], b.Hi.Data[0])
	}
	sound, err := CROWN(g, box, spec, Options{SoundFP: true})
	if err != nil {
		t.Fatal(err)
	}
	if lo, negHi := sound.Lower[0][0], sound.Lower[0][1]; lo > 0 || -negHi < 1 {
		t.Errorf("SoundFP CROWN: y ∈ [%v, %v], must contain the float value 0 and the real value 1", lo, -negHi)
	}
	sibp, err := IBP(g, box, Options{SoundFP: true})
	if err != nil {
		t.Fatal(err)
	}
	if b := sibp["y"]; b.Lo.Data[0] > 0 || b.Hi.Data[0] < 1 {
		t.Errorf("SoundFP IBP: y ∈ [%v, %v], must contain 0 and 1", b.Lo.Data[0], b.Hi.Data[0])
	}
	t.Logf("y: float 0, real 1; SoundFP CROWN [%v, %v], SoundFP IBP [%v, %v]", sound.Lower[0][0], -sound.Lower[0][1], sibp["y"].Lo.Data[0], sibp["y"].Hi.Data[0])
}

// TestSoundFPWidening: on the random nets, SoundFP only moves bounds outward, and
// by a rounding-sized amount (relative 1e-9 of the magnitudes involved).
func TestSoundFPWidening(t *testing.T) {
	for _, tn := range testNets(11) {
		if !tn.crown {
			continue
		}
		r := rand.New(rand.NewPCG(11, 12))
		box, _ := randomBoxes(r, 4, tn.in)
		y, err := IBP(tn.g, box, Options{})
		if err != nil {
			t.Fatal(err)
		}
		out := y[tn.g.Outputs[0].Name]
		specs := randomSpecs(r, 4, 3, out.Lo.Len()/out.Lo.Batch())
		for _, method := range []string{"ibp", "crown"} {
			run := func(opt Options) *Result {
				var res *Result
				var err error
				if method == "ibp" {
					res, err = SpecIBP(tn.g, box, specs, opt)
				} else {
					res, err = CROWN(tn.g, box, specs, opt)
				}
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			plain, sound := run(Options{}), run(Options{SoundFP: true})
			for i := range specs {
				for q := range specs[i].C {
					p, s := plain.Lower[i][q], sound.Lower[i][q]
					if s > p || p-s > 1e-9*(1+math.Abs(p)) {
						t.Errorf("%s %s sample %d row %d: SoundFP %v, plain %v", tn.name, method, i, q, s, p)
					}
				}
			}
			for name, b := range plain.Nodes {
				sb := sound.Nodes[name]
				for j, lo := range b.Lo.Data {
					hi, slo, shi := b.Hi.Data[j], sb.Lo.Data[j], sb.Hi.Data[j]
					// CROWN's refined boxes may differ by rounding in either direction
					// (the intersection picks different sides); IBP's only widen.
					tol := 1e-9 * (1 + math.Abs(lo) + math.Abs(hi))
					if method == "ibp" && (slo > lo || shi < hi) || math.Abs(slo-lo) > tol || math.Abs(shi-hi) > tol {
						t.Errorf("%s %s value %q element %d: SoundFP [%v, %v], plain [%v, %v]", tn.name, method, name, j, slo, shi, lo, hi)
						break
					}
				}
			}
		}
	}
}

// TestErrorModel checks the helpers of fp.go.
func TestErrorModel(t *testing.T) {
	if g := gamma(1); g < unitRoundoff/(1-unitRoundoff) || g > 4*unitRoundoff {
		t.Errorf("gamma(1) = %v", g)
	}
	for n := 1; n < 1e7; n *= 10 {
		exact := float64(n) * unitRoundoff / (1 - float64(n)*unitRoundoff)
		if g := gamma(n); g < exact || g > 2*exact+4*unitRoundoff {
			t.Errorf("gamma(%d) = %v, γ_n = %v", n, g, exact)
		}
	}
	for _, x := range []float64{0, 1, -1, 1e-300, -1e300, 0x1p-1074} {
		if up(x) <= x || down(x) >= x {
			t.Errorf("up/down(%v) = %v, %v", x, up(x), down(x))
		}
		if u := up(x); u > 0 && u < tiny || math.Abs(u) < tiny && u != 0 {
			t.Errorf("up(%v) = %v is subnormal or below tiny", x, u)
		}
	}
	// sumUp bounds the exact sum of terms whose float sum rounds low.
	terms := []float64{1, 0x1p-53, 0x1p-53, 0x1p-53, 0x1p-53}
	s := 0.0
	for _, v := range terms {
		s += v // each 2⁻⁵³ is lost: s = 1
	}
	if exact := 1 + 4*0x1p-53; sumUp(s, len(terms)) < exact {
		t.Errorf("sumUp(%v, 5) = %v < exact sum %v", s, sumUp(s, len(terms)), exact)
	}
}

// TestSoundFPStress: inputs of magnitude 10⁶ in boxes of width ≤ 10⁻⁶, so that the
// bounds are tight and the rounding of the network's evaluation (~10⁻¹⁰ per value)
// is far larger than the boxes' slack: with SoundFP every value at the sampled
// points still lies in its IBP and CROWN box and every spec value is above its
// bounds, with no tolerance. Without SoundFP the same check fails on some nets
// (logged, not asserted).
func TestSoundFPStress(t *testing.T) {
	const n, p = 4, 40
	plainFails := 0
	for _, tn := range testNets(13) {
		if tn.name == "tanh-wide" || tn.name == "mlp-mixed" || tn.name == "cnn-strided" || tn.name == "cnn-dilated-avg" {
			continue // saturated smooth activations: nothing is tight
		}
		r := rand.New(rand.NewPCG(13, 14))
		box, _ := randomBoxes(r, n, tn.in)
		for i := range box.Lo.Data {
			c := 1e6 * (box.Lo.Data[i] + box.Hi.Data[i]) / 2
			w := 1e-6 * (box.Hi.Data[i] - box.Lo.Data[i])
			box.Lo.Data[i], box.Hi.Data[i] = c-w, c+w
		}
		pts := samplePoints(r, box, p)
		vals, err := tn.g.Forward(map[string]*nets.Tensor{"x": pts})
		if err != nil {
			t.Fatal(err)
		}
		y := vals[tn.g.Outputs[0].Name]
		specs := randomSpecs(r, n, 3, y.Len()/y.Batch())
		sv := specValues(specs, y, p)
		for _, sound := range []bool{true, false} {
			opt := Options{SoundFP: sound}
			var sub reporter = t
			plain := &counter{}
			if !sound {
				sub = plain // count failures without reporting them
			}
			boxes, err := IBP(tn.g, box, opt)
			if err != nil {
				t.Fatal(err)
			}
			checkBoxesStrict(sub, tn.name+" IBP", boxes, vals, n, p)
			ibp, err := SpecIBP(tn.g, box, specs, opt)
			if err != nil {
				t.Fatal(err)
			}
			checkLowerStrict(sub, tn.name+" SpecIBP", ibp.Lower, sv)
			if tn.crown {
				crown, err := CROWN(tn.g, box, specs, opt)
				if err != nil {
					t.Fatal(err)
				}
				checkBoxesStrict(sub, tn.name+" CROWN", crown.Nodes, vals, n, p)
				checkLowerStrict(sub, tn.name+" CROWN", crown.Lower, sv)
			}
			if plain.errors > 0 {
				plainFails++
			}
		}
	}
	t.Logf("without SoundFP, %d nets had a float evaluation outside a bound", plainFails)
}

// checkBoxesStrict is checkBoxes with no tolerance.
func checkBoxesStrict(t reporter, what string, boxes map[string]Box, vals nets.Values, n, p int) {
	checkBoxes(t, what, boxes, vals, n, p, true)
}

// checkLowerStrict is checkLower with no tolerance.
func checkLowerStrict(t reporter, what string, lower [][]float64, vals [][][]float64) {
	checkLower(t, what, lower, vals, true)
}
