package nets

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// unravel returns the multi-index of flat position k in a row-major shape.
func unravel(k int, shape []int) []int {
	idx := make([]int, len(shape))
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] > 0 {
			idx[i] = k % shape[i]
			k /= shape[i]
		}
	}
	return idx
}

// bcastIndex maps a multi-index of the broadcast output to the flat index of an
// operand of the given shape, straight from the numpy rule: align at the back, a
// dimension of size 1 always reads index 0.
func bcastIndex(outIdx, shape []int) int {
	off := len(outIdx) - len(shape)
	flat := 0
	for i, d := range shape {
		j := outIdx[off+i]
		if d == 1 {
			j = 0
		}
		flat = flat*d + j
	}
	return flat
}

// naiveBinary is the reference for Add/Sub/Mul/Div: one output element at a time.
func naiveBinary(a, b *Tensor, out []int, f func(x, y float64) float64) *Tensor {
	y := NewTensor(out...)
	for k := range y.Data {
		idx := unravel(k, out)
		y.Data[k] = f(a.Data[bcastIndex(idx, a.Shape)], b.Data[bcastIndex(idx, b.Shape)])
	}
	return y
}

func assertClose(t *testing.T, what string, got, want *Tensor, tol float64) {
	t.Helper()
	if !SameShape(got.Shape, want.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	for i := range want.Data {
		if got.Data[i] == want.Data[i] {
			continue
		}
		if d := math.Abs(got.Data[i] - want.Data[i]); !(d <= tol*math.Max(1, math.Abs(want.Data[i]))) {
			t.Fatalf("%s: element %d = %.17g, want %.17g", what, i, got.Data[i], want.Data[i])
		}
	}
}

var broadcastCases = []struct {
	a, b, out []int
}{
	{[]int{2, 3}, []int{2, 3}, []int{2, 3}},
	{[]int{4, 5}, []int{5}, []int{4, 5}},                   // bias
	{[]int{5}, []int{4, 5}, []int{4, 5}},                   // bias on the left
	{[]int{2, 3, 4, 5}, []int{3, 1, 1}, []int{2, 3, 4, 5}}, // per-channel
	{[]int{3, 1}, []int{1, 4}, []int{3, 4}},                // outer product
	{[]int{2, 3, 4}, []int{}, []int{2, 3, 4}},              // scalar
	{[]int{}, []int{3}, []int{3}},
	{[]int{}, []int{}, []int{}},
	{[]int{2, 1, 4}, []int{3, 1}, []int{2, 3, 4}}, // both stretched, different ranks
	{[]int{1, 3, 1, 2}, []int{2, 1, 5, 1}, []int{2, 3, 5, 2}},
	{[]int{1, 1}, []int{1}, []int{1, 1}},
	{[]int{0, 3}, []int{1, 3}, []int{0, 3}}, // empty
	{[]int{2, 1}, []int{2, 0}, []int{2, 0}},
}

func TestBinaryForwardMatchesNaive(t *testing.T) {
	ops := []struct {
		op Op
		f  func(x, y float64) float64
	}{
		{Add{}, func(x, y float64) float64 { return x + y }},
		{Sub{}, func(x, y float64) float64 { return x - y }},
		{Mul{}, func(x, y float64) float64 { return x * y }},
		{Div{}, func(x, y float64) float64 { return x / y }},
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range broadcastCases {
		a, b := randTensor(r, c.a...), randTensor(r, c.b...)
		for _, o := range ops {
			got, err := o.op.Forward([]*Tensor{a, b})
			if err != nil {
				t.Fatalf("%s %v %v: %v", o.op.OpType(), c.a, c.b, err)
			}
			want := naiveBinary(a, b, c.out, o.f)
			assertClose(t, o.op.OpType()+" "+fmtShape(c.a)+"∘"+fmtShape(c.b), got[0], want, 0)
		}
	}
}

func TestBinaryHandValues(t *testing.T) {
	x := FromData([]float64{1, 2, 3, 4, 5, 6}, 2, 3)
	bias := FromData([]float64{10, 20, 30}, 3)
	col := FromData([]float64{2, 4}, 2, 1)
	cases := []struct {
		op   Op
		a, b *Tensor
		want []float64
	}{
		{Add{}, x, bias, []float64{11, 22, 33, 14, 25, 36}},
		{Sub{}, bias, x, []float64{9, 18, 27, 6, 15, 24}},
		{Mul{}, x, col, []float64{2, 4, 6, 16, 20, 24}},
		{Div{}, x, col, []float64{0.5, 1, 1.5, 1, 1.25, 1.5}},
		{Div{}, x, Scalar(0), []float64{math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1)}},
	}
	for _, c := range cases {
		y, err := c.op.Forward([]*Tensor{c.a, c.b})
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, c.op.OpType(), y[0], FromData(c.want, 2, 3), 0)
	}
}

func TestBinaryGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range broadcastCases {
		for _, op := range []Op{Add{}, Sub{}, Mul{}, Div{}} {
			a, b := randTensor(r, c.a...), randTensor(r, c.b...)
			if _, ok := op.(Div); ok {
				for i, v := range b.Data { // keep the divisor away from 0
					b.Data[i] = math.Copysign(1+math.Abs(v), v)
				}
			}
			t.Run(op.OpType()+fmtShape(c.a)+fmtShape(c.b), func(t *testing.T) {
				checkOpGrad(t, op, []*Tensor{a, b}, []bool{true, true})
			})
		}
	}
}

// TestBinaryGradHand checks the reduction of a bias gradient by hand: y = x + b with
// b [3] on x [2,3] gives ∂L/∂b = column sums of g.
func TestBinaryGradHand(t *testing.T) {
	x, b := NewTensor(2, 3), NewTensor(3)
	g := FromData([]float64{1, 2, 3, 10, 20, 30}, 2, 3)
	gr, err := Add{}.Backward([]*Tensor{x, b}, nil, []*Tensor{g}, []bool{true, true})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "dx", gr[0], g, 0)
	assertClose(t, "db", gr[1], FromData([]float64{11, 22, 33}, 3), 0)
	if &gr[0].Data[0] == &g.Data[0] {
		t.Error("Add backward returned the caller's gradient buffer")
	}
	// Only the needed gradient is computed.
	gr, err = Mul{}.Backward([]*Tensor{x, b}, nil, []*Tensor{g}, []bool{false, true})
	if err != nil {
		t.Fatal(err)
	}
	if gr[0] != nil || gr[1] == nil {
		t.Errorf("need {false,true}: got %v", gr)
	}
}

func TestBroadcastPlanMerges(t *testing.T) {
	cases := []struct {
		a, b   []int
		dims   []int
		sa, sb []int
	}{
		{[]int{8, 16}, []int{8, 16}, []int{128}, []int{1}, []int{1}},
		{[]int{8, 16}, []int{16}, []int{8, 16}, []int{16, 1}, []int{0, 1}},
		{[]int{2, 3, 4, 5}, []int{3, 1, 1}, []int{2, 3, 20}, []int{60, 20, 1}, []int{0, 1, 0}},
		{[]int{2, 3}, []int{}, []int{6}, []int{1}, []int{0}},
		{[]int{1, 1}, []int{1}, []int{1}, []int{0}, []int{0}},
	}
	for _, c := range cases {
		p, err := planBroadcast(c.a, c.b)
		if err != nil {
			t.Fatal(err)
		}
		if !SameShape(p.dims, c.dims) || !SameShape(p.sa, c.sa) || !SameShape(p.sb, c.sb) {
			t.Errorf("%v∘%v: dims %v sa %v sb %v, want %v %v %v", c.a, c.b, p.dims, p.sa, p.sb, c.dims, c.sa, c.sb)
		}
	}
}

// TestAddAllocations guards the hot path: the allocations of a bias add do not grow
// with the tensor (no per-element or per-row allocation).
func TestAddAllocations(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	small := []*Tensor{randTensor(r, 4, 8), randTensor(r, 8)}
	large := []*Tensor{randTensor(r, 256, 100), randTensor(r, 100)}
	run := func(in []*Tensor) float64 {
		return testing.AllocsPerRun(20, func() {
			if _, err := (Add{}).Forward(in); err != nil {
				t.Fatal(err)
			}
		})
	}
	s, l := run(small), run(large)
	t.Logf("allocations per Add: %v for [4,8]+[8], %v for [256,100]+[100]", s, l)
	if l > s || l > 12 {
		t.Errorf("Add forward allocations: %v for [4,8], %v for [256,100]", s, l)
	}
}

func TestBinaryErrors(t *testing.T) {
	cases := []struct {
		in   []*Tensor
		want string
	}{
		{[]*Tensor{NewTensor(2, 3), NewTensor(4)}, "Add: shapes [2,3] and [4] do not broadcast: dimension 1 is 3 vs 4"},
		{[]*Tensor{NewTensor(2, 3)}, "Add: got 1 inputs, want 2"},
		{[]*Tensor{NewTensor(2, 3), nil}, "Add: required input 1 is absent"},
	}
	for _, c := range cases {
		_, err := Add{}.Forward(c.in)
		if err == nil || err.Error() != c.want {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
	_, err := Add{}.Backward([]*Tensor{NewTensor(2, 3), NewTensor(3)}, nil, []*Tensor{NewTensor(3, 2)}, []bool{true, true})
	if err == nil || !strings.Contains(err.Error(), "output gradient has shape [3,2], output has [2,3]") {
		t.Errorf("bad gradient shape: %v", err)
	}
	spec := NodeSpec{Attrs: NewAttrs(), Opset: 6}
	spec.Attrs.SetInt("broadcast", 1)
	if _, err := newAdd(spec); !errors.Is(err, ErrUnsupported) {
		t.Errorf("legacy broadcast attribute: %v", err)
	}
}
