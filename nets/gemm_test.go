package nets

import (
	"math"
	"math/rand/v2"
	"testing"
)

// naiveGemm computes alpha·A'·B' + beta·C with explicit loops and index arithmetic.
func naiveGemm(a, b, c *Tensor, transA, transB bool, alpha, beta float64) *Tensor {
	at := func(i, k int) float64 {
		if transA {
			return a.Data[k*a.Shape[1]+i]
		}
		return a.Data[i*a.Shape[1]+k]
	}
	bt := func(k, j int) float64 {
		if transB {
			return b.Data[j*b.Shape[1]+k]
		}
		return b.Data[k*b.Shape[1]+j]
	}
	m, k := a.Shape[0], a.Shape[1]
	if transA {
		m, k = k, m
	}
	n := b.Shape[1]
	if transB {
		n = b.Shape[0]
	}
	y := NewTensor(m, n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for l := 0; l < k; l++ {
				s += at(i, l) * bt(l, j)
			}
			y.Data[i*n+j] = alpha * s
			if c != nil {
				y.Data[i*n+j] += beta * c.Data[bcastIndex([]int{i, j}, c.Shape)]
			}
		}
	}
	return y
}

func TestGemmHandValues(t *testing.T) {
	// [1 2; 3 4]·[5 6; 7 8] = [19 22; 43 50]; with alpha 2, beta 3, C = [1, -1]:
	// [41 41; 89 97].
	a := FromData([]float64{1, 2, 3, 4}, 2, 2)
	b := FromData([]float64{5, 6, 7, 8}, 2, 2)
	c := FromData([]float64{1, -1}, 2)
	y, err := Gemm{Alpha: 2, Beta: 3}.Forward([]*Tensor{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "Gemm", y[0], FromData([]float64{41, 41, 89, 97}, 2, 2), 0)
	// A fully connected layer, x·Wᵀ + b with W [3,2]: transB.
	w := FromData([]float64{1, 0, 0, 1, 1, 1}, 3, 2)
	bias := FromData([]float64{0.5, 0, -1}, 3)
	y, err = Gemm{TransB: true, Alpha: 1, Beta: 1}.Forward([]*Tensor{a, w, bias})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "Gemm transB", y[0], FromData([]float64{1.5, 2, 2, 3.5, 4, 6}, 2, 3), 0)
}

func gemmCases() []struct {
	name           string
	transA, transB bool
	alpha, beta    float64
	a, b, c        []int
} {
	return []struct {
		name           string
		transA, transB bool
		alpha, beta    float64
		a, b, c        []int
	}{
		{"plain", false, false, 1, 1, []int{3, 4}, []int{4, 5}, nil},
		{"bias", false, true, 1, 1, []int{3, 4}, []int{5, 4}, []int{5}},
		{"transA", true, false, 0.5, 2, []int{4, 3}, []int{4, 5}, []int{3, 5}},
		{"both", true, true, -1.5, 0.25, []int{4, 3}, []int{5, 4}, []int{3, 1}},
		{"rowC", false, false, 2, -1, []int{3, 4}, []int{4, 5}, []int{1, 5}},
		{"scalarC", false, true, 1, 3, []int{1, 4}, []int{5, 4}, []int{}},
		{"oneC", false, false, 1, 1, []int{3, 4}, []int{4, 5}, []int{1}},
	}
}

func TestGemmMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	for _, c := range gemmCases() {
		op := Gemm{TransA: c.transA, TransB: c.transB, Alpha: c.alpha, Beta: c.beta}
		in := []*Tensor{randTensor(r, c.a...), randTensor(r, c.b...)}
		var ct *Tensor
		if c.c != nil {
			ct = randTensor(r, c.c...)
			in = append(in, ct)
		}
		y, err := op.Forward(in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		assertClose(t, "Gemm "+c.name, y[0], naiveGemm(in[0], in[1], ct, c.transA, c.transB, c.alpha, c.beta), 1e-13)
		need := make([]bool, len(in))
		for i := range need {
			need[i] = true
		}
		t.Run(c.name, func(t *testing.T) { checkOpGrad(t, op, in, need) })
	}
}

func TestGemmViaConstructor(t *testing.T) {
	spec := NodeSpec{Attrs: NewAttrs(), Opset: 13}
	spec.Attrs.SetInt("transB", 1)
	spec.Attrs.SetFloat("alpha", 0.5)
	op, err := newGemm(spec)
	if err != nil {
		t.Fatal(err)
	}
	want := Gemm{TransB: true, Alpha: 0.5, Beta: 1}
	if op != want {
		t.Fatalf("newGemm: %+v, want %+v", op, want)
	}
	back, err := newGemm(NodeSpec{Attrs: op.Attrs(), Opset: 13})
	if err != nil || back != op {
		t.Fatalf("Attrs round trip: %+v, %v", back, err)
	}
}

func TestGemmErrors(t *testing.T) {
	cases := []struct {
		op   Gemm
		in   []*Tensor
		want string
	}{
		{Gemm{Alpha: 1, Beta: 1}, []*Tensor{NewTensor(2, 3), NewTensor(4, 5)}, "Gemm: A is [2,3] but B is [4,5] (transB=0)"},
		{Gemm{TransA: true, TransB: true, Alpha: 1}, []*Tensor{NewTensor(2, 3), NewTensor(4, 5)}, "Gemm: A is [2,3] (transA=1) but B is [4,5] (transB=1)"},
		{Gemm{}, []*Tensor{NewTensor(2, 3, 1), NewTensor(3, 5)}, "Gemm: A must be 2-D, got [2,3,1]"},
		{Gemm{}, []*Tensor{NewTensor(2, 3), NewTensor(3)}, "Gemm: B must be 2-D, got [3]"},
		{Gemm{}, []*Tensor{NewTensor(2, 3), NewTensor(3, 5), NewTensor(4)}, "Gemm: C is [4], which does not broadcast to [M,N] = [2,5]"},
		{Gemm{}, []*Tensor{NewTensor(2, 3), NewTensor(3, 5), NewTensor(3, 2, 5)}, "Gemm: C is [3,2,5], which does not broadcast to [M,N] = [2,5]"},
		{Gemm{}, []*Tensor{NewTensor(2, 3)}, "Gemm: got 1 inputs, want 2 to 3"},
	}
	for _, c := range cases {
		_, err := c.op.Forward(c.in)
		if err == nil || err.Error() != c.want {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}

// TestGemmEmpty: zero-sized dimensions give empty or bias-only results, not panics.
func TestGemmEmpty(t *testing.T) {
	y, err := Gemm{Alpha: 1, Beta: 2}.Forward([]*Tensor{NewTensor(2, 0), NewTensor(0, 3), FromData([]float64{1, 2, 3}, 3)})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "Gemm K=0", y[0], FromData([]float64{2, 4, 6, 2, 4, 6}, 2, 3), 0)
	in := []*Tensor{NewTensor(0, 4), NewTensor(4, 3)}
	y, err = Gemm{Alpha: 1}.Forward(in)
	if err != nil || !SameShape(y[0].Shape, []int{0, 3}) {
		t.Fatalf("Gemm M=0: %v, %v", y, err)
	}
	g, err := Gemm{Alpha: 1}.Backward(in, y, []*Tensor{NewTensor(0, 3)}, []bool{true, true})
	if err != nil || g[1].Len() != 12 || g[1].Data[0] != 0 {
		t.Fatalf("Gemm M=0 backward: %v, %v", g, err)
	}
}

// BenchmarkGemm: a 784→256 dense layer on a batch of 100, as W[256,784]·X[784,100].
func BenchmarkGemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	in := []*Tensor{randTensor(r, 256, 784), randTensor(r, 784, 100)}
	op := Gemm{Alpha: 1, Beta: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := op.Forward(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*256*784*100*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkGemmBackward: the gradients of the same layer, as in training.
func BenchmarkGemmBackward(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	in := []*Tensor{randTensor(r, 256, 784), randTensor(r, 784, 100)}
	op := Gemm{Alpha: 1, Beta: 1}
	g := []*Tensor{randTensor(r, 256, 100)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := op.Backward(in, nil, g, []bool{true, true}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDenseGraphGrad runs the ops inside a Graph (a two-layer net in the two common
// export styles, Gemm and MatMul+Add) and checks Graph.Backward's gradients for the
// input and every parameter against central differences of the cross-entropy loss.
func TestDenseGraphGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(30, 31))
	g := &Graph{
		Inputs:  []ValueInfo{{Name: "x"}},
		Outputs: []ValueInfo{{Name: "logits"}},
		Params: map[string]*Tensor{
			"W1": randTensor(r, 4, 3), "b1": randTensor(r, 4),
			"W2": randTensor(r, 4, 2), "b2": randTensor(r, 2),
		},
		Nodes: []*Node{
			{Name: "fc1", Op: Gemm{TransB: true, Alpha: 1, Beta: 1}, Inputs: []string{"x", "W1", "b1"}, Outputs: []string{"h"}},
			{Name: "act", Op: Tanh{}, Inputs: []string{"h"}, Outputs: []string{"a"}},
			{Name: "fc2", Op: MatMul{}, Inputs: []string{"a", "W2"}, Outputs: []string{"z"}},
			{Name: "bias", Op: Add{}, Inputs: []string{"z", "b2"}, Outputs: []string{"logits"}},
		},
	}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	x := randTensor(r, 2, 3)
	labels := []int{0, 1}
	loss := func() float64 {
		vals, err := g.Forward(map[string]*Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		v, _, err := CrossEntropy{}.Eval(vals["logits"], labels)
		if err != nil {
			t.Fatal(err)
		}
		return v[0] + v[1]
	}
	vals, err := g.Forward(map[string]*Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	_, dz, err := CrossEntropy{}.Eval(vals["logits"], labels)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := g.Backward(vals, map[string]*Tensor{"logits": dz}, true)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]*Tensor{"x": x}
	for k, v := range g.Params {
		values[k] = v
	}
	const h = 1e-6
	for name, v := range values {
		gr, ok := grads[name]
		if !ok || !SameShape(gr.Shape, v.Shape) {
			t.Fatalf("%s: gradient %v", name, gr)
		}
		for i := range v.Data {
			old := v.Data[i]
			v.Data[i] = old + h
			lp := loss()
			v.Data[i] = old - h
			lm := loss()
			v.Data[i] = old
			if num := (lp - lm) / (2 * h); math.Abs(num-gr.Data[i]) > 1e-6 {
				t.Errorf("d loss / d %s[%d]: backward %.8g, finite difference %.8g", name, i, gr.Data[i], num)
			}
		}
	}
}
