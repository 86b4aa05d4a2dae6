package nets

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// forwardLogits is the reference for Logits: Graph.Forward on the same parts of rows
// that Logits uses (fixedParts of logitsRows), outputs stacked.
func forwardLogits(t *testing.T, g *Graph, x *Tensor) *Tensor {
	t.Helper()
	in, outName, err := g.single()
	if err != nil {
		t.Fatal(err)
	}
	n := x.Shape[0]
	var parts []*Tensor
	for _, p := range fixedParts(n, logitsRows, (n+logitsRows-1)/logitsRows) {
		vals, err := g.Forward(map[string]*Tensor{in.Name: sliceRows(x, p[0], p[1])})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, vals[outName])
	}
	y, err := concatRows(parts)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// firstBitDiff reports the first index where a and b differ bit for bit, or -1.
func firstBitDiff(a, b *Tensor) int {
	if !SameShape(a.Shape, b.Shape) {
		return 0
	}
	for i := range a.Data {
		if math.Float64bits(a.Data[i]) != math.Float64bits(b.Data[i]) {
			return i
		}
	}
	return -1
}

// inferTestGraph exercises every path of the inference schedule: a Conv whose Relu
// is fused, a Conv whose output is read twice (not fused), a Reshape and a Flatten
// (views), a fused Gemm+Relu, an Identity, a generic op (Add) and a Gemm without C.
func inferTestGraph(r *rand.Rand) *Graph {
	conv := Conv{Strides: []int{2, 2}, Pads: []int{1, 1, 1, 1}, Dilations: []int{1, 1}, Group: 1, AutoPad: AutoPadNotSet}
	conv2 := Conv{Strides: []int{1, 1}, Pads: []int{1, 0, 1, 0}, Dilations: []int{1, 1}, Group: 2, AutoPad: AutoPadNotSet}
	return &Graph{
		Inputs:  []ValueInfo{{Name: "x", Shape: []int{-1, 2, 9, 9}}},
		Outputs: []ValueInfo{{Name: "y", Shape: []int{-1, 3}}},
		Params: map[string]*Tensor{
			"w1": randTensor(r, 4, 2, 3, 3), "b1": randTensor(r, 4),
			"w2":    randTensor(r, 4, 2, 3, 2),
			"shape": FromData([]float64{0, -1}, 2),
			"w3":    randTensor(r, 7, 4*5*4), "b3": randTensor(r, 7),
			"w4": randTensor(r, 7, 3),
		},
		Nodes: []*Node{
			{Name: "c1", Op: conv, Inputs: []string{"x", "w1", "b1"}, Outputs: []string{"c1"}},
			{Name: "r1", Op: Relu{}, Inputs: []string{"c1"}, Outputs: []string{"r1"}},
			{Name: "c2", Op: conv2, Inputs: []string{"r1", "w2"}, Outputs: []string{"c2"}},
			{Name: "r2", Op: Relu{}, Inputs: []string{"c2"}, Outputs: []string{"r2"}},
			{Name: "s", Op: Add{}, Inputs: []string{"c2", "r2"}, Outputs: []string{"s"}},
			{Name: "f", Op: Reshape{}, Inputs: []string{"s", "shape"}, Outputs: []string{"f"}},
			{Name: "fl", Op: Flatten{Axis: 1}, Inputs: []string{"f"}, Outputs: []string{"fl"}},
			{Name: "g3", Op: Gemm{TransB: true, Alpha: 1, Beta: 1}, Inputs: []string{"fl", "w3", "b3"}, Outputs: []string{"g3"}},
			{Name: "r3", Op: Relu{}, Inputs: []string{"g3"}, Outputs: []string{"r3"}},
			{Name: "id", Op: Identity{}, Inputs: []string{"r3"}, Outputs: []string{"id"}},
			{Name: "g4", Op: Gemm{Alpha: 0.5, Beta: 1}, Inputs: []string{"id", "w4"}, Outputs: []string{"y"}},
		},
	}
}

// TestLogitsMatchesForward: Logits (the inference schedule, with its buffer reuse,
// fused Relus and views) gives bit for bit the values of Forward on the same rows,
// for the shipped models and a graph with every kind of step, at several batch sizes
// and core counts.
func TestLogitsMatchesForward(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	x, err := ReadNPY("../testdata/mnist-test-1k.npy")
	if err != nil {
		t.Fatal(err)
	}
	type model struct {
		name string
		g    *Graph
		x    *Tensor
	}
	var models []model
	for _, name := range []string{"mnist_mlp", "mnist_cnn"} {
		g, err := ReadONNX("../testdata/" + name + ".onnx")
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, model{name, g, x})
	}
	models = append(models, model{"synthetic", inferTestGraph(r), randTensor(r, 200, 2, 9, 9)})
	for _, m := range models {
		if err := m.g.Validate(); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		for _, batch := range []int{1, 7, 33, 200} {
			xs := sliceRows(m.x, 0, batch)
			want := forwardLogits(t, m.g, xs)
			for _, procs := range []int{1, 2, 3} {
				old := runtime.GOMAXPROCS(procs)
				got, err := m.g.Logits(xs)
				runtime.GOMAXPROCS(old)
				if err != nil {
					t.Fatalf("%s batch %d: %v", m.name, batch, err)
				}
				if i := firstBitDiff(got, want); i >= 0 {
					t.Errorf("%s batch %d GOMAXPROCS %d: Logits differs from Forward at %d (shapes %v, %v)",
						m.name, batch, procs, i, got.Shape, want.Shape)
				}
			}
		}
	}
}

// TestInferSchedule checks which steps take a fast path and which Relus are fused.
func TestInferSchedule(t *testing.T) {
	g := inferTestGraph(rand.New(rand.NewPCG(1, 1)))
	steps := g.inferSchedule()
	want := []struct {
		kind inferKind
		relu bool
	}{
		{inferConv, true}, {inferFused, false}, // c1 + r1
		{inferConv, false}, {inferGeneric, false}, // c2 is read twice: r2 stays
		{inferGeneric, false},                  // Add
		{inferView, false}, {inferView, false}, // Reshape, Flatten
		{inferGemm, true}, {inferFused, false}, // g3 + r3
		{inferView, false}, // Identity
		{inferGemm, false}, // g4: graph output
	}
	if len(steps) != len(want) {
		t.Fatalf("%d steps, want %d", len(steps), len(want))
	}
	for i, w := range want {
		if steps[i].kind != w.kind || steps[i].relu != w.relu {
			t.Errorf("step %d (%s): kind %d relu %v, want %d %v", i, steps[i].node.Name, steps[i].kind, steps[i].relu, w.kind, w.relu)
		}
	}
}

// TestIm2colDefinition compares im2col with its definition, entry by entry, over
// strides, pads, dilations and batch sizes.
func TestIm2colDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	cases := []windowSpec{
		{strides: []int{2, 2}, pads: []int{1, 1, 1, 1}},
		{strides: []int{1, 1}, pads: []int{0, 0, 0, 0}},
		{strides: []int{1, 2}, pads: []int{2, 0, 1, 3}, dilations: []int{2, 1}},
		{strides: []int{3, 1}, pads: []int{0, 2, 2, 0}, dilations: []int{1, 3}},
		{strides: []int{2, 1}, pads: []int{1, 0, 2, 1}, dilations: []int{2, 1}},
	}
	for ci, spec := range cases {
		for _, bs := range []int{1, 3} {
			const ch, h, wd, kh, kw = 2, 7, 6, 3, 2
			win, err := resolveWindow(h, wd, kh, kw, spec, false)
			if err != nil {
				t.Fatal(err)
			}
			x := randTensor(r, bs, ch, h, wd).Data
			p := win.OutH * win.OutW
			col := randTensor(r, ch*kh*kw, bs*p).Data // stale contents must be overwritten
			im2col(col, x, ch, bs, win)
			for c := 0; c < ch; c++ {
				for i := 0; i < kh; i++ {
					for j := 0; j < kw; j++ {
						for s := 0; s < bs; s++ {
							for oh := 0; oh < win.OutH; oh++ {
								for ow := 0; ow < win.OutW; ow++ {
									ih := oh*win.StrideH - win.PadTop + i*win.DilH
									iw := ow*win.StrideW - win.PadLeft + j*win.DilW
									want := 0.0
									if ih >= 0 && ih < h && iw >= 0 && iw < wd {
										want = x[((s*ch+c)*h+ih)*wd+iw]
									}
									got := col[((c*kh+i)*kw+j)*bs*p+s*p+oh*win.OutW+ow]
									if got != want {
										t.Fatalf("case %d bs %d: col[c%d i%d j%d s%d oh%d ow%d] = %v, want %v", ci, bs, c, i, j, s, oh, ow, got, want)
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestReluSpecialValues: Relu and the fused form keep v > 0 and give +0 for
// everything else, NaN and −0 included, and pass gradients only where v > 0.
func TestReluSpecialValues(t *testing.T) {
	in := []float64{1.5, -2, 0, math.Copysign(0, -1), math.NaN(), -math.NaN(), math.Inf(1), math.Inf(-1), 5e-324, -5e-324}
	want := []float64{1.5, 0, 0, 0, 0, 0, math.Inf(1), 0, 5e-324, 0}
	out, err := Relu{}.Forward([]*Tensor{FromData(in, len(in))})
	if err != nil {
		t.Fatal(err)
	}
	fused := make([]float64, len(in))
	biasRelu(fused, in, 0, false, true)
	g := make([]float64, len(in))
	for i := range g {
		g[i] = float64(i + 1)
	}
	dx, err := Relu{}.Backward([]*Tensor{FromData(in, len(in))}, out, []*Tensor{FromData(g, len(g))}, []bool{true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if math.Float64bits(out[0].Data[i]) != math.Float64bits(want[i]) {
			t.Errorf("Relu(%v) = %v, want %v", in[i], out[0].Data[i], want[i])
		}
		if math.Float64bits(fused[i]) != math.Float64bits(want[i]) {
			t.Errorf("biasRelu(%v) = %v, want %v", in[i], fused[i], want[i])
		}
		wg := 0.0
		if in[i] > 0 {
			wg = g[i]
		}
		if dx[0].Data[i] != wg {
			t.Errorf("Relu'(%v)·%v = %v, want %v", in[i], g[i], dx[0].Data[i], wg)
		}
	}
}

// TestConvForwardCoreIndependent: a Conv with small output maps (several samples per
// gemm) and enough work to be split across cores gives the same bits for any
// GOMAXPROCS, in Forward and in the inference path.
func TestConvForwardCoreIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	conv := Conv{Strides: []int{2, 2}, Pads: []int{1, 1, 1, 1}, Dilations: []int{1, 1}, Group: 1, AutoPad: AutoPadNotSet}
	in := []*Tensor{randTensor(r, 301, 16, 6, 6), randTensor(r, 32, 16, 4, 4), randTensor(r, 32)} // 3×3 maps: 7 samples per gemm, K = 256
	var want *Tensor
	for _, procs := range []int{1, 2, 3, 4} {
		old := runtime.GOMAXPROCS(procs)
		out, err := conv.Forward(in)
		var buf, col, tmp []float64
		var inf *Tensor
		if err == nil {
			inf, err = conv.infer(in, &buf, &col, &tmp, false)
		}
		runtime.GOMAXPROCS(old)
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = out[0]
		}
		if i := firstBitDiff(out[0], want); i >= 0 {
			t.Errorf("GOMAXPROCS %d: Forward differs from GOMAXPROCS 1 at %d", procs, i)
		}
		if i := firstBitDiff(inf, want); i >= 0 {
			t.Errorf("GOMAXPROCS %d: infer differs from Forward at %d", procs, i)
		}
	}
}
