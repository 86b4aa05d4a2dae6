package smoothing

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkNoise measures drawing the noise of a batch of 1000 MNIST-sized samples
// (784 normal deviates each), the part of Counts that is not the model.
func BenchmarkNoise(b *testing.B) {
	const batch, per = 1000, 784
	x := make([]float64, per)
	dst := make([]float64, batch*per)
	s := Smoothed{Sigma: 0.25}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.addNoise(dst, x, i*batch, 42)
	}
	b.ReportMetric(float64(b.N)*batch*per/b.Elapsed().Seconds(), "normals/s")
}

// BenchmarkNoisyForwardCNN measures noisy forward passes of the shipped CNN in
// batches of 1000 (noise generation, forward pass and argmax).
func BenchmarkNoisyForwardCNN(b *testing.B) {
	g, x, _ := shippedModel(b, "mnist_cnn.onnx")
	s := Smoothed{Base: g, Sigma: 0.25, Batch: 1000}
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Counts(x, 1000, rng); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkCertifyCNN is one CERTIFY of the first test image with the paper's
// settings (n0 = 100, n = 100,000, α = 0.001) on the shipped CNN.
func BenchmarkCertifyCNN(b *testing.B) {
	g, x, _ := shippedModel(b, "mnist_cnn.onnx")
	s := Smoothed{Base: g, Sigma: 0.25}
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		c, err := s.Certify(x, DefaultN0, DefaultN, DefaultAlpha, rng)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(c.Radius, "radius")
	}
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/certify")
}

// BenchmarkNormFloat64 is the cost of one normal deviate from a SampleRand generator
// on one core: CERTIFY on MNIST with n = 100,000 draws 78.4 million of them.
func BenchmarkNormFloat64(b *testing.B) {
	r := SampleRand(1, 2)
	var s float64
	for b.Loop() {
		s += r.NormFloat64()
	}
	if s == 0.5 {
		b.Log(s) // keep s live
	}
}
