package nets

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// naivePad maps every output index back to the input: the definition of constant Pad.
func naivePad(x *Tensor, begin, end []int, value float64) *Tensor {
	shape := make([]int, x.Rank())
	for d := range shape {
		shape[d] = x.Shape[d] + begin[d] + end[d]
	}
	y := NewTensor(shape...)
	ys, xs := Strides(shape), Strides(x.Shape)
	for o := range y.Data {
		q, inside := 0, true
		for d := range shape {
			i := o/ys[d]%shape[d] - begin[d]
			if i < 0 || i >= x.Shape[d] {
				inside = false
				break
			}
			q += i * xs[d]
		}
		y.Data[o] = value
		if inside {
			y.Data[o] = x.Data[q]
		}
	}
	return y
}

func ints(v ...int) *Tensor {
	t := NewTensor(len(v))
	for i, x := range v {
		t.Data[i] = float64(x)
	}
	return t
}

var padCases = []struct {
	name       string
	shape      []int
	spec       NodeSpec
	extra      []*Tensor // inputs after X (opset ≥ 11)
	begin, end []int
	value      float64
}{
	{"opset 2 attributes", []int{2, 3, 4}, NodeSpec{Opset: 2, NumInputs: 1, Attrs: attrKV{"pads": []int{0, 1, 0, 0, 2, 1}, "value": 1.5}.attrs()},
		nil, []int{0, 1, 0}, []int{0, 2, 1}, 1.5},
	{"opset 1 paddings", []int{2, 3}, NodeSpec{Opset: 1, NumInputs: 1, Attrs: attrKV{"paddings": []int{0, 2, 0, 1}, "mode": "constant"}.attrs()},
		nil, []int{0, 2}, []int{0, 1}, 0},
	{"opset 11 inputs", []int{2, 2, 3, 3}, NodeSpec{Opset: 11, NumInputs: 3, Attrs: NewAttrs()},
		[]*Tensor{ints(0, 0, 1, 2, 0, 0, 0, 1), Scalar(-0.5)}, []int{0, 0, 1, 2}, []int{0, 0, 0, 1}, -0.5},
	{"opset 11 no constant_value", []int{2, 2, 3, 3}, NodeSpec{Opset: 11, NumInputs: 2, Attrs: NewAttrs()},
		[]*Tensor{ints(0, 1, 1, 1, 0, 1, 1, 1)}, []int{0, 1, 1, 1}, []int{0, 1, 1, 1}, 0},
	{"negative pads crop", []int{2, 3, 5, 4}, NodeSpec{Opset: 13, NumInputs: 3, Attrs: NewAttrs()},
		[]*Tensor{ints(0, 0, -1, 2, 0, -1, -2, -1), FromData([]float64{3}, 1)}, []int{0, 0, -1, 2}, []int{0, -1, -2, -1}, 3},
	{"opset 18 axes, negative axis", []int{2, 3, 4, 5}, NodeSpec{Opset: 18, NumInputs: 4, Attrs: attrKV{"mode": "constant"}.attrs()},
		[]*Tensor{ints(1, 2, 3, -1), Scalar(2), ints(-1, 2)}, []int{0, 0, 2, 1}, []int{0, 0, -1, 3}, 2},
	{"absent constant_value with axes", []int{2, 4}, NodeSpec{Opset: 18, NumInputs: 4, Attrs: NewAttrs()},
		[]*Tensor{ints(2, 1), nil, ints(1)}, []int{0, 2}, []int{0, 1}, 0},
}

func TestPadMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 13))
	for _, c := range padCases {
		t.Run(c.name, func(t *testing.T) {
			op := buildOp(t, newPad, c.spec)
			in := append([]*Tensor{randTensor(r, c.shape...)}, c.extra...)
			out, err := op.Forward(in)
			if err != nil {
				t.Fatal(err)
			}
			closeTensors(t, "Y", out[0], naivePad(in[0], c.begin, c.end, c.value), 0)
			begin, end, v, err := op.(Pad).Amounts(in)
			if err != nil || !SameShape(begin, c.begin) || !SameShape(end, c.end) || v != c.value {
				t.Fatalf("Amounts = %v %v %v %v, want %v %v %v", begin, end, v, err, c.begin, c.end, c.value)
			}
			checkRoundTrip(t, newPad, op, c.spec)
		})
	}
}

func TestPadGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 14))
	for _, c := range padCases {
		t.Run(c.name, func(t *testing.T) {
			op := buildOp(t, newPad, c.spec)
			in := append([]*Tensor{randTensor(r, c.shape...)}, c.extra...)
			need := make([]bool, len(in))
			need[0] = true
			if len(in) > 2 && in[2] != nil {
				in[2] = in[2].Clone() // checkOpGrad perturbs it
				need[2] = true
			}
			checkOpGrad(t, op, in, need)
		})
	}
}

func TestPadHand(t *testing.T) {
	x := FromData([]float64{1, 2, 3, 4, 5, 6}, 1, 2, 3)
	op := buildOp(t, newPad, NodeSpec{Opset: 11, NumInputs: 3, Attrs: NewAttrs()})
	// Rows: one before; columns: crop the first, two after.
	out, err := op.Forward([]*Tensor{x, ints(0, 1, -1, 0, 0, 2), Scalar(9)})
	if err != nil {
		t.Fatal(err)
	}
	want := FromData([]float64{
		9, 9, 9, 9,
		2, 3, 9, 9,
		5, 6, 9, 9}, 1, 3, 4)
	closeTensors(t, "Y", out[0], want, 0)
	// Cropping everything away along an axis leaves an empty tensor, filled with nothing.
	out, err = op.Forward([]*Tensor{x, ints(0, 0, -2, 0, 0, -1), nil})
	if err != nil {
		t.Fatal(err)
	}
	if !SameShape(out[0].Shape, []int{1, 2, 0}) {
		t.Fatalf("full crop: shape %v", out[0].Shape)
	}
}

func TestPadErrors(t *testing.T) {
	ctorCases := []struct {
		name  string
		spec  NodeSpec
		unsup bool
	}{
		{"reflect", NodeSpec{Opset: 11, NumInputs: 2, Attrs: attrKV{"mode": "reflect"}.attrs()}, true},
		{"edge", NodeSpec{Opset: 2, NumInputs: 1, Attrs: attrKV{"mode": "edge", "pads": []int{0, 1, 0, 1}}.attrs()}, true},
		{"wrap", NodeSpec{Opset: 19, NumInputs: 2, Attrs: attrKV{"mode": "wrap"}.attrs()}, true},
		{"odd pads attribute", NodeSpec{Opset: 2, NumInputs: 1, Attrs: attrKV{"pads": []int{0, 1, 0}}.attrs()}, false},
		{"pads as attribute and input", NodeSpec{Opset: 2, NumInputs: 2, Attrs: attrKV{"pads": []int{0, 1, 0, 1}}.attrs()}, false},
		{"no pads input", NodeSpec{Opset: 11, NumInputs: 1, Attrs: NewAttrs()}, false},
		{"non-integer constant pads", NodeSpec{Opset: 11, NumInputs: 2, Attrs: NewAttrs(), Constants: []*Tensor{nil, FromData([]float64{0, 0.5}, 2)}}, false},
	}
	for _, c := range ctorCases {
		_, err := newPad(c.spec)
		if err == nil || errors.Is(err, ErrUnsupported) != c.unsup {
			t.Errorf("%s: error %v, want unsupported=%v", c.name, err, c.unsup)
		}
	}
	r := rand.New(rand.NewPCG(15, 15))
	x := randTensor(r, 2, 3, 4)
	op := buildOp(t, newPad, NodeSpec{Opset: 18, NumInputs: 4, Attrs: NewAttrs()})
	inCases := []struct {
		name  string
		in    []*Tensor
		unsup bool
	}{
		{"batch axis", []*Tensor{x, ints(1, 0, 0, 0, 0, 0)}, true},
		{"batch axis via axes", []*Tensor{x, ints(0, 1), nil, ints(0)}, true},
		{"wrong pads length", []*Tensor{x, ints(0, 1, 0, 1)}, false},
		{"crop below zero", []*Tensor{x, ints(0, -2, 0, 0, -2, 0)}, false},
		{"non-integer pads", []*Tensor{x, FromData([]float64{0, 0.5, 0, 0, 0, 0}, 6)}, false},
		{"pads rank 2", []*Tensor{x, FromData([]float64{0, 0, 0, 0, 0, 0}, 2, 3)}, false},
		{"constant_value not scalar", []*Tensor{x, ints(0, 0, 0, 0, 0, 0), ints(1, 2)}, false},
		{"axis out of range", []*Tensor{x, ints(1, 1), nil, ints(3)}, false},
		{"repeated axis", []*Tensor{x, ints(1, 1, 1, 1), nil, ints(2, -1)}, false},
		{"missing pads", []*Tensor{x, nil}, false},
		{"huge pads", []*Tensor{x, ints(0, 1<<30, 1<<30, 0, 0, 0)}, false},
	}
	for _, c := range inCases {
		_, err := op.Forward(c.in)
		if err == nil || errors.Is(err, ErrUnsupported) != c.unsup {
			t.Errorf("%s: forward error %v, want unsupported=%v", c.name, err, c.unsup)
		}
		if _, err := op.Backward(c.in, nil, []*Tensor{x}, []bool{true}); err == nil {
			t.Errorf("%s: backward gave no error", c.name)
		}
	}
	old := buildOp(t, newPad, NodeSpec{Opset: 2, NumInputs: 1, Attrs: attrKV{"pads": []int{0, 1, 0, 1}}.attrs()})
	if _, err := old.Forward([]*Tensor{x}); err == nil {
		t.Errorf("attribute pads for the wrong rank: no error")
	}
}
