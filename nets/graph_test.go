package nets

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// fixedBatchGraph is y = Reshape(x, [1,4]) · W, declared with a fixed batch of 1, as
// VNN-COMP and many PyTorch exports are.
func fixedBatchGraph(r *rand.Rand) *Graph {
	return &Graph{
		Inputs:  []ValueInfo{{Name: "x", Shape: []int{1, 2, 2}}},
		Outputs: []ValueInfo{{Name: "y", Shape: []int{1, 3}}},
		Params: map[string]*Tensor{
			"shape": FromData([]float64{1, 4}, 2),
			"W":     randTensor(r, 4, 3),
		},
		Nodes: []*Node{
			{Name: "flat", Op: &Reshape{}, Inputs: []string{"x", "shape"}, Outputs: []string{"f"}},
			{Name: "fc", Op: MatMul{}, Inputs: []string{"f", "W"}, Outputs: []string{"y"}},
		},
	}
}

func TestLogitsFixedBatchRunsPerRow(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	g := fixedBatchGraph(r)
	x := randTensor(r, 40, 2, 2)
	got, err := g.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	if !SameShape(got.Shape, []int{40, 3}) {
		t.Fatalf("logits shape %v, want [40,3]", got.Shape)
	}
	W := g.Params["W"].Data
	for i := 0; i < 40; i++ {
		for j := 0; j < 3; j++ {
			want := 0.0
			for k := 0; k < 4; k++ {
				want += x.Data[i*4+k] * W[k*3+j]
			}
			if math.Abs(got.Data[i*3+j]-want) > 1e-12 {
				t.Fatalf("row %d class %d: %v, want %v", i, j, got.Data[i*3+j], want)
			}
		}
	}
	// LossGrad on the same fixed-batch model: the margin loss's gradient is the
	// difference of two columns of W.
	labels := make([]int, 40)
	vals, grad, err := g.LossGrad(x, labels, Margin{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		z := got.Data[i*3 : i*3+3]
		best := 1
		if z[2] > z[1] {
			best = 2
		}
		if math.Abs(vals[i]-(z[best]-z[0])) > 1e-12 {
			t.Fatalf("row %d: margin %v, want %v", i, vals[i], z[best]-z[0])
		}
		for k := 0; k < 4; k++ {
			want := W[k*3+best] - W[k*3]
			if math.Abs(grad.Data[i*4+k]-want) > 1e-12 {
				t.Fatalf("row %d: grad[%d] %v, want %v", i, k, grad.Data[i*4+k], want)
			}
		}
	}
}

func TestForwardRejectsWrongShape(t *testing.T) {
	g := fixedBatchGraph(rand.New(rand.NewPCG(1, 1)))
	_, err := g.Forward(map[string]*Tensor{"x": NewTensor(1, 3, 2)})
	if err == nil || err.Error() != `input "x": model expects shape [1 2 2], got [1 3 2]` {
		t.Fatalf("error %v", err)
	}
}

// TestLogitsIndependentOfCores: the batch is split the same way whatever GOMAXPROCS
// is, so logits and gradients are bit-identical.
func TestLogitsIndependentOfCores(t *testing.T) {
	g, err := ReadONNX("../testdata/mnist_cnn.onnx")
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(rand.New(rand.NewPCG(5, 6)), 100, 1, 28, 28)
	labels := make([]int, 100)
	run := func(procs int) (*Tensor, *Tensor) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		z, err := g.Logits(x)
		if err != nil {
			t.Fatal(err)
		}
		_, gr, err := g.LossGrad(x, labels, CrossEntropy{})
		if err != nil {
			t.Fatal(err)
		}
		return z, gr
	}
	z1, g1 := run(1)
	z3, g3 := run(3)
	for i := range z1.Data {
		if z1.Data[i] != z3.Data[i] {
			t.Fatalf("logit %d: %v with 1 core, %v with 3", i, z1.Data[i], z3.Data[i])
		}
	}
	for i := range g1.Data {
		if g1.Data[i] != g3.Data[i] {
			t.Fatalf("gradient %d: %v with 1 core, %v with 3", i, g1.Data[i], g3.Data[i])
		}
	}
}
