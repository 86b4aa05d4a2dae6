package bounds_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// TestSplitDomainsSound: on random ReLU nets, a branch-and-bound domain fixes
// some unstable neurons of both hidden layers active or inactive (Clamp with
// Splits). CROWN and α-CROWN (with β) bounds under the domain's clamps must hold
// at every sampled point of the box that lies in the domain (its pre-activations
// have the split signs), and at the best point PGD finds there. α-CROWN's
// bound, which optimises β, must not be below CROWN's, and is strictly higher
// on some domains (β makes the splits count).
func TestSplitDomainsSound(t *testing.T) {
	improved := 0
	for seed := uint64(1); seed <= 8; seed++ {
		rng := rand.New(rand.NewPCG(seed, 77))
		g, err := randomNet(rng, "Relu", 3, 8, 8, 3)
		if err != nil {
			t.Fatal(err)
		}
		lo := []float64{-1, -0.5, -1}
		hi := []float64{1, 1, 0.5}
		in := bounds.Box{Lo: nets.FromData(lo, 1, 3), Hi: nets.FromData(hi, 1, 3)}
		spec := bounds.Spec{C: [][]float64{{1, -1, 0}, {0, 1, -1}}, D: []float64{0, 0}}
		root, err := bounds.CROWN(g, in, []bounds.Spec{spec}, bounds.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// Dense points of the box, with their pre-activations.
		pts := nets.NewTensor(20000, 3)
		for i := range pts.Data {
			j := i % 3
			pts.Data[i] = lo[j] + (hi[j]-lo[j])*rng.Float64()
		}
		vals, err := g.Forward(map[string]*nets.Tensor{"x": pts})
		if err != nil {
			t.Fatal(err)
		}
		for trial := 0; trial < 6; trial++ {
			opt := bounds.Options{Clamp: map[string]bounds.Box{}, Splits: map[string][]int8{}}
			for _, z := range []string{"z1", "z2"} {
				box := root.Nodes[z]
				c := bounds.Box{Lo: box.Lo.Clone(), Hi: box.Hi.Clone()}
				sp := make([]int8, box.Lo.Len())
				for j := range sp {
					if c.Lo.Data[j] < 0 && c.Hi.Data[j] > 0 && rng.IntN(3) == 0 {
						if rng.IntN(2) == 0 {
							sp[j], c.Lo.Data[j] = 1, 0
						} else {
							sp[j], c.Hi.Data[j] = -1, 0
						}
					}
				}
				opt.Clamp[z], opt.Splits[z] = c, sp
			}
			crown, err := bounds.CROWN(g, in, []bounds.Spec{spec}, opt)
			if err != nil {
				t.Fatal(err)
			}
			alpha, err := bounds.AlphaCROWN(g, in, []bounds.Spec{spec}, bounds.AlphaOptions{Options: opt, Iterations: 30})
			if err != nil {
				t.Fatal(err)
			}
			// The exact minimum over the sampled points of the domain.
			inDomain := 0
			least := []float64{math.Inf(1), math.Inf(1)}
			for p := 0; p < pts.Shape[0]; p++ {
				ok := true
				for _, z := range []string{"z1", "z2"} {
					zv := vals[z].Data[p*8 : (p+1)*8]
					for j, s := range opt.Splits[z] {
						if float64(s)*zv[j] < 0 {
							ok = false
						}
					}
				}
				if !ok {
					continue
				}
				inDomain++
				sv := specValues(spec, vals["y"].Data[p*3:(p+1)*3])
				for r, v := range sv {
					least[r] = min(least[r], v)
				}
			}
			empty := false
			for _, z := range []string{"z1", "z2"} {
				b := alpha.Nodes[z]
				for j := range b.Lo.Data {
					if b.Lo.Data[j] > b.Hi.Data[j] {
						empty = true
					}
				}
			}
			if empty {
				if inDomain > 0 {
					t.Errorf("seed %d trial %d: bounds cross, yet %d sampled points lie in the domain: UNSOUND", seed, trial, inDomain)
				}
				continue
			}
			for r := range spec.C {
				if crown.Lower[0][r] > least[r]+1e-9 || alpha.Lower[0][r] > least[r]+1e-9 {
					t.Errorf("seed %d trial %d row %d: bounds crown %v alpha %v above a value %v reached in the domain (%d points): UNSOUND",
						seed, trial, r, crown.Lower[0][r], alpha.Lower[0][r], least[r], inDomain)
				}
				if alpha.Lower[0][r] < crown.Lower[0][r]-1e-12 {
					t.Errorf("seed %d trial %d row %d: α/β-CROWN %v below CROWN %v", seed, trial, r, alpha.Lower[0][r], crown.Lower[0][r])
				}
				if alpha.Lower[0][r] > crown.Lower[0][r]+1e-6 {
					improved++
				}
			}
		}
	}
	t.Logf("α/β-CROWN above CROWN on %d rows", improved)
	if improved == 0 {
		t.Error("β never improved a bound")
	}
}

// TestSplitsOnlyBeta: the effect of β alone. The net
//
//	z = (x₁ − x₂, x₂ + 2, x₁ + 2), y = relu(z₂) − relu(z₃) = x₂ − x₁
//
// over x ∈ [−1, 1]², in the domain where z₁ is split active (x₁ ≥ x₂), with
// the spec row −y = x₁ − x₂: its minimum on the domain is 0, on the box −2.
// Clamping z₁ ≥ 0 changes no bound that −y depends on (z₂, z₃ are stable), so
// CROWN and IBP stay at −2; β-CROWN adds −β·z₁ and reaches 0 at β = 1.
func TestSplitsOnlyBeta(t *testing.T) {
	g, err := denseNet([][][]float64{{{1, -1}, {0, 1}, {1, 0}}, {{0, 1, -1}}}, [][]float64{{0, 2, 2}, {0}}, "Relu")
	if err != nil {
		t.Fatal(err)
	}
	in := bounds.Box{Lo: nets.FromData([]float64{-1, -1}, 1, 2), Hi: nets.FromData([]float64{1, 1}, 1, 2)}
	spec := bounds.Spec{C: [][]float64{{-1}}, D: []float64{0}}
	clamp := bounds.Box{Lo: nets.FromData([]float64{0, 1, 1}, 1, 3), Hi: nets.FromData([]float64{2, 3, 3}, 1, 3)}
	opt := bounds.Options{Clamp: map[string]bounds.Box{"z1": clamp}, Splits: map[string][]int8{"z1": {1, 0, 0}}}
	crown, err := bounds.CROWN(g, in, []bounds.Spec{spec}, opt)
	if err != nil {
		t.Fatal(err)
	}
	alpha, err := bounds.AlphaCROWN(g, in, []bounds.Spec{spec}, bounds.AlphaOptions{Options: opt, Iterations: 100, LR: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("crown %v, β-crown %v, true minimum 0", crown.Lower[0][0], alpha.Lower[0][0])
	if math.Abs(crown.Lower[0][0]-(-2)) > 1e-12 {
		t.Errorf("CROWN with clamps only: %v, want −2 (the minimum of x₁ − x₂ over the box)", crown.Lower[0][0])
	}
	if alpha.Lower[0][0] > 1e-12 {
		t.Errorf("β-CROWN %v above the true minimum 0: UNSOUND", alpha.Lower[0][0])
	}
	if alpha.Lower[0][0] < -0.05 {
		t.Errorf("β-CROWN %v, want close to the true minimum 0", alpha.Lower[0][0])
	}
}

// TestIntermediateAlphaSound: with Options.IntermediateAlpha, the
// pre-activation boxes of random ReLU nets still contain every sampled point's
// pre-activations and the final bounds still hold at every sampled point. The
// boxes are tighter than CROWN's far more often than looser: not never, as
// CROWN is not monotone in its intermediate bounds (tighter bounds of one
// layer can flip CROWN-Ada's slope choice and loosen the next layer's).
func TestIntermediateAlphaSound(t *testing.T) {
	tighter, looser := 0, 0
	for seed := uint64(1); seed <= 6; seed++ {
		rng := rand.New(rand.NewPCG(seed, 78))
		g, err := randomNet(rng, "Relu", 4, 10, 10, 10, 3)
		if err != nil {
			t.Fatal(err)
		}
		lo := []float64{-1, -0.5, -1, 0}
		hi := []float64{1, 1, 0.5, 0.6}
		in := bounds.Box{Lo: nets.FromData(lo, 1, 4), Hi: nets.FromData(hi, 1, 4)}
		spec := bounds.Spec{C: [][]float64{{1, -1, 0}, {0, 1, -1}}, D: []float64{0, 0}}
		plain, err := bounds.CROWN(g, in, []bounds.Spec{spec}, bounds.Options{})
		if err != nil {
			t.Fatal(err)
		}
		opt := bounds.Options{IntermediateAlpha: 20}
		opt2, err := bounds.AlphaCROWN(g, in, []bounds.Spec{spec}, bounds.AlphaOptions{Options: opt})
		if err != nil {
			t.Fatal(err)
		}
		pts := nets.NewTensor(5000, 4)
		for i := range pts.Data {
			j := i % 4
			pts.Data[i] = lo[j] + (hi[j]-lo[j])*rng.Float64()
		}
		vals, err := g.Forward(map[string]*nets.Tensor{"x": pts})
		if err != nil {
			t.Fatal(err)
		}
		for _, z := range []string{"z1", "z2", "z3"} {
			a, b := plain.Nodes[z], opt2.Nodes[z]
			for j := range a.Lo.Data {
				if b.Lo.Data[j] < a.Lo.Data[j]-1e-9 || b.Hi.Data[j] > a.Hi.Data[j]+1e-9 {
					looser++
				}
				if b.Lo.Data[j] > a.Lo.Data[j]+1e-9 || b.Hi.Data[j] < a.Hi.Data[j]-1e-9 {
					tighter++
				}
				for p := 0; p < pts.Shape[0]; p++ {
					v := vals[z].Data[p*10+j]
					if v < b.Lo.Data[j]-1e-9 || v > b.Hi.Data[j]+1e-9 {
						t.Fatalf("seed %d %s[%d]: value %v outside [%v, %v]: UNSOUND", seed, z, j, v, b.Lo.Data[j], b.Hi.Data[j])
					}
				}
			}
		}
		for p := 0; p < pts.Shape[0]; p++ {
			for r, v := range specValues(spec, vals["y"].Data[p*3:(p+1)*3]) {
				if v < opt2.Lower[0][r]-1e-9 {
					t.Fatalf("seed %d row %d: value %v below the bound %v: UNSOUND", seed, r, v, opt2.Lower[0][r])
				}
			}
		}
	}
	t.Logf("intermediate bounds: %d tighter, %d looser than CROWN's", tighter, looser)
	if tighter < 10*looser || tighter == 0 {
		t.Errorf("IntermediateAlpha: %d bounds tighter, %d looser", tighter, looser)
	}
}
