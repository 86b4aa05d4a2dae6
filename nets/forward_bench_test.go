package nets

import (
	"fmt"
	"testing"
)

// BenchmarkForwardShipped measures inference throughput (images/s) of the shipped
// models at batch 1 and 256, through Graph.Logits as certify runs them.
func BenchmarkForwardShipped(b *testing.B) {
	x, err := ReadNPY("../testdata/mnist-test-1k.npy")
	if err != nil {
		b.Fatal(err)
	}
	for _, model := range []string{"mnist_mlp", "mnist_cnn"} {
		g, err := ReadONNX("../testdata/" + model + ".onnx")
		if err != nil {
			b.Fatal(err)
		}
		for _, batch := range []int{1, 256} {
			xs := sliceRows(x, 0, batch)
			b.Run(fmt.Sprintf("%s/batch%d", model, batch), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if _, err := g.Logits(xs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
			})
		}
	}
}
