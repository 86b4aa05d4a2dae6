package nets

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func specWith(opset int, set func(a Attrs)) NodeSpec {
	s := NodeSpec{Attrs: NewAttrs(), Opset: opset}
	if set != nil {
		set(s.Attrs)
	}
	return s
}

func TestFlatten(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 21))
	x := randTensor(r, 2, 3, 4, 5)
	cases := []struct {
		axis int
		want []int
	}{
		{0, []int{1, 120}}, {1, []int{2, 60}}, {2, []int{6, 20}}, {4, []int{120, 1}},
		{-1, []int{24, 5}}, {-4, []int{1, 120}},
	}
	for _, c := range cases {
		op, err := newFlatten(specWith(13, func(a Attrs) { a.SetInt("axis", c.axis) }))
		if err != nil {
			t.Fatal(err)
		}
		y, err := op.Forward([]*Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "Flatten", y[0], FromData(x.Data, c.want...), 0)
		if sameStorage(y[0].Data, x.Data) {
			t.Error("Flatten output aliases its input")
		}
		checkOpGrad(t, op, []*Tensor{x}, []bool{true})
	}
	op, _ := newFlatten(specWith(13, nil))
	if op.(Flatten).Axis != 1 {
		t.Errorf("default axis %d, want 1", op.(Flatten).Axis)
	}
	if _, err := (Flatten{Axis: 5}).Forward([]*Tensor{x}); err == nil || err.Error() != "Flatten: axis 5 out of range [-4,4] for rank 4" {
		t.Errorf("bad axis: %v", err)
	}
}

func shapeTensor(dims ...int) *Tensor {
	t := NewTensor(len(dims))
	for i, d := range dims {
		t.Data[i] = float64(d)
	}
	return t
}

func TestReshape(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 23))
	x := randTensor(r, 2, 3, 4)
	cases := []struct {
		shape     []int
		allowZero bool
		want      []int
	}{
		{[]int{6, 4}, false, []int{6, 4}},
		{[]int{-1}, false, []int{24}},
		{[]int{0, -1}, false, []int{2, 12}},
		{[]int{0, 0, 2, 2}, false, []int{2, 3, 2, 2}},
		{[]int{3, -1, 0}, false, []int{3, 2, 4}}, // 0 copies input dimension 2
		{[]int{1, 24, 1}, true, []int{1, 24, 1}},
	}
	for _, c := range cases {
		op := Reshape{AllowZero: c.allowZero}
		in := []*Tensor{x, shapeTensor(c.shape...)}
		y, err := op.Forward(in)
		if err != nil {
			t.Fatalf("%v: %v", c.shape, err)
		}
		assertClose(t, "Reshape", y[0], FromData(x.Data, c.want...), 0)
		checkOpGrad(t, op, in, []bool{true, false})
		g, err := op.Backward(in, y, []*Tensor{y[0]}, []bool{true, true})
		if err != nil || g[1] == nil || g[1].Len() != len(c.shape) || g[1].Data[0] != 0 {
			t.Fatalf("shape input gradient: %v, %v", g, err)
		}
	}
	// allowzero: a literal 0 dimension.
	y, err := Reshape{AllowZero: true}.Forward([]*Tensor{NewTensor(0, 3), shapeTensor(3, 0)})
	if err != nil || !SameShape(y[0].Shape, []int{3, 0}) {
		t.Fatalf("allowzero: %v, %v", y, err)
	}
	// opset < 5: the shape is an attribute.
	op, err := newReshape(specWith(4, func(a Attrs) { a.SetInts("shape", []int{-1, 2}) }))
	if err != nil {
		t.Fatal(err)
	}
	y, err = op.Forward([]*Tensor{x})
	if err != nil || !SameShape(y[0].Shape, []int{12, 2}) {
		t.Fatalf("opset 4: %v, %v", y, err)
	}
	if got := op.Attrs().IntList("shape", nil); !SameShape(got, []int{-1, 2}) {
		t.Errorf("opset 4 export: shape %v", got)
	}
	op, err = newReshape(specWith(14, func(a Attrs) { a.SetInt("allowzero", 1) }))
	if err != nil || !op.(Reshape).AllowZero || op.(Reshape).Shape != nil {
		t.Fatalf("opset 14: %+v, %v", op, err)
	}
}

func TestReshapeErrors(t *testing.T) {
	x := NewTensor(2, 3, 4)
	cases := []struct {
		op    Reshape
		shape *Tensor
		want  string
	}{
		{Reshape{}, shapeTensor(5, -1), "Reshape: cannot reshape [2,3,4] (24 elements) to [5,-1]"},
		{Reshape{}, shapeTensor(5, 5), "Reshape: cannot reshape [2,3,4] (24 elements) to [5,5] (25 elements)"},
		{Reshape{}, shapeTensor(-1, -1), "Reshape: shape [-1,-1] has more than one -1"},
		{Reshape{}, shapeTensor(-2, 12), "Reshape: shape [-2,12] has invalid dimension -2"},
		{Reshape{}, shapeTensor(1, 1, 1, 0), "Reshape: shape [1,1,1,0] copies dimension 3 (0) but the input [2,3,4] has rank 3"},
		{Reshape{AllowZero: true}, shapeTensor(0, -1), "Reshape: shape [0,-1] combines -1 with 0 under allowzero=1"},
		{Reshape{}, FromData([]float64{2.5, 2}, 2), "Reshape: shape[0] = 2.5 is not an integer"},
		{Reshape{}, NewTensor(1, 2), "Reshape: the shape input must be 1-D, got shape [1,2]"},
	}
	for _, c := range cases {
		_, err := c.op.Forward([]*Tensor{x, c.shape})
		if err == nil || err.Error() != c.want {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
	if _, err := (Reshape{}).Forward([]*Tensor{x}); err == nil || err.Error() != "Reshape: got 1 inputs, want 2" {
		t.Errorf("missing shape input: %v", err)
	}
	if _, err := newReshape(specWith(1, nil)); err == nil {
		t.Error("opset 1 without shape attribute: no error")
	}
}

// naiveTranspose moves every element by its multi-index.
func naiveTranspose(x *Tensor, perm []int) *Tensor {
	shape := make([]int, len(perm))
	for i, p := range perm {
		shape[i] = x.Shape[p]
	}
	y := NewTensor(shape...)
	for k, v := range x.Data {
		idx := unravel(k, x.Shape)
		flat := 0
		for i, p := range perm {
			flat = flat*shape[i] + idx[p]
		}
		y.Data[flat] = v
	}
	return y
}

func TestTranspose(t *testing.T) {
	r := rand.New(rand.NewPCG(24, 25))
	cases := []struct {
		shape, perm, eff []int
	}{
		{[]int{3, 4}, nil, []int{1, 0}},
		{[]int{2, 3, 4}, nil, []int{2, 1, 0}},
		{[]int{2, 3, 4, 5}, []int{0, 2, 3, 1}, []int{0, 2, 3, 1}}, // NCHW → NHWC
		{[]int{2, 3, 4, 5}, []int{0, 3, 1, 2}, []int{0, 3, 1, 2}},
		{[]int{2, 3, 4}, []int{0, 1, 2}, []int{0, 1, 2}},
		{[]int{5}, nil, []int{0}},
		{[]int{}, nil, []int{}},
		{[]int{2, 0, 3}, []int{2, 0, 1}, []int{2, 0, 1}},
	}
	for _, c := range cases {
		x := randTensor(r, c.shape...)
		op := Transpose{Perm: c.perm}
		y, err := op.Forward([]*Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "Transpose", y[0], naiveTranspose(x, c.eff), 0)
		checkOpGrad(t, op, []*Tensor{x}, []bool{true})
	}
	y, _ := Transpose{}.Forward([]*Tensor{FromData([]float64{1, 2, 3, 4, 5, 6}, 2, 3)})
	assertClose(t, "Transpose hand", y[0], FromData([]float64{1, 4, 2, 5, 3, 6}, 3, 2), 0)
	for _, perm := range [][]int{{0, 0}, {0, 2}, {1}} {
		if _, err := (Transpose{Perm: perm}).Forward([]*Tensor{NewTensor(2, 3)}); err == nil {
			t.Errorf("perm %v: no error", perm)
		}
	}
}

func TestConcat(t *testing.T) {
	r := rand.New(rand.NewPCG(26, 27))
	a, b, c := randTensor(r, 2, 1, 3), randTensor(r, 2, 4, 3), randTensor(r, 2, 2, 3)
	for _, axis := range []int{1, -2} {
		y, err := Concat{Axis: axis}.Forward([]*Tensor{a, b, c})
		if err != nil {
			t.Fatal(err)
		}
		// Reference: read each output element from the input its axis index falls in.
		want := NewTensor(2, 7, 3)
		for k := range want.Data {
			idx := unravel(k, want.Shape)
			j := idx[1]
			src := a
			switch {
			case j >= 5:
				src, j = c, j-5
			case j >= 1:
				src, j = b, j-1
			}
			want.Data[k] = src.Data[(idx[0]*src.Shape[1]+j)*3+idx[2]]
		}
		assertClose(t, "Concat", y[0], want, 0)
		checkOpGrad(t, Concat{Axis: axis}, []*Tensor{a, b, c}, []bool{true, false, true})
	}
	y, err := Concat{Axis: 0}.Forward([]*Tensor{FromData([]float64{1, 2}, 1, 2), FromData([]float64{3, 4, 5, 6}, 2, 2)})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "Concat axis 0", y[0], FromData([]float64{1, 2, 3, 4, 5, 6}, 3, 2), 0)
	checkOpGrad(t, Concat{Axis: 0}, []*Tensor{randTensor(r, 1, 2), randTensor(r, 2, 2)}, []bool{true, true})

	errs := []struct {
		in   []*Tensor
		want string
	}{
		{[]*Tensor{a, NewTensor(3, 4, 3)}, "Concat: input 0 is [2,1,3] but input 1 is [3,4,3]: dimension 0 differs (axis 1)"},
		{[]*Tensor{a, NewTensor(2, 4)}, "Concat: input 0 is [2,1,3] but input 1 is [2,4]: ranks differ"},
		{[]*Tensor{a, nil}, "Concat: input 1 is absent"},
		{nil, "Concat: got 0 inputs, want at least 1"},
	}
	for _, e := range errs {
		if _, err := (Concat{Axis: 1}).Forward(e.in); err == nil || err.Error() != e.want {
			t.Errorf("got %v, want %q", err, e.want)
		}
	}
	if _, err := newConcat(specWith(13, nil)); err == nil {
		t.Error("Concat without axis: no error")
	}
}

func TestIdentityDropout(t *testing.T) {
	r := rand.New(rand.NewPCG(28, 29))
	x := randTensor(r, 3, 4)
	y, err := Identity{}.Forward([]*Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "Identity", y[0], x, 0)
	checkOpGrad(t, Identity{}, []*Tensor{x}, []bool{true})

	// Opset 12: ratio and training_mode are inputs, ignored at inference; the mask
	// output (second named output) is all ones.
	op, err := newDropout(NodeSpec{Attrs: NewAttrs(), Opset: 13, NumOutputs: 2})
	if err != nil {
		t.Fatal(err)
	}
	in := []*Tensor{x, Scalar(0.3), Scalar(0)}
	y, err = op.Forward(in)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "Dropout", y[0], x, 0)
	if len(y) != 2 || !SameShape(y[1].Shape, x.Shape) {
		t.Fatalf("Dropout mask: %v", y)
	}
	for _, v := range y[1].Data {
		if v != 1 {
			t.Fatalf("Dropout mask has %v, want all 1", v)
		}
	}
	g, err := op.Backward(in, y, []*Tensor{x, nil}, []bool{true, false, false})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "Dropout backward", g[0], x, 0)
	checkOpGrad(t, Dropout{}, []*Tensor{x}, []bool{true})
	if y, _ := (Dropout{}).Forward([]*Tensor{x}); len(y) != 1 {
		t.Errorf("Dropout without mask output: %d outputs", len(y))
	}
	// Opset 10: ratio is an attribute and is exported back.
	op, _ = newDropout(specWith(10, func(a Attrs) { a.SetFloat("ratio", 0.2) }))
	if got := op.Attrs().Float("ratio", -1); got != 0.2 {
		t.Errorf("Dropout ratio export: %v", got)
	}
	if _, ok := (Dropout{}).Attrs().Floats["ratio"]; ok {
		t.Error("Dropout exports a ratio it was not given")
	}
}

func TestConstant(t *testing.T) {
	val := FromData([]float64{1, 2, 3, 4}, 2, 2)
	cases := []struct {
		set  func(a Attrs)
		want *Tensor
	}{
		{func(a Attrs) { a.Tensors["value"] = val }, val},
		{func(a Attrs) { a.SetFloat("value_float", 2.5) }, Scalar(2.5)},
		{func(a Attrs) { a.Floats["value_floats"] = []float64{1, 2} }, FromData([]float64{1, 2}, 2)},
		{func(a Attrs) { a.SetInt("value_int", -3) }, Scalar(-3)},
		{func(a Attrs) { a.SetInts("value_ints", []int{1, 28, 28}) }, FromData([]float64{1, 28, 28}, 3)},
	}
	for _, c := range cases {
		op, err := newConstant(specWith(13, c.set))
		if err != nil {
			t.Fatal(err)
		}
		y, err := op.Forward(nil)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "Constant", y[0], c.want, 0)
		y[0].Data[0] = 99 // a consumer's write must not reach the constant
		y2, _ := op.Forward(nil)
		assertClose(t, "Constant after write", y2[0], c.want, 0)
		back, err := newConstant(NodeSpec{Attrs: op.Attrs(), Opset: 13})
		if err != nil {
			t.Fatal(err)
		}
		y2, _ = back.Forward(nil)
		assertClose(t, "Constant export", y2[0], c.want, 0)
	}
	if _, err := newConstant(specWith(13, nil)); err == nil {
		t.Error("Constant without value: no error")
	}
	if _, err := newConstant(specWith(13, func(a Attrs) { a.SetFloat("value_float", 1); a.SetInt("value_int", 1) })); err == nil {
		t.Error("Constant with two values: no error")
	}
	if _, err := newConstant(specWith(13, func(a Attrs) { a.Strings["value_string"] = "x" })); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Constant string: %v", err)
	}
	if _, err := (Constant{Value: val}).Forward([]*Tensor{val}); err == nil {
		t.Error("Constant with an input: no error")
	}
}
