package nets

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// bnInputs returns X of the given shape and random per-channel parameters, with
// variances in [0.5, 2.5).
func bnInputs(r *rand.Rand, shape ...int) []*Tensor {
	c := shape[1]
	v := NewTensor(c)
	for i := range v.Data {
		v.Data[i] = 0.5 + 2*r.Float64()
	}
	return []*Tensor{randTensor(r, shape...), randTensor(r, c), randTensor(r, c), randTensor(r, c), v}
}

func TestBatchNormalizationForward(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 10))
	for _, shape := range [][]int{{3, 4}, {2, 3, 4, 5}, {2, 2, 3}} {
		const eps = 1e-3
		spec := NodeSpec{Attrs: attrKV{"epsilon": eps}.attrs(), NumInputs: 5, NumOutputs: 1}
		op := buildOp(t, newBatchNormalization, spec)
		in := bnInputs(r, shape...)
		out, err := op.Forward(in)
		if err != nil {
			t.Fatal(err)
		}
		// The formula of the ONNX spec, element by element.
		c, area := shape[1], NumElements(shape[2:])
		want := NewTensor(shape...)
		for i := range want.Data {
			k := i / area % c
			want.Data[i] = in[1].Data[k]*(in[0].Data[i]-in[3].Data[k])/math.Sqrt(in[4].Data[k]+eps) + in[2].Data[k]
		}
		closeTensors(t, "Y", out[0], want, 1e-14)
		checkRoundTrip(t, newBatchNormalization, op, spec)
	}
	// Hand case: γ=2, β=1, μ=3, σ²=3, ε=1 → y = 2(x−3)/2 + 1 = x − 2.
	op := buildOp(t, newBatchNormalization, NodeSpec{Attrs: attrKV{"epsilon": 1.0}.attrs()})
	out, err := op.Forward([]*Tensor{FromData([]float64{0, 5, 7}, 3, 1), FromData([]float64{2}, 1),
		FromData([]float64{1}, 1), FromData([]float64{3}, 1), FromData([]float64{3}, 1)})
	if err != nil {
		t.Fatal(err)
	}
	closeTensors(t, "hand", out[0], FromData([]float64{-2, 3, 5}, 3, 1), 1e-15)
	if e := op.(BatchNormalization).Epsilon; e != 1 {
		t.Fatalf("epsilon %v", e)
	}
	if d := buildOp(t, newBatchNormalization, NodeSpec{Attrs: NewAttrs()}).(BatchNormalization); d.Epsilon != 1e-5 || d.Momentum != 0.9 {
		t.Fatalf("defaults %+v, want epsilon 1e-5, momentum 0.9", d)
	}
}

func TestBatchNormalizationGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	for _, shape := range [][]int{{3, 4}, {2, 3, 4, 5}} {
		op := buildOp(t, newBatchNormalization, NodeSpec{Attrs: attrKV{"epsilon": 1e-2}.attrs()})
		checkOpGrad(t, op, bnInputs(r, shape...), []bool{true, true, true, true, true})
		// Partial needs: only what is asked is computed.
		got, err := op.Backward(bnInputs(r, shape...), nil, []*Tensor{randTensor(r, shape...)}, []bool{false, false, true, false, false})
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != nil || got[1] != nil || got[2] == nil || got[3] != nil || got[4] != nil {
			t.Fatalf("need only B: got %v", got)
		}
	}
}

func TestBatchNormalizationErrors(t *testing.T) {
	ctorCases := []struct {
		name  string
		spec  NodeSpec
		unsup bool
	}{
		{"training_mode", NodeSpec{Attrs: attrKV{"training_mode": 1}.attrs()}, true},
		{"spatial 0", NodeSpec{Attrs: attrKV{"spatial": 0}.attrs()}, true},
		{"training outputs", NodeSpec{Attrs: NewAttrs(), NumOutputs: 5}, true},
		{"three inputs", NodeSpec{Attrs: NewAttrs(), NumInputs: 3}, false},
		{"negative epsilon", NodeSpec{Attrs: attrKV{"epsilon": -1.0}.attrs()}, false},
		{"NaN epsilon", NodeSpec{Attrs: attrKV{"epsilon": math.NaN()}.attrs()}, false},
	}
	for _, c := range ctorCases {
		_, err := newBatchNormalization(c.spec)
		if err == nil || errors.Is(err, ErrUnsupported) != c.unsup {
			t.Errorf("%s: error %v, want unsupported=%v", c.name, err, c.unsup)
		}
	}
	r := rand.New(rand.NewPCG(12, 12))
	op := buildOp(t, newBatchNormalization, NodeSpec{Attrs: NewAttrs()})
	good := bnInputs(r, 2, 3, 2, 2)
	zeroVar := bnInputs(r, 2, 3, 2, 2)
	zeroVar[4].Data[1] = -1e-5
	inCases := []struct {
		name string
		in   []*Tensor
	}{
		{"rank 1 input", []*Tensor{randTensor(r, 3), good[1], good[2], good[3], good[4]}},
		{"scale length", []*Tensor{good[0], randTensor(r, 2), good[2], good[3], good[4]}},
		{"var rank", []*Tensor{good[0], good[1], good[2], good[3], randTensor(r, 3, 1)}},
		{"missing mean", []*Tensor{good[0], good[1], good[2], nil, good[4]}},
		{"four inputs", good[:4]},
		{"variance + epsilon zero", zeroVar},
	}
	for _, c := range inCases {
		if _, err := op.Forward(c.in); err == nil {
			t.Errorf("%s: forward gave no error", c.name)
		}
		if _, err := op.Backward(c.in, nil, []*Tensor{good[0]}, []bool{true, true, true, true, true}); err == nil {
			t.Errorf("%s: backward gave no error", c.name)
		}
	}
	if _, err := op.Backward(good, nil, []*Tensor{randTensor(r, 2, 3)}, []bool{true}); err == nil {
		t.Errorf("gradient of the wrong shape: no error")
	}
}
