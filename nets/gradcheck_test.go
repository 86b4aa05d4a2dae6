package nets

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randTensor fills a tensor of the given shape with N(0,1) values.
func randTensor(r *rand.Rand, shape ...int) *Tensor {
	t := NewTensor(shape...)
	for i := range t.Data {
		t.Data[i] = r.NormFloat64()
	}
	return t
}

// checkOpGrad compares op.Backward with central finite differences of the scalar
// L = Σ_j ⟨r_j, out_j⟩ for random upstream gradients r_j, for every input i with
// need[i]. Inputs must keep away from kinks (ReLU at 0, MaxPool ties) by more than h.
func checkOpGrad(t *testing.T, op Op, in []*Tensor, need []bool) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 11))
	out, err := op.Forward(in)
	if err != nil {
		t.Fatalf("%s forward: %v", op.OpType(), err)
	}
	gout := make([]*Tensor, len(out))
	for j, o := range out {
		gout[j] = randTensor(r, o.Shape...)
	}
	loss := func() float64 {
		o, err := op.Forward(in)
		if err != nil {
			t.Fatalf("%s forward: %v", op.OpType(), err)
		}
		s := 0.0
		for j := range o {
			for k, v := range o[j].Data {
				s += v * gout[j].Data[k]
			}
		}
		return s
	}
	gin, err := op.Backward(in, out, gout, need)
	if err != nil {
		t.Fatalf("%s backward: %v", op.OpType(), err)
	}
	const h = 1e-6
	for i := range in {
		if !need[i] {
			continue
		}
		if i >= len(gin) || gin[i] == nil {
			t.Fatalf("%s: no gradient for input %d", op.OpType(), i)
		}
		if !SameShape(gin[i].Shape, in[i].Shape) {
			t.Fatalf("%s: gradient of input %d has shape %v, input %v", op.OpType(), i, gin[i].Shape, in[i].Shape)
		}
		for k := range in[i].Data {
			old := in[i].Data[k]
			in[i].Data[k] = old + h
			lp := loss()
			in[i].Data[k] = old - h
			lm := loss()
			in[i].Data[k] = old
			num := (lp - lm) / (2 * h)
			got := gin[i].Data[k]
			if math.Abs(num-got) > 1e-5*math.Max(1, math.Abs(num)) {
				t.Fatalf("%s: d/d in[%d][%d]: backward %.8g, finite difference %.8g", op.OpType(), i, k, got, num)
			}
		}
	}
}

func TestReluGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := randTensor(r, 3, 7)
	for i, v := range x.Data {
		if math.Abs(v) < 1e-3 {
			x.Data[i] = 0.5
		}
	}
	checkOpGrad(t, Relu{}, []*Tensor{x}, []bool{true})
}
