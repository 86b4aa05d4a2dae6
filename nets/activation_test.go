package nets

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestSigmoidTanhValues(t *testing.T) {
	x := FromData([]float64{0, 1, -1, 800, -720, 20}, 6)
	ys, err := Sigmoid{}.Forward([]*Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	e := math.E
	want := []float64{0.5, 1 / (1 + 1/e), 1 / (1 + e), 1, math.Exp(-720), 1 / (1 + math.Exp(-20))}
	assertClose(t, "Sigmoid", ys[0], FromData(want, 6), 1e-15)
	if ys[0].Data[4] != math.Exp(-720) || ys[0].HasNaN() {
		t.Errorf("Sigmoid(-720) = %v, want e^-720 = %v", ys[0].Data[4], math.Exp(-720))
	}
	yt, err := Tanh{}.Forward([]*Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	wantT := []float64{0, (e*e - 1) / (e*e + 1), -(e*e - 1) / (e*e + 1), 1, -1, 1}
	assertClose(t, "Tanh", yt[0], FromData(wantT, 6), 1e-15)
}

func TestUnaryGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	for _, op := range []Op{Sigmoid{}, Tanh{}} {
		x := randTensor(r, 3, 4)
		x.Data[0] = 6 // the flat tail
		checkOpGrad(t, op, []*Tensor{x}, []bool{true})
		// Without the forward output, Backward recomputes it.
		g := randTensor(r, 3, 4)
		out, _ := op.Forward([]*Tensor{x})
		with, err := op.Backward([]*Tensor{x}, out, []*Tensor{g}, []bool{true})
		if err != nil {
			t.Fatal(err)
		}
		without, err := op.Backward([]*Tensor{x}, nil, []*Tensor{g}, []bool{true})
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, op.OpType()+" backward without out", without[0], with[0], 0)
	}
}

// naiveSoftmax normalises exp(x) over the elements whose multi-index differs from
// position k's only in the dimensions listed in axes.
func naiveSoftmax(x *Tensor, axes []int) *Tensor {
	y := NewTensor(x.Shape...)
	in := map[int]bool{}
	for _, a := range axes {
		in[a] = true
	}
	for k := range x.Data {
		ik := unravel(k, x.Shape)
		s := 0.0
		for j := range x.Data {
			ij := unravel(j, x.Shape)
			same := true
			for d := range ik {
				if !in[d] && ik[d] != ij[d] {
					same = false
				}
			}
			if same {
				s += math.Exp(x.Data[j])
			}
		}
		y.Data[k] = math.Exp(x.Data[k]) / s
	}
	return y
}

func TestSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	x := randTensor(r, 2, 3, 4)
	cases := []struct {
		opset, axis int
		hasAxis     bool
		axes        []int // dimensions normalised jointly
	}{
		{13, 0, false, []int{2}}, // default -1
		{13, 1, true, []int{1}},
		{13, -3, true, []int{0}},
		{11, 0, false, []int{1, 2}}, // default 1, coerced to [2,12]
		{11, 2, true, []int{2}},
		{11, 0, true, []int{0, 1, 2}},
		{11, -2, true, []int{1, 2}},
	}
	for _, c := range cases {
		spec := NodeSpec{Attrs: NewAttrs(), Opset: c.opset}
		if c.hasAxis {
			spec.Attrs.SetInt("axis", c.axis)
		}
		op, err := newSoftmax(spec)
		if err != nil {
			t.Fatal(err)
		}
		y, err := op.Forward([]*Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "Softmax", y[0], naiveSoftmax(x, c.axes), 1e-14)
		checkOpGrad(t, op, []*Tensor{x}, []bool{true})
	}
	// Hand values and stability: a shift by 1000 changes nothing.
	y, err := Softmax{Axis: -1}.Forward([]*Tensor{FromData([]float64{1000, 1001, 1002}, 1, 3)})
	if err != nil {
		t.Fatal(err)
	}
	s := 1 + math.E + math.E*math.E
	assertClose(t, "Softmax shifted", y[0], FromData([]float64{1 / s, math.E / s, math.E * math.E / s}, 1, 3), 1e-15)
	if _, err := (Softmax{Axis: 3}).Forward([]*Tensor{x}); err == nil || err.Error() != "Softmax: axis 3 out of range [-3,2] for rank 3" {
		t.Errorf("bad axis: %v", err)
	}
}
