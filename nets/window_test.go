package nets

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

// attrKV builds Attrs in tests: []int → INTS, int → INT, float64 → FLOAT, string → STRING.
type attrKV map[string]any

func (kv attrKV) attrs() Attrs {
	a := NewAttrs()
	for k, v := range kv {
		switch v := v.(type) {
		case []int:
			a.SetInts(k, v)
		case int:
			a.SetInt(k, v)
		case float64:
			a.SetFloat(k, v)
		case string:
			a.Strings[k] = v
		default:
			panic("attrKV: unsupported type")
		}
	}
	return a
}

// buildOp constructs an op from test attributes or fails the test.
func buildOp(t *testing.T, ctor OpConstructor, spec NodeSpec) Op {
	t.Helper()
	op, err := ctor(spec)
	if err != nil {
		t.Fatalf("constructor: %v", err)
	}
	return op
}

// checkRoundTrip checks that rebuilding op from its exported attributes gives op.
func checkRoundTrip(t *testing.T, ctor OpConstructor, op Op, spec NodeSpec) {
	t.Helper()
	spec.Attrs = op.Attrs()
	again, err := ctor(spec)
	if err != nil {
		t.Fatalf("%s: rebuilding from exported attributes: %v", op.OpType(), err)
	}
	if !reflect.DeepEqual(op, again) {
		t.Fatalf("%s: attributes do not round-trip: %+v became %+v", op.OpType(), op, again)
	}
}

// closeTensors reports the first element where got and want differ by more than tol·max(1,|want|).
func closeTensors(t *testing.T, what string, got, want *Tensor, tol float64) {
	t.Helper()
	if !SameShape(got.Shape, want.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	for i := range want.Data {
		if math.Abs(got.Data[i]-want.Data[i]) > tol*math.Max(1, math.Abs(want.Data[i])) {
			t.Fatalf("%s: element %d is %.12g, want %.12g", what, i, got.Data[i], want.Data[i])
		}
	}
}

// seqTensor returns from, from+1, … in row-major order, in a tensor of the given shape.
func seqTensor(from float64, shape ...int) *Tensor {
	x := NewTensor(shape...)
	for i := range x.Data {
		x.Data[i] = from + float64(i)
	}
	return x
}

func TestResolveWindow(t *testing.T) {
	// Expected sizes and pads worked out by hand from the ONNX formulas.
	cases := []struct {
		name                 string
		in, k, s, d          int
		pads                 [2]int
		auto                 string
		ceil                 bool
		wantOut, wantB, wEnd int
	}{
		{"floor", 7, 3, 2, 1, [2]int{0, 0}, AutoPadNotSet, false, 3, 0, 0},
		{"floor pads", 7, 3, 2, 1, [2]int{1, 2}, AutoPadNotSet, false, 4, 1, 2},
		{"ceil exact", 7, 3, 2, 1, [2]int{0, 0}, AutoPadNotSet, true, 3, 0, 0},
		{"ceil extra", 4, 3, 2, 1, [2]int{0, 0}, AutoPadNotSet, true, 2, 0, 0},
		// in 5, k 2, s 2, pads 0+1: span 4, floor 3, ceil 3 (4/2 exact).
		{"ceil exact with pad", 5, 2, 2, 1, [2]int{0, 1}, AutoPadNotSet, true, 3, 0, 1},
		// in 5, k 2, s 3, pads 1+1: span 5 → floor 2, ceil 3; window 2 starts at 6−1=5 ≥ 5: dropped.
		{"ceil drop", 5, 2, 3, 1, [2]int{1, 1}, AutoPadNotSet, true, 2, 1, 1},
		{"dilated", 7, 3, 1, 2, [2]int{0, 0}, AutoPadNotSet, false, 3, 0, 0},
		{"valid", 7, 3, 2, 2, [2]int{0, 0}, AutoPadValid, false, 2, 0, 0},
		{"same upper", 7, 3, 2, 1, [2]int{0, 0}, AutoPadSameUpper, false, 4, 1, 1},
		{"same upper odd", 6, 3, 2, 1, [2]int{0, 0}, AutoPadSameUpper, false, 3, 0, 1},
		{"same lower odd", 6, 3, 2, 1, [2]int{0, 0}, AutoPadSameLower, false, 3, 1, 0},
		{"same ceil", 6, 3, 2, 1, [2]int{0, 0}, AutoPadSameLower, true, 3, 1, 0},
		{"same big stride", 5, 2, 4, 1, [2]int{0, 0}, AutoPadSameUpper, false, 2, 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := windowSpec{strides: []int{c.s, 1}, dilations: []int{c.d, 1},
				pads: []int{c.pads[0], 0, c.pads[1], 0}, autoPad: c.auto}
			w, err := resolveWindow(c.in, 3, c.k, 1, s, c.ceil)
			if err != nil {
				t.Fatal(err)
			}
			if w.OutH != c.wantOut || w.PadTop != c.wantB || w.PadBottom != c.wEnd {
				t.Fatalf("out %d pads %d+%d, want %d, %d+%d", w.OutH, w.PadTop, w.PadBottom, c.wantOut, c.wantB, c.wEnd)
			}
			if w.OutW != 3 || w.PadLeft != 0 || w.PadRight != 0 {
				t.Fatalf("untouched axis changed: %+v", w)
			}
		})
	}
}

func TestTapRange(t *testing.T) {
	// Brute force over small windows.
	for start := -6; start <= 8; start++ {
		for k := 1; k <= 4; k++ {
			for d := 1; d <= 3; d++ {
				for n := 1; n <= 5; n++ {
					lo, hi := tapRange(start, k, d, n)
					for i := 0; i < k; i++ {
						p := start + i*d
						inside := p >= 0 && p < n
						if inside != (i >= lo && i < hi) {
							t.Fatalf("tapRange(%d,%d,%d,%d) = [%d,%d), tap %d at %d inside=%v", start, k, d, n, lo, hi, i, p, inside)
						}
					}
				}
			}
		}
	}
}

func TestReadWindowSpecErrors(t *testing.T) {
	cases := []struct {
		name  string
		attrs attrKV
		unsup bool
	}{
		{"3-D kernel", attrKV{"kernel_shape": []int{3, 3, 3}}, true},
		{"1-D strides", attrKV{"strides": []int{2}}, true},
		{"zero stride", attrKV{"strides": []int{0, 1}}, false},
		{"negative pad", attrKV{"pads": []int{0, -1, 0, 0}}, false},
		{"zero dilation", attrKV{"dilations": []int{1, 0}}, false},
		{"bad auto_pad", attrKV{"auto_pad": "SAME"}, false},
		{"auto_pad with pads", attrKV{"auto_pad": AutoPadValid, "pads": []int{1, 1, 1, 1}}, false},
	}
	for _, c := range cases {
		_, err := readWindowSpec(c.attrs.attrs())
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if errors.Is(err, ErrUnsupported) != c.unsup {
			t.Errorf("%s: %v: unsupported=%v, want %v", c.name, err, errors.Is(err, ErrUnsupported), c.unsup)
		}
	}
}

// TestBackwardWithoutGradient: a Backward call without an output gradient is an
// error, never a panic (MaxPool's Indices output alone gives a zero gradient).
func TestBackwardWithoutGradient(t *testing.T) {
	x := seqTensor(0, 1, 2, 4, 4)
	cases := []struct {
		op Op
		in []*Tensor
	}{
		{Conv{Strides: []int{1, 1}, Pads: []int{0, 0, 0, 0}, Dilations: []int{1, 1}, Group: 1, AutoPad: AutoPadNotSet}, []*Tensor{x, seqTensor(0, 1, 2, 2, 2)}},
		{AveragePool{KernelShape: []int{2, 2}, Strides: []int{1, 1}, Pads: []int{0, 0, 0, 0}, Dilations: []int{1, 1}, AutoPad: AutoPadNotSet}, []*Tensor{x}},
		{GlobalAveragePool{}, []*Tensor{x}},
		{BatchNormalization{Epsilon: 1e-5}, []*Tensor{x, seqTensor(1, 2), seqTensor(1, 2), seqTensor(1, 2), seqTensor(1, 2)}},
		{Pad{Pads: []int{0, 0, 1, 1, 0, 0, 1, 1}}, []*Tensor{x}},
	}
	for _, c := range cases {
		for _, g := range [][]*Tensor{nil, {nil}} {
			if _, err := c.op.Backward(c.in, nil, g, []bool{true, true}); err == nil {
				t.Errorf("%s: no error for output gradient %v", c.op.OpType(), g)
			}
		}
	}
	mp := MaxPool{KernelShape: []int{2, 2}, Strides: []int{1, 1}, Pads: []int{0, 0, 0, 0}, Dilations: []int{1, 1}, AutoPad: AutoPadNotSet}
	got, err := mp.Backward([]*Tensor{x}, nil, []*Tensor{nil, NewTensor(1, 2, 3, 3)}, []bool{true})
	if err != nil || got[0] == nil || got[0].HasNaN() {
		t.Fatalf("MaxPool with only the Indices gradient: %v, %v", got, err)
	}
	for _, v := range got[0].Data {
		if v != 0 {
			t.Fatalf("MaxPool with only the Indices gradient: nonzero %v", got[0].Data)
		}
	}
}

// TestHostileSizes: sizes from a hostile model file give errors, not a panic or an
// enormous allocation.
func TestHostileSizes(t *testing.T) {
	x := seqTensor(0, 1, 1, 4, 4)
	w := seqTensor(0, 1, 1, 2, 2)
	for _, a := range []attrKV{
		{"pads": []int{1 << 40, 0, 0, 0}},
		{"strides": []int{1 << 62, 1}},
		{"kernel_shape": []int{1 << 31, 2}},
	} {
		if _, err := readWindowSpec(a.attrs()); err == nil {
			t.Errorf("%v: no error", a)
		}
	}
	big := attrKV{"pads": []int{1 << 29, 1 << 29, 1 << 29, 1 << 29}}
	conv := buildOp(t, newConv, NodeSpec{Attrs: big.attrs()})
	if _, err := conv.Forward([]*Tensor{x, w}); err == nil {
		t.Errorf("Conv with pads 2^29: no error")
	}
	big["kernel_shape"] = []int{2, 2}
	big["count_include_pad"] = 1
	for _, ctor := range []OpConstructor{newMaxPool, newAveragePool} {
		op := buildOp(t, ctor, NodeSpec{Attrs: big.attrs()})
		if _, err := op.Forward([]*Tensor{x}); err == nil {
			t.Errorf("%s with pads 2^29: no error", op.OpType())
		}
	}
}

// TestOpValuesBuiltInCode: ops built as struct literals get the ONNX defaults for
// absent lists and errors, not panics, for malformed ones.
func TestOpValuesBuiltInCode(t *testing.T) {
	x, w := seqTensor(0, 1, 1, 4, 4), seqTensor(0, 1, 1, 2, 2)
	out, err := Conv{Group: 1}.Forward([]*Tensor{x, w})
	if err != nil || !SameShape(out[0].Shape, []int{1, 1, 3, 3}) {
		t.Fatalf("Conv{Group: 1}: %v, %v", out, err)
	}
	out, err = MaxPool{KernelShape: []int{2, 2}}.Forward([]*Tensor{x})
	if err != nil || !SameShape(out[0].Shape, []int{1, 1, 3, 3}) {
		t.Fatalf("MaxPool{KernelShape: [2 2]}: %v, %v", out, err)
	}
	bad := []Op{
		Conv{},
		Conv{Group: 1, Strides: []int{1}},
		Conv{Group: 1, AutoPad: "FULL"},
		MaxPool{},
		AveragePool{KernelShape: []int{2}},
		AveragePool{KernelShape: []int{2, 2}, Pads: []int{-1, 0, 0, 0}},
	}
	for _, op := range bad {
		in := []*Tensor{x}
		if op.OpType() == "Conv" {
			in = append(in, w)
		}
		if _, err := op.Forward(in); err == nil {
			t.Errorf("%+v: no error", op)
		}
	}
}
