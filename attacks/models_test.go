package attacks

import (
	"testing"

	"github.com/certify-dev/certify/nets"
)

// linearModel is z = W·x + b (W: classes × d), a classifier whose attacks have
// closed forms (FGSM, DeepFool), as a nets.Graph with a dynamic batch.
func linearModel(t testing.TB, w [][]float64, b []float64) *nets.Graph {
	t.Helper()
	k, d := len(w), len(w[0])
	wt := nets.NewTensor(k, d)
	for i := range w {
		copy(wt.Data[i*d:], w[i])
	}
	gemm, err := nets.Constructors()["Gemm"](nets.NodeSpec{Attrs: gemmAttrs(), Opset: 13, NumInputs: 3, NumOutputs: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &nets.Graph{
		Inputs:  []nets.ValueInfo{{Name: "x", Shape: []int{-1, d}}},
		Outputs: []nets.ValueInfo{{Name: "z", Shape: []int{-1, k}}},
		Params:  map[string]*nets.Tensor{"W": wt, "b": nets.FromData(append([]float64(nil), b...), k)},
		Nodes:   []*nets.Node{{Name: "fc", Op: gemm, Inputs: []string{"x", "W", "b"}, Outputs: []string{"z"}}},
		Opset:   13,
	}
}

func gemmAttrs() nets.Attrs {
	a := nets.NewAttrs()
	a.SetInt("transB", 1)
	return a
}

// shippedMLP loads testdata/mnist_mlp.onnx and the first n test images and labels.
func shippedMLP(t testing.TB, n int) (*nets.Graph, *nets.Tensor, []int) {
	t.Helper()
	g, err := nets.ReadONNX("../testdata/mnist_mlp.onnx")
	if err != nil {
		t.Fatal(err)
	}
	x, err := nets.ReadNPY("../testdata/mnist-test-1k.npy")
	if err != nil {
		t.Fatal(err)
	}
	y, err := nets.ReadNPY("../testdata/mnist-test-1k-labels.npy")
	if err != nil {
		t.Fatal(err)
	}
	per := x.Len() / x.Shape[0]
	xs := nets.FromData(append([]float64(nil), x.Data[:n*per]...), append([]int{n}, x.Shape[1:]...)...)
	labels := make([]int, n)
	for i := range labels {
		labels[i] = int(y.Data[i])
	}
	return g, xs, labels
}

func TestLinearModelLogits(t *testing.T) {
	g := linearModel(t, [][]float64{{1, 2}, {3, -1}}, []float64{0.5, -0.5})
	z, err := g.Logits(nets.FromData([]float64{1, 1}, 1, 2))
	if err != nil {
		t.Fatal(err)
	}
	if z.Data[0] != 3.5 || z.Data[1] != 1.5 {
		t.Fatalf("logits %v, want [3.5 1.5]", z.Data)
	}
}
