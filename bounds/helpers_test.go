package bounds

import (
	"testing"

	"github.com/certify-dev/certify/nets"
)

// loadMNIST reads a shipped model and the first n test samples with their labels.
func loadMNIST(tb testing.TB, path string, n int) (*nets.Graph, *nets.Tensor, []int) {
	tb.Helper()
	g, err := nets.ReadONNX(path)
	if err != nil {
		tb.Fatal(err)
	}
	x, err := nets.ReadNPY("../testdata/mnist-test-1k.npy")
	if err != nil {
		tb.Fatal(err)
	}
	y, err := nets.ReadNPY("../testdata/mnist-test-1k-labels.npy")
	if err != nil {
		tb.Fatal(err)
	}
	per := x.Len() / x.Batch()
	xs := nets.FromData(append([]float64(nil), x.Data[:n*per]...), append([]int{n}, x.Shape[1:]...)...)
	labels := make([]int, n)
	for i := range labels {
		labels[i] = int(y.Data[i])
	}
	return g, xs, labels
}

// robustnessSpecs returns the 10-class robustness spec of every label.
func robustnessSpecs(tb testing.TB, labels []int) []Spec {
	tb.Helper()
	specs := make([]Spec, len(labels))
	for i, l := range labels {
		s, err := RobustnessSpec(10, l)
		if err != nil {
			tb.Fatal(err)
		}
		specs[i] = s
	}
	return specs
}
