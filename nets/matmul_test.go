package nets

import (
	"math/rand/v2"
	"testing"
)

// naiveMatMul follows numpy.matmul literally: promote 1-D operands, loop over every
// output element, map batch indices through the broadcasting rule, drop promotions.
func naiveMatMul(a, b *Tensor) *Tensor {
	as, bs := a.Shape, b.Shape
	if len(as) == 1 {
		as = []int{1, as[0]}
	}
	if len(bs) == 1 {
		bs = []int{bs[0], 1}
	}
	m, k, n := as[len(as)-2], as[len(as)-1], bs[len(bs)-1]
	batch, err := broadcastShape(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		panic(err)
	}
	full := append(append([]int(nil), batch...), m, n)
	y := NewTensor(full...)
	for p := range y.Data {
		idx := unravel(p, full)
		bi := idx[:len(batch)]
		i, j := idx[len(batch)], idx[len(batch)+1]
		ia := bcastIndex(bi, as[:len(as)-2])
		ib := bcastIndex(bi, bs[:len(bs)-2])
		s := 0.0
		for l := 0; l < k; l++ {
			s += a.Data[ia*m*k+i*k+l] * b.Data[ib*k*n+l*n+j]
		}
		y.Data[p] = s
	}
	out := append([]int(nil), batch...)
	if len(a.Shape) > 1 {
		out = append(out, m)
	}
	if len(b.Shape) > 1 {
		out = append(out, n)
	}
	return FromData(y.Data, out...)
}

var matmulCases = []struct {
	a, b, out []int
}{
	{[]int{3, 4}, []int{4, 5}, []int{3, 5}},
	{[]int{6, 8}, []int{8, 1}, []int{6, 1}},                // weight on the left, column input
	{[]int{1, 8}, []int{8, 6}, []int{1, 6}},                // row input, weight on the right
	{[]int{2, 3, 4}, []int{4, 5}, []int{2, 3, 5}},          // batched A, one B: flat path
	{[]int{3, 4}, []int{2, 4, 5}, []int{2, 3, 5}},          // one A, batched B
	{[]int{2, 1, 3, 4}, []int{3, 4, 2}, []int{2, 3, 3, 2}}, // batch broadcast both ways
	{[]int{4}, []int{4, 5}, []int{5}},
	{[]int{3, 4}, []int{4}, []int{3}},
	{[]int{4}, []int{4}, []int{}},
	{[]int{4}, []int{2, 4, 3}, []int{2, 3}},
	{[]int{2, 3, 4}, []int{4}, []int{2, 3}},
	{[]int{1, 3, 4}, []int{2, 4, 2}, []int{2, 3, 2}},
}

func TestMatMulMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 15))
	for _, c := range matmulCases {
		a, b := randTensor(r, c.a...), randTensor(r, c.b...)
		y, err := MatMul{}.Forward([]*Tensor{a, b})
		if err != nil {
			t.Fatalf("%v·%v: %v", c.a, c.b, err)
		}
		if !SameShape(y[0].Shape, c.out) {
			t.Fatalf("%v·%v: shape %v, want %v", c.a, c.b, y[0].Shape, c.out)
		}
		assertClose(t, "MatMul "+fmtShape(c.a)+fmtShape(c.b), y[0], naiveMatMul(a, b), 1e-13)
		t.Run(fmtShape(c.a)+fmtShape(c.b), func(t *testing.T) {
			checkOpGrad(t, MatMul{}, []*Tensor{a, b}, []bool{true, true})
		})
	}
}

func TestMatMulHandValues(t *testing.T) {
	// W[2,3]·x[3,1] and the same product written x[1,3]·Wᵀ[3,2].
	w := FromData([]float64{1, 2, 3, 4, 5, 6}, 2, 3)
	x := FromData([]float64{1, 0, -1}, 3, 1)
	y, err := MatMul{}.Forward([]*Tensor{w, x})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "W·x", y[0], FromData([]float64{-2, -2}, 2, 1), 0)
	wt := FromData([]float64{1, 4, 2, 5, 3, 6}, 3, 2)
	y, err = MatMul{}.Forward([]*Tensor{FromData([]float64{1, 0, -1}, 1, 3), wt})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "x·Wᵀ", y[0], FromData([]float64{-2, -2}, 1, 2), 0)
}

func TestMatMulErrors(t *testing.T) {
	cases := []struct {
		a, b []int
		want string
	}{
		{[]int{2, 3}, []int{4, 5}, "MatMul: A is [2,3] but B is [4,5]: inner dimensions 3 and 4 differ"},
		{[]int{3}, []int{4}, "MatMul: A is [3] but B is [4]: inner dimensions 3 and 4 differ"},
		{[]int{}, []int{4}, "MatMul: A is [] and B is [4]; scalars are not allowed"},
		{[]int{2, 3, 4}, []int{3, 4, 5}, "MatMul: A is [2,3,4], B is [3,4,5]: batch shapes [2] and [3] do not broadcast: dimension 0 is 2 vs 3"},
	}
	for _, c := range cases {
		_, err := MatMul{}.Forward([]*Tensor{NewTensor(c.a...), NewTensor(c.b...)})
		if err == nil || err.Error() != c.want {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}

func TestMatMulEmpty(t *testing.T) {
	for _, c := range [][2][]int{{{2, 0}, {0, 3}}, {{0, 4}, {4, 3}}, {{2, 0, 4}, {4, 3}}, {{2, 4}, {0, 4, 3}}, {{3, 0}, {2, 0, 5}}} {
		in := []*Tensor{NewTensor(c[0]...), NewTensor(c[1]...)}
		y, err := MatMul{}.Forward(in)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "MatMul empty", y[0], naiveMatMul(in[0], in[1]), 0)
		g, err := MatMul{}.Backward(in, y, []*Tensor{NewTensor(y[0].Shape...)}, []bool{true, true})
		if err != nil || !SameShape(g[0].Shape, c[0]) || !SameShape(g[1].Shape, c[1]) {
			t.Fatalf("MatMul empty backward %v: %v, %v", c, g, err)
		}
	}
}

func BenchmarkMatMul(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	in := []*Tensor{randTensor(r, 100, 784), randTensor(r, 784, 256)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (MatMul{}).Forward(in); err != nil {
			b.Fatal(err)
		}
	}
}
