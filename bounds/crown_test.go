package bounds

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// TestLinearExact: on networks without nonlinearities (Gemm, Sub/Div
// normalisation, MatMul, and in the second an Add of two branches) the minimum of
// a linear spec over a box is at a corner. CROWN finds it (up to rounding) on
// both; SpecIBP, whose folding runs back through a chain of linear ops but stops
// at a node with two bounded inputs, on the chain only.
func TestLinearExact(t *testing.T) {
	for _, branch := range []bool{false, true} {
		r := rand.New(rand.NewPCG(21, 22))
		b := newBuilder(r, 3)
		h := b.node(nets.Div{}, b.node(nets.Sub{}, "x", b.param(1, 3)), b.constant(nets.FromData([]float64{2, 0.5, 4}, 3)))
		h1 := b.dense(h, 3, 5)
		if branch {
			h1 = b.node(nets.Add{}, h1, b.node(nets.MatMul{}, h, b.param(1, 3, 5)))
		} else {
			h1 = b.node(nets.MatMul{}, h1, b.param(1, 5, 5))
		}
		y := b.dense(h1, 5, 2)
		g := b.finish(y)
		box, _ := randomBoxes(r, 3, []int{3})
		specs := randomSpecs(r, 3, 2, 2)
		corners := nets.NewTensor(3*8, 3)
		for i := 0; i < 3; i++ {
			for c := 0; c < 8; c++ {
				for j := 0; j < 3; j++ {
					v := box.Lo.Data[i*3+j]
					if c>>j&1 == 1 {
						v = box.Hi.Data[i*3+j]
					}
					corners.Data[(i*8+c)*3+j] = v
				}
			}
		}
		vals, err := g.Forward(map[string]*nets.Tensor{"x": corners})
		if err != nil {
			t.Fatal(err)
		}
		sv := specValues(specs, vals[y], 8)
		crown, err := CROWN(g, box, specs, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ibp, err := SpecIBP(g, box, specs, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range specs {
			for q := range specs[i].C {
				exact := math.Inf(1)
				for _, pt := range sv[i] {
					exact = min(exact, pt[q])
				}
				tol := 1e-12 * (1 + math.Abs(exact))
				if c := crown.Lower[i][q]; math.Abs(c-exact) > tol {
					t.Errorf("branch=%v CROWN sample %d row %d: %v, exact minimum %v", branch, i, q, c, exact)
				}
				if l := ibp.Lower[i][q]; l > exact+tol || (!branch && math.Abs(l-exact) > tol) {
					t.Errorf("branch=%v SpecIBP sample %d row %d: %v, exact minimum %v", branch, i, q, l, exact)
				}
			}
		}
	}
}

// TestBatchOfOne: with a batch of one the whole tensor is the sample, so models
// exported with a fixed batch of 1 that reshape it away (MatMul(W, X) with X
// [K, 1], as in VNN-COMP) are bounded soundly.
func TestBatchOfOne(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	b := newBuilder(r, 4)
	b.g.Inputs[0].Shape = []int{1, 4}
	h := b.node(nets.Reshape{}, "x", b.constant(nets.FromData([]float64{4, 1}, 2)))
	h = b.node(nets.MatMul{}, b.param(0.8, 6, 4), h) // [6, 1]
	h = b.node(nets.Add{}, h, b.param(0.3, 6, 1))
	h = b.node(nets.Relu{}, h)
	h = b.node(nets.Transpose{}, h) // [1, 6]
	h = b.node(nets.Relu{}, b.dense(h, 6, 5))
	y := b.dense(h, 5, 3)
	g := b.finish(y)
	for trial := 0; trial < 5; trial++ {
		box, _ := randomBoxes(r, 1, []int{4})
		pts := samplePoints(r, box, 50)
		specs := randomSpecs(r, 1, 3, 3)
		var sv [][][]float64
		var all *nets.Tensor
		// The graph only takes one sample at a time.
		for q := 0; q < 50; q++ {
			vals, err := g.Forward(map[string]*nets.Tensor{"x": pts.Row(q)})
			if err != nil {
				t.Fatal(err)
			}
			if all == nil {
				all = nets.NewTensor(50, 3)
			}
			copy(all.Data[q*3:], vals[y].Data)
		}
		sv = specValues(specs, all, 50)
		for _, sound := range []bool{false, true} {
			crown, err := CROWN(g, box, specs, Options{SoundFP: sound})
			if err != nil {
				t.Fatal(err)
			}
			alpha, err := AlphaCROWN(g, box, specs, AlphaOptions{Options: Options{SoundFP: sound}})
			if err != nil {
				t.Fatal(err)
			}
			checkLower(t, "batch of one CROWN", crown.Lower, sv, sound)
			checkLower(t, "batch of one alpha-CROWN", alpha.Lower, sv, sound)
		}
	}
}
