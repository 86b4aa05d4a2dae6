package nets

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// naivePool is the direct definition of MaxPool / AveragePool over explicit
// geometry: pads are [top, left, bottom, right] as resolved. It returns the output
// and, for max, the flat argmax indices (first maximum on ties).
func naivePool(x *Tensor, k, s, d [2]int, pads [4]int, out [2]int, isMax, inclPad bool) (*Tensor, []int) {
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	y := NewTensor(n, c, out[0], out[1])
	idx := make([]int, y.Len())
	o := 0
	for pl := 0; pl < n*c; pl++ {
		for oh := 0; oh < out[0]; oh++ {
			for ow := 0; ow < out[1]; ow++ {
				best, at, sum, cnt := math.Inf(-1), -1, 0.0, 0
				for i := 0; i < k[0]; i++ {
					for j := 0; j < k[1]; j++ {
						ih, iw := oh*s[0]-pads[0]+i*d[0], ow*s[1]-pads[1]+j*d[1]
						inPadded := ih >= -pads[0] && ih < h+pads[2] && iw >= -pads[1] && iw < w+pads[3]
						if ih < 0 || ih >= h || iw < 0 || iw >= w {
							if inclPad && inPadded {
								cnt++
							}
							continue
						}
						q := (pl*h+ih)*w + iw
						if x.Data[q] > best {
							best, at = x.Data[q], q
						}
						sum += x.Data[q]
						cnt++
					}
				}
				if isMax {
					y.Data[o], idx[o] = best, at
				} else {
					y.Data[o] = sum / float64(cnt)
				}
				o++
			}
		}
	}
	return y, idx
}

// poolCases: sizes and resolved pads worked out by hand from the ONNX formulas.
var poolCases = []struct {
	name    string
	h, w    int
	attrs   attrKV
	k, s, d [2]int
	pads    [4]int
	out     [2]int
}{
	{"2x2 stride 2", 6, 6, attrKV{"kernel_shape": []int{2, 2}, "strides": []int{2, 2}},
		[2]int{2, 2}, [2]int{2, 2}, [2]int{1, 1}, [4]int{}, [2]int{3, 3}},
	{"3x3 stride 1 pads 1", 5, 6, attrKV{"kernel_shape": []int{3, 3}, "pads": []int{1, 1, 1, 1}},
		[2]int{3, 3}, [2]int{1, 1}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, [2]int{5, 6}},
	{"3x2 stride (2,1) asymmetric pads", 7, 5, attrKV{"kernel_shape": []int{3, 2}, "strides": []int{2, 1}, "pads": []int{0, 1, 2, 0}},
		[2]int{3, 2}, [2]int{2, 1}, [2]int{1, 1}, [4]int{0, 1, 2, 0}, [2]int{4, 5}},
	// 7 + 1 − 3 = 5 → ceil(5/2)+1 = 4; 6 + 0 − 3 = 3 → ceil(3/2)+1 = 3.
	{"ceil_mode", 7, 6, attrKV{"kernel_shape": []int{3, 3}, "strides": []int{2, 2}, "pads": []int{1, 0, 0, 0}, "ceil_mode": 1},
		[2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}, [4]int{1, 0, 0, 0}, [2]int{4, 3}},
	// 5 + 2 − 2 = 5 → ceil(5/3)+1 = 3, but the third window starts at 6−1 = 5 ≥ 5: dropped.
	{"ceil_mode drops window in end pad", 5, 5, attrKV{"kernel_shape": []int{2, 2}, "strides": []int{3, 3}, "pads": []int{1, 1, 1, 1}, "ceil_mode": 1},
		[2]int{2, 2}, [2]int{3, 3}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, [2]int{2, 2}},
	{"dilation 2", 7, 6, attrKV{"kernel_shape": []int{2, 3}, "dilations": []int{2, 2}, "pads": []int{1, 0, 1, 2}},
		[2]int{2, 3}, [2]int{1, 1}, [2]int{2, 2}, [4]int{1, 0, 1, 2}, [2]int{7, 4}},
	{"SAME_UPPER stride 2", 7, 6, attrKV{"kernel_shape": []int{3, 3}, "strides": []int{2, 2}, "auto_pad": AutoPadSameUpper},
		[2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}, [4]int{1, 0, 1, 1}, [2]int{4, 3}},
	{"SAME_LOWER stride 2", 7, 6, attrKV{"kernel_shape": []int{3, 3}, "strides": []int{2, 2}, "auto_pad": AutoPadSameLower},
		[2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}, [4]int{1, 1, 1, 0}, [2]int{4, 3}},
	{"VALID", 7, 6, attrKV{"kernel_shape": []int{3, 2}, "strides": []int{2, 2}, "auto_pad": AutoPadValid},
		[2]int{3, 2}, [2]int{2, 2}, [2]int{1, 1}, [4]int{}, [2]int{3, 3}},
	// Effective kernel 4 (2 taps, dilation 3). Rows: 5 + 2 − 4 = 3 → ceil(3/2)+1 = 3,
	// the last window (start 2) reaches tap 5, beyond the padded input. Columns:
	// 5 + 3 − 4 = 4 → ceil(4/3)+1 = 3, the last window (start 3) reaches tap 6.
	{"dilation 3 ceil", 5, 5, attrKV{"kernel_shape": []int{2, 2}, "dilations": []int{3, 3}, "strides": []int{2, 3}, "pads": []int{2, 3, 0, 0}, "ceil_mode": 1},
		[2]int{2, 2}, [2]int{2, 3}, [2]int{3, 3}, [4]int{2, 3, 0, 0}, [2]int{3, 3}},
}

func TestPoolsMatchNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for _, tc := range poolCases {
		x := randTensor(r, 2, 3, tc.h, tc.w)
		t.Run(tc.name+"/MaxPool", func(t *testing.T) {
			spec := NodeSpec{Attrs: tc.attrs.attrs(), NumOutputs: 2}
			op := buildOp(t, newMaxPool, spec)
			out, err := op.Forward([]*Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			want, idx := naivePool(x, tc.k, tc.s, tc.d, tc.pads, tc.out, true, false)
			closeTensors(t, "Y", out[0], want, 0)
			if len(out) != 2 {
				t.Fatalf("%d outputs, want Y and Indices", len(out))
			}
			for i, v := range idx {
				if out[1].Data[i] != float64(v) {
					t.Fatalf("Indices[%d] = %v, want %d", i, out[1].Data[i], v)
				}
			}
			checkRoundTrip(t, newMaxPool, op, spec)
		})
		for _, incl := range []bool{false, true} {
			name := tc.name + "/AveragePool"
			if incl {
				name += " count_include_pad"
			}
			t.Run(name, func(t *testing.T) {
				a := tc.attrs.attrs()
				if incl {
					a.SetInt("count_include_pad", 1)
				}
				spec := NodeSpec{Attrs: a}
				op := buildOp(t, newAveragePool, spec)
				out, err := op.Forward([]*Tensor{x})
				if err != nil {
					t.Fatal(err)
				}
				want, _ := naivePool(x, tc.k, tc.s, tc.d, tc.pads, tc.out, false, incl)
				closeTensors(t, "Y", out[0], want, 1e-14)
				checkRoundTrip(t, newAveragePool, op, spec)
			})
		}
	}
}

func TestPoolsGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, tc := range poolCases {
		x := randTensor(r, 2, 2, tc.h, tc.w)
		t.Run(tc.name, func(t *testing.T) {
			for _, outs := range []int{1, 2} {
				op := buildOp(t, newMaxPool, NodeSpec{Attrs: tc.attrs.attrs(), NumOutputs: outs})
				checkOpGrad(t, op, []*Tensor{x}, []bool{true})
			}
			for _, incl := range []int{0, 1} {
				a := tc.attrs.attrs()
				a.SetInt("count_include_pad", incl)
				op := buildOp(t, newAveragePool, NodeSpec{Attrs: a})
				checkOpGrad(t, op, []*Tensor{x}, []bool{true})
			}
		})
	}
	x := randTensor(r, 2, 3, 4, 5)
	checkOpGrad(t, GlobalAveragePool{}, []*Tensor{x}, []bool{true})
}

// TestPoolsHand checks worked examples of the ONNX MaxPool and AveragePool
// documentation and small cases computed by hand.
func TestPoolsHand(t *testing.T) {
	x4, x5 := seqTensor(1, 1, 1, 4, 4), seqTensor(1, 1, 1, 5, 5)
	x2 := FromData([]float64{1, 2, 3, 4}, 1, 1, 2, 2)
	cases := []struct {
		name  string
		ctor  OpConstructor
		attrs attrKV
		x     *Tensor
		want  []float64
		h, w  int
	}{
		{"maxpool ceil", newMaxPool, attrKV{"kernel_shape": []int{3, 3}, "strides": []int{2, 2}, "ceil_mode": 1}, x4,
			[]float64{11, 12, 15, 16}, 2, 2},
		{"maxpool dilations", newMaxPool, attrKV{"kernel_shape": []int{2, 2}, "dilations": []int{2, 2}}, x4,
			[]float64{11, 12, 15, 16}, 2, 2},
		{"maxpool pads", newMaxPool, attrKV{"kernel_shape": []int{5, 5}, "pads": []int{2, 2, 2, 2}}, x5, []float64{
			13, 14, 15, 15, 15,
			18, 19, 20, 20, 20,
			23, 24, 25, 25, 25,
			23, 24, 25, 25, 25,
			23, 24, 25, 25, 25}, 5, 5},
		{"maxpool same_upper", newMaxPool, attrKV{"kernel_shape": []int{3, 3}, "strides": []int{2, 2}, "auto_pad": AutoPadSameUpper}, x5,
			[]float64{7, 9, 10, 17, 19, 20, 22, 24, 25}, 3, 3},
		{"maxpool same_lower", newMaxPool, attrKV{"kernel_shape": []int{2, 2}, "auto_pad": AutoPadSameLower}, x5,
			x5.Data, 5, 5},
		{"averagepool ceil", newAveragePool, attrKV{"kernel_shape": []int{3, 3}, "strides": []int{2, 2}, "ceil_mode": 1}, x4,
			[]float64{6, 7.5, 12, 13.5}, 2, 2},
		{"averagepool pads", newAveragePool, attrKV{"kernel_shape": []int{2, 2}, "pads": []int{1, 1, 1, 1}}, x2,
			[]float64{1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4}, 3, 3},
		{"averagepool pads count_include_pad", newAveragePool, attrKV{"kernel_shape": []int{2, 2}, "pads": []int{1, 1, 1, 1}, "count_include_pad": 1}, x2,
			[]float64{0.25, 0.75, 0.5, 1, 2.5, 1.5, 0.75, 1.75, 1}, 3, 3},
		// Ceil mode past an end pad of 0: the last window holds one real tap, and
		// count_include_pad does not count the tap beyond the padded input.
		{"averagepool ceil count_include_pad", newAveragePool, attrKV{"kernel_shape": []int{1, 2}, "strides": []int{1, 2}, "ceil_mode": 1, "count_include_pad": 1},
			FromData([]float64{1, 2, 3, 4, 5}, 1, 1, 1, 5), []float64{1.5, 3.5, 5}, 1, 3},
		{"globalaveragepool", newGlobalAveragePool, attrKV{}, x4, []float64{8.5}, 1, 1},
	}
	for _, c := range cases {
		op := buildOp(t, c.ctor, NodeSpec{Attrs: c.attrs.attrs()})
		out, err := op.Forward([]*Tensor{c.x})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		closeTensors(t, c.name, out[0], FromData(c.want, 1, 1, c.h, c.w), 1e-15)
	}
}

func TestMaxPoolIndicesHand(t *testing.T) {
	// ONNX doc example maxpool_with_argmax_2d_precomputed_pads, with a second channel
	// and sample so that the flat index spans N and C.
	x := NewTensor(2, 2, 5, 5)
	for i := range x.Data {
		x.Data[i] = float64(i%25 + 1)
	}
	op := buildOp(t, newMaxPool, NodeSpec{Attrs: attrKV{"kernel_shape": []int{5, 5}, "pads": []int{2, 2, 2, 2}}.attrs(), NumOutputs: 2})
	out, err := op.Forward([]*Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	first := []float64{12, 13, 14, 14, 14, 17, 18, 19, 19, 19, 22, 23, 24, 24, 24, 22, 23, 24, 24, 24, 22, 23, 24, 24, 24}
	for pl := 0; pl < 4; pl++ {
		for i, v := range first {
			if got := out[1].Data[pl*25+i]; got != v+float64(pl*25) {
				t.Fatalf("plane %d: Indices[%d] = %v, want %v", pl, i, got, v+float64(pl*25))
			}
		}
	}
	// Backward through the Indices output gives the same as recomputing.
	gy := randTensor(rand.New(rand.NewPCG(1, 1)), out[0].Shape...)
	a, err := op.Backward([]*Tensor{x}, out, []*Tensor{gy, nil}, []bool{true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := op.Backward([]*Tensor{x}, out[:1], []*Tensor{gy}, []bool{true})
	if err != nil {
		t.Fatal(err)
	}
	closeTensors(t, "dX", a[0], b[0], 0)
}

func TestPoolErrors(t *testing.T) {
	ctors := map[string]OpConstructor{"MaxPool": newMaxPool, "AveragePool": newAveragePool}
	badAttrs := []struct {
		name  string
		attrs attrKV
		outs  int
		unsup bool
	}{
		{"no kernel_shape", attrKV{}, 1, false},
		{"3-D kernel", attrKV{"kernel_shape": []int{2, 2, 2}}, 1, true},
		{"ceil_mode 2", attrKV{"kernel_shape": []int{2, 2}, "ceil_mode": 2}, 1, false},
		{"bad auto_pad", attrKV{"kernel_shape": []int{2, 2}, "auto_pad": "FULL"}, 1, false},
	}
	for name, ctor := range ctors {
		for _, c := range badAttrs {
			_, err := ctor(NodeSpec{Attrs: c.attrs.attrs(), NumOutputs: c.outs})
			if err == nil || errors.Is(err, ErrUnsupported) != c.unsup {
				t.Errorf("%s %s: error %v, want unsupported=%v", name, c.name, err, c.unsup)
			}
		}
	}
	if _, err := newMaxPool(NodeSpec{Attrs: attrKV{"kernel_shape": []int{2, 2}, "storage_order": 1}.attrs()}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("MaxPool storage_order 1: error %v, want unsupported", err)
	}
	if _, err := newMaxPool(NodeSpec{Attrs: attrKV{"kernel_shape": []int{2, 2}}.attrs(), NumOutputs: 3}); err == nil {
		t.Errorf("MaxPool with 3 outputs: no error")
	}
	if _, err := newAveragePool(NodeSpec{Attrs: attrKV{"kernel_shape": []int{2, 2}, "count_include_pad": 3}.attrs()}); err == nil {
		t.Errorf("AveragePool count_include_pad 3: no error")
	}

	r := rand.New(rand.NewPCG(1, 3))
	badInputs := []struct {
		name  string
		attrs attrKV
		x     *Tensor
		unsup bool
	}{
		{"rank 3", attrKV{"kernel_shape": []int{2, 2}}, randTensor(r, 1, 4, 4), true},
		{"rank 5", attrKV{"kernel_shape": []int{2, 2}}, randTensor(r, 1, 1, 4, 4, 4), true},
		{"smaller than kernel", attrKV{"kernel_shape": []int{3, 3}}, randTensor(r, 1, 1, 2, 4), false},
		// Kernel 1 with pad 1: the first window sees only padding.
		{"window only padding", attrKV{"kernel_shape": []int{1, 1}, "pads": []int{1, 0, 0, 0}}, randTensor(r, 1, 1, 3, 3), false},
	}
	for name, ctor := range ctors {
		for _, c := range badInputs {
			op, err := ctor(NodeSpec{Attrs: c.attrs.attrs()})
			if err != nil {
				t.Fatalf("%s %s: constructor: %v", name, c.name, err)
			}
			_, err = op.Forward([]*Tensor{c.x})
			if err == nil || errors.Is(err, ErrUnsupported) != c.unsup {
				t.Errorf("%s %s: error %v, want unsupported=%v", name, c.name, err, c.unsup)
			}
			if _, err := op.Backward([]*Tensor{c.x}, nil, []*Tensor{NewTensor(1)}, []bool{true}); err == nil {
				t.Errorf("%s %s: backward gave no error", name, c.name)
			}
		}
	}
	// With count_include_pad the padding-only window is an average of padding: 0.
	op := buildOp(t, newAveragePool, NodeSpec{Attrs: attrKV{"kernel_shape": []int{1, 1}, "pads": []int{1, 0, 0, 0}, "count_include_pad": 1}.attrs()})
	out, err := op.Forward([]*Tensor{seqTensor(1, 1, 1, 2, 2)})
	if err != nil {
		t.Fatal(err)
	}
	closeTensors(t, "padding-only window", out[0], FromData([]float64{0, 0, 1, 2, 3, 4}, 1, 1, 3, 2), 0)

	for _, x := range []*Tensor{randTensor(r, 2, 3), NewTensor(1, 2, 0, 3)} {
		if _, err := (GlobalAveragePool{}).Forward([]*Tensor{x}); err == nil {
			t.Errorf("GlobalAveragePool of %v: no error", x.Shape)
		}
	}
}

func TestGlobalAveragePoolRanks(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, shape := range [][]int{{2, 3, 5}, {2, 3, 4, 5}, {1, 2, 2, 3, 2}} {
		x := randTensor(r, shape...)
		out, err := (GlobalAveragePool{}).Forward([]*Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		area := NumElements(shape[2:])
		for pl := 0; pl < shape[0]*shape[1]; pl++ {
			sum := 0.0
			for _, v := range x.Data[pl*area : (pl+1)*area] {
				sum += v
			}
			if math.Abs(out[0].Data[pl]-sum/float64(area)) > 1e-14 {
				t.Fatalf("shape %v plane %d: %v, want %v", shape, pl, out[0].Data[pl], sum/float64(area))
			}
		}
		if out[0].Rank() != len(shape) || out[0].Len() != shape[0]*shape[1] {
			t.Fatalf("shape %v: output shape %v", shape, out[0].Shape)
		}
		checkOpGrad(t, GlobalAveragePool{}, []*Tensor{x}, []bool{true})
	}
}
