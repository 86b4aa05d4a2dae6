package smoothing_test

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/smoothing"
)

// Certify the first MNIST test digit for the shipped MLP smoothed with σ = 0.25, with
// fewer estimation samples than the paper's 100,000 to keep the example quick.
func ExampleSmoothed_Certify() {
	g, err := nets.ReadONNX("../testdata/mnist_mlp.onnx")
	if err != nil {
		panic(err)
	}
	images, err := nets.ReadNPY("../testdata/mnist-test-1k.npy")
	if err != nil {
		panic(err)
	}
	shape, err := g.InputShape()
	if err != nil {
		panic(err)
	}
	x := nets.FromData(slices.Clone(images.Data[:nets.NumElements(shape)]), append([]int{1}, shape...)...)

	s := smoothing.Smoothed{Base: g, Sigma: 0.25}
	c, err := s.Certify(x, smoothing.DefaultN0, 2000, smoothing.DefaultAlpha, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		panic(err)
	}
	fmt.Printf("class %d, %d of %d noisy samples agree, p̲A = %.4f, L2 radius %.3f\n", c.Class, c.CountA, c.N, c.PLower, c.Radius)
	// Output:
	// class 7, 1932 of 2000 noisy samples agree, p̲A = 0.9516, L2 radius 0.415
}
