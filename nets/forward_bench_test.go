package nets

import (
	"fmt"
	"math/rand/v2"
	"sync"
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

// BenchmarkForwardBatch1000 measures inference throughput (images/s) of the shipped
// models at batch 1000, the batch randomized smoothing classifies its noisy copies
// in, through Graph.Logits. The batch is the first 1000 test images. images/cpu-s
// divides by the process's CPU time instead of wall time: on a shared machine it is
// the steadier figure (with all cores busy it is images/s over the core count).
func BenchmarkForwardBatch1000(b *testing.B) {
	x, err := ReadNPY("../testdata/mnist-test-1k.npy")
	if err != nil {
		b.Fatal(err)
	}
	xs := sliceRows(x, 0, 1000)
	for _, model := range []string{"mnist_mlp", "mnist_cnn"} {
		g, err := ReadONNX("../testdata/" + model + ".onnx")
		if err != nil {
			b.Fatal(err)
		}
		b.Run(model, func(b *testing.B) {
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				if _, err := g.Logits(xs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "images/s")
			if cpu := processCPU() - cpu0; cpu > 0 {
				b.ReportMetric(float64(1000*b.N)/cpu.Seconds(), "images/cpu-s")
			}
		})
	}
}

// BenchmarkDgemmPeak measures the machine's matrix-product peak: a 1000×1000·1000×1000
// gemm, on one goroutine and on two at once (each its own product; OpenBLAS runs
// single-threaded, see blas_openblas.go). GFLOP/s counts 2·n³ per product, per wall
// second and per CPU second of the process.
func BenchmarkDgemmPeak(b *testing.B) {
	const n = 1000
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("%dx%dx%d/goroutines%d", n, n, n, workers), func(b *testing.B) {
			r := rand.New(rand.NewPCG(5, 6))
			a, w := randTensor(r, n, n), randTensor(r, n, n)
			cs := make([][]float64, workers)
			for i := range cs {
				cs[i] = make([]float64, n*n)
			}
			iters := 0
			cpu0 := processCPU()
			for b.Loop() {
				var wg sync.WaitGroup
				for _, c := range cs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						gemm(false, false, n, n, n, 1, a.Data, n, w.Data, n, 0, c, n)
					}()
				}
				wg.Wait()
				iters++
			}
			flops := 2 * n * n * n * float64(workers*iters)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			if cpu := processCPU() - cpu0; cpu > 0 {
				b.ReportMetric(flops/cpu.Seconds()/1e9, "GFLOP/cpu-s")
			}
		})
	}
}
