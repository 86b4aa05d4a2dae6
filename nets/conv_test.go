package nets

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// naiveConv is the direct seven-loop definition of the ONNX Conv operator, with the
// output size and the leading pads given (the geometry is tested apart).
func naiveConv(x, w, b *Tensor, stride, pad, dil [2]int, group int, out [2]int) *Tensor {
	n, c, h, wd := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	m, cg, kh, kw := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	mg := m / group
	y := NewTensor(n, m, out[0], out[1])
	for s := 0; s < n; s++ {
		for o := 0; o < m; o++ {
			g := o / mg
			for oh := 0; oh < out[0]; oh++ {
				for ow := 0; ow < out[1]; ow++ {
					sum := 0.0
					if b != nil {
						sum = b.Data[o]
					}
					for ci := 0; ci < cg; ci++ {
						for i := 0; i < kh; i++ {
							for j := 0; j < kw; j++ {
								ih := oh*stride[0] - pad[0] + i*dil[0]
								iw := ow*stride[1] - pad[1] + j*dil[1]
								if ih < 0 || ih >= h || iw < 0 || iw >= wd {
									continue
								}
								sum += w.Data[((o*cg+ci)*kh+i)*kw+j] * x.Data[((s*c+g*cg+ci)*h+ih)*wd+iw]
							}
						}
					}
					y.Data[((s*m+o)*out[0]+oh)*out[1]+ow] = sum
				}
			}
		}
	}
	return y
}

// convCases: output sizes and leading pads worked out by hand.
var convCases = []struct {
	name          string
	n, c, h, w, m int
	kh, kw        int
	attrs         attrKV
	bias          bool
	pad, out      [2]int
}{
	{"plain 3x3", 2, 3, 7, 6, 4, 3, 3, attrKV{}, true, [2]int{0, 0}, [2]int{5, 4}},
	// P = 20 pixels: chunks of 3 samples per gemm, so 5 samples make a short last chunk.
	{"batch 5 in chunks of 3", 5, 2, 7, 6, 3, 3, 3, attrKV{}, true, [2]int{0, 0}, [2]int{5, 4}},
	// P = 72 ≥ minGemmCols: one sample per gemm, written straight into Y.
	{"one sample per gemm, groups, pads", 2, 2, 9, 8, 4, 3, 3, attrKV{"group": 2, "pads": []int{1, 1, 1, 1}}, true, [2]int{1, 1}, [2]int{9, 8}},
	{"stride 2 asymmetric pads", 2, 3, 7, 6, 4, 3, 3, attrKV{"strides": []int{2, 2}, "pads": []int{1, 0, 2, 1}}, true, [2]int{1, 0}, [2]int{4, 3}},
	{"dilation 2 pad 2", 1, 2, 7, 6, 3, 3, 3, attrKV{"dilations": []int{2, 2}, "pads": []int{2, 2, 2, 2}}, true, [2]int{2, 2}, [2]int{7, 6}},
	{"groups 2, 2x3 kernel, stride (2,1)", 2, 4, 7, 6, 6, 2, 3, attrKV{"group": 2, "strides": []int{2, 1}, "pads": []int{0, 1, 0, 1}}, true, [2]int{0, 1}, [2]int{3, 6}},
	{"depthwise", 1, 3, 7, 6, 3, 3, 3, attrKV{"group": 3, "pads": []int{1, 1, 1, 1}}, true, [2]int{1, 1}, [2]int{7, 6}},
	{"SAME_UPPER stride 2", 2, 2, 7, 6, 3, 3, 3, attrKV{"auto_pad": AutoPadSameUpper, "strides": []int{2, 2}}, true, [2]int{1, 0}, [2]int{4, 3}},
	{"SAME_LOWER stride 2", 2, 2, 7, 6, 3, 3, 3, attrKV{"auto_pad": AutoPadSameLower, "strides": []int{2, 2}}, true, [2]int{1, 1}, [2]int{4, 3}},
	{"VALID stride 2 dilation 2", 2, 2, 7, 6, 3, 3, 3, attrKV{"auto_pad": AutoPadValid, "strides": []int{2, 2}, "dilations": []int{2, 2}}, true, [2]int{0, 0}, [2]int{2, 1}},
	{"no bias, kernel_shape given", 2, 3, 7, 6, 4, 3, 3, attrKV{"kernel_shape": []int{3, 3}}, false, [2]int{0, 0}, [2]int{5, 4}},
	{"1x1 stride 2", 2, 3, 7, 6, 2, 1, 1, attrKV{"strides": []int{2, 2}}, true, [2]int{0, 0}, [2]int{4, 3}},
	{"stride 3 dilation (1,2) pads", 1, 2, 8, 9, 2, 2, 3, attrKV{"strides": []int{3, 2}, "dilations": []int{1, 2}, "pads": []int{2, 1, 0, 3}}, true, [2]int{2, 1}, [2]int{3, 5}},
}

func convInputsFor(r *rand.Rand, n, c, h, w, m, cg, kh, kw int, bias bool) []*Tensor {
	in := []*Tensor{randTensor(r, n, c, h, w), randTensor(r, m, cg, kh, kw)}
	if bias {
		in = append(in, randTensor(r, m))
	}
	return in
}

func TestConvForwardMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			spec := NodeSpec{Attrs: tc.attrs.attrs()}
			op := buildOp(t, newConv, spec)
			g := op.(Conv).Group
			in := convInputsFor(r, tc.n, tc.c, tc.h, tc.w, tc.m, tc.c/g, tc.kh, tc.kw, tc.bias)
			out, err := op.Forward(in)
			if err != nil {
				t.Fatal(err)
			}
			var b *Tensor
			if tc.bias {
				b = in[2]
			}
			cv := op.(Conv)
			want := naiveConv(in[0], in[1], b, [2]int{cv.Strides[0], cv.Strides[1]}, tc.pad,
				[2]int{cv.Dilations[0], cv.Dilations[1]}, g, tc.out)
			closeTensors(t, "Y", out[0], want, 1e-12)
			checkRoundTrip(t, newConv, op, spec)
		})
	}
}

func TestConvGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			op := buildOp(t, newConv, NodeSpec{Attrs: tc.attrs.attrs()})
			g := op.(Conv).Group
			in := convInputsFor(r, tc.n, tc.c, tc.h, tc.w, tc.m, tc.c/g, tc.kh, tc.kw, tc.bias)
			need := make([]bool, len(in))
			for i := range need {
				need[i] = true
			}
			checkOpGrad(t, op, in, need)
			// Each gradient alone must equal the same gradient computed with the others.
			all, err := op.Backward(in, nil, []*Tensor{randTensor(rand.New(rand.NewPCG(3, 3)), tc.n, tc.m, tc.out[0], tc.out[1])}, need)
			if err != nil {
				t.Fatal(err)
			}
			for i := range in {
				one := make([]bool, len(in))
				one[i] = true
				got, err := op.Backward(in, nil, []*Tensor{randTensor(rand.New(rand.NewPCG(3, 3)), tc.n, tc.m, tc.out[0], tc.out[1])}, one)
				if err != nil {
					t.Fatal(err)
				}
				for j := range in {
					if j != i && got[j] != nil {
						t.Fatalf("input %d: gradient %d computed without being needed", i, j)
					}
				}
				closeTensors(t, fmt.Sprintf("gradient %d alone", i), got[i], all[i], 1e-12)
			}
		})
	}
}

// TestConvHand checks the worked examples of the ONNX Conv documentation: X = 0…24
// as 5×5, W = ones 3×3, so each output is the sum of its receptive field.
func TestConvHand(t *testing.T) {
	cases := []struct {
		name  string
		attrs attrKV
		want  []float64
		h, w  int
	}{
		{"pads 1", attrKV{"pads": []int{1, 1, 1, 1}}, []float64{
			12, 21, 27, 33, 24,
			33, 54, 63, 72, 51,
			63, 99, 108, 117, 81,
			93, 144, 153, 162, 111,
			72, 111, 117, 123, 84}, 5, 5},
		{"no pads", attrKV{}, []float64{54, 63, 72, 99, 108, 117, 144, 153, 162}, 3, 3},
		{"stride 2 pads 1", attrKV{"strides": []int{2, 2}, "pads": []int{1, 1, 1, 1}}, []float64{12, 27, 24, 63, 108, 81, 72, 117, 84}, 3, 3},
	}
	x := seqTensor(0, 1, 1, 5, 5)
	w := NewTensor(1, 1, 3, 3)
	for i := range w.Data {
		w.Data[i] = 1
	}
	for _, c := range cases {
		op := buildOp(t, newConv, NodeSpec{Attrs: c.attrs.attrs()})
		out, err := op.Forward([]*Tensor{x, w})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		closeTensors(t, c.name, out[0], FromData(c.want, 1, 1, c.h, c.w), 0)
	}
}

// TestConvLarge runs a convolution with large maps, one sample per gemm, against the
// naive loops, and its backward against a per-sample run.
func TestConvLarge(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	x, w, b := randTensor(r, 3, 16, 32, 32), randTensor(r, 2, 16, 8, 8), randTensor(r, 2)
	op := buildOp(t, newConv, NodeSpec{Attrs: attrKV{"pads": []int{4, 4, 3, 3}}.attrs()})
	out, err := op.Forward([]*Tensor{x, w, b})
	if err != nil {
		t.Fatal(err)
	}
	closeTensors(t, "Y", out[0], naiveConv(x, w, b, [2]int{1, 1}, [2]int{4, 4}, [2]int{1, 1}, 1, [2]int{32, 32}), 1e-11)
	// Backward of the batch against the sum of per-sample backward runs.
	gy := randTensor(r, 3, 2, 32, 32)
	all, err := op.Backward([]*Tensor{x, w, b}, out, []*Tensor{gy}, []bool{true, true, true})
	if err != nil {
		t.Fatal(err)
	}
	dw := NewTensor(w.Shape...)
	for s := 0; s < 3; s++ {
		one, err := op.Backward([]*Tensor{x.Row(s), w, b}, nil, []*Tensor{gy.Row(s)}, []bool{true, true, false})
		if err != nil {
			t.Fatal(err)
		}
		closeTensors(t, "dX row", one[0], FromData(all[0].Data[s*16*1024:(s+1)*16*1024], 1, 16, 32, 32), 1e-11)
		for i, v := range one[1].Data {
			dw.Data[i] += v
		}
	}
	closeTensors(t, "dW", all[1], dw, 1e-10)
}

func TestConvErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	cases := []struct {
		name  string
		attrs attrKV
		in    []*Tensor
		unsup bool
	}{
		{"rank 3 input", attrKV{}, []*Tensor{randTensor(r, 1, 2, 5), randTensor(r, 1, 2, 3)}, true},
		{"rank 5 input", attrKV{}, []*Tensor{randTensor(r, 1, 1, 3, 3, 3), randTensor(r, 1, 1, 2, 2, 2)}, true},
		{"channels mismatch", attrKV{}, []*Tensor{randTensor(r, 1, 3, 5, 5), randTensor(r, 2, 2, 3, 3)}, false},
		{"group does not divide M", attrKV{"group": 2}, []*Tensor{randTensor(r, 1, 4, 5, 5), randTensor(r, 3, 2, 3, 3)}, false},
		{"kernel_shape disagrees", attrKV{"kernel_shape": []int{2, 2}}, []*Tensor{randTensor(r, 1, 1, 5, 5), randTensor(r, 1, 1, 3, 3)}, false},
		{"bias shape", attrKV{}, []*Tensor{randTensor(r, 1, 1, 5, 5), randTensor(r, 2, 1, 3, 3), randTensor(r, 3)}, false},
		{"input smaller than kernel", attrKV{}, []*Tensor{randTensor(r, 1, 1, 2, 5), randTensor(r, 1, 1, 3, 3)}, false},
		{"missing weights", attrKV{}, []*Tensor{randTensor(r, 1, 1, 5, 5), nil}, false},
		{"one input", attrKV{}, []*Tensor{randTensor(r, 1, 1, 5, 5)}, false},
	}
	for _, c := range cases {
		op := buildOp(t, newConv, NodeSpec{Attrs: c.attrs.attrs()})
		_, err := op.Forward(c.in)
		if err == nil {
			t.Errorf("%s: forward gave no error", c.name)
			continue
		}
		if errors.Is(err, ErrUnsupported) != c.unsup {
			t.Errorf("%s: %v: unsupported=%v, want %v", c.name, err, !c.unsup, c.unsup)
		}
		if _, err := op.Backward(c.in, nil, []*Tensor{NewTensor(1)}, []bool{true, true, true}); err == nil {
			t.Errorf("%s: backward gave no error", c.name)
		}
	}
	for _, a := range []attrKV{{"group": 0}, {"kernel_shape": []int{3, 3, 3}}, {"auto_pad": "SAME"}} {
		if _, err := newConv(NodeSpec{Attrs: a.attrs()}); err == nil {
			t.Errorf("attributes %v: no error", a)
		}
	}
	if _, err := newConv(NodeSpec{Attrs: NewAttrs(), NumInputs: 1}); err == nil {
		t.Errorf("one input: no error")
	}
}

// BenchmarkConvForward: an MNIST first layer, batch 64, 1→16 channels, 28×28,
// 4×4 kernel, stride 2 (output 13×13).
func BenchmarkConvForward(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	in := []*Tensor{randTensor(r, 64, 1, 28, 28), randTensor(r, 16, 1, 4, 4), randTensor(r, 16)}
	op, err := newConv(NodeSpec{Attrs: attrKV{"strides": []int{2, 2}}.attrs()})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := op.Forward(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConvBackward: the same layer, gradients for input, weights and bias.
func BenchmarkConvBackward(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	in := []*Tensor{randTensor(r, 64, 1, 28, 28), randTensor(r, 16, 1, 4, 4), randTensor(r, 16)}
	op, err := newConv(NodeSpec{Attrs: attrKV{"strides": []int{2, 2}}.attrs()})
	if err != nil {
		b.Fatal(err)
	}
	gy := []*Tensor{randTensor(r, 64, 16, 13, 13)}
	for b.Loop() {
		if _, err := op.Backward(in, nil, gy, []bool{true, true, true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConvForward32: a second MNIST layer, batch 64, 16→32 channels, 14×14,
// 3×3 kernel, pads 1 (K = 144, the size where gemm dominates).
func BenchmarkConvForward32(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	in := []*Tensor{randTensor(r, 64, 16, 14, 14), randTensor(r, 32, 16, 3, 3), randTensor(r, 32)}
	op, err := newConv(NodeSpec{Attrs: attrKV{"pads": []int{1, 1, 1, 1}}.attrs()})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := op.Forward(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDgemm times gemm at the sizes of an MLP's first layer (256×784 · 784×100)
// and a CNN's first dense layer (64×3136 · 3136×100).
func BenchmarkDgemm(b *testing.B) {
	for _, s := range []struct{ m, k, n int }{{256, 784, 100}, {64, 3136, 100}} {
		b.Run(fmt.Sprintf("%dx%dx%d", s.m, s.k, s.n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 4))
			a, w := randTensor(r, s.m, s.k), randTensor(r, s.k, s.n)
			c := make([]float64, s.m*s.n)
			iters := 0
			for b.Loop() {
				gemm(false, false, s.m, s.n, s.k, 1, a.Data, s.k, w.Data, s.n, 0, c, s.n)
				iters++
			}
			b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(iters)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func TestConvChunk(t *testing.T) {
	cases := []struct{ n, rows, p, want int }{
		{64, 16, 169, 1},    // big maps: one sample at a time
		{64, 16, 20, 3},     // 64/20 samples per gemm
		{64, 144, 1, 64},    // 1×1 maps: the whole minGemmCols batch
		{2, 144, 1, 2},      // never more than the batch
		{64, 1 << 19, 1, 2}, // memory cap: 2·2^19 = maxColElems
		{4, 1 << 21, 1, 1},  // at least one sample, even over the cap
	}
	for _, c := range cases {
		if got := convChunk(c.n, c.rows, c.p); got != c.want {
			t.Errorf("convChunk(%d, %d, %d) = %d, want %d", c.n, c.rows, c.p, got, c.want)
		}
	}
}
