package bounds_test

import (
	"fmt"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// A 2-2-1 ReLU network y = relu(x₁ + x₂ − 0.5) − relu(x₁ + x₂ − 1.5), whose
// minimum over [0, 1]² is 0. IBP proves y ≥ −0.5, CROWN the same, and
// alpha-CROWN, optimising the slope of the first ReLU's lower relaxation, gets
// close to the best linear bound, −0.125.
func Example() {
	gemm := nets.Gemm{TransB: true, Alpha: 1, Beta: 1}
	g := &nets.Graph{
		Inputs:  []nets.ValueInfo{{Name: "x", Shape: []int{-1, 2}}},
		Outputs: []nets.ValueInfo{{Name: "y", Shape: []int{-1, 1}}},
		Params: map[string]*nets.Tensor{
			"W1": nets.FromData([]float64{1, 1, 1, 1}, 2, 2), "b1": nets.FromData([]float64{-0.5, -1.5}, 2),
			"W2": nets.FromData([]float64{1, -1}, 1, 2), "b2": nets.FromData([]float64{0}, 1),
		},
		Nodes: []*nets.Node{
			{Name: "z", Op: gemm, Inputs: []string{"x", "W1", "b1"}, Outputs: []string{"z"}},
			{Name: "h", Op: nets.Relu{}, Inputs: []string{"z"}, Outputs: []string{"h"}},
			{Name: "y", Op: gemm, Inputs: []string{"h", "W2", "b2"}, Outputs: []string{"y"}},
		},
	}
	box := bounds.Box{Lo: nets.FromData([]float64{0, 0}, 1, 2), Hi: nets.FromData([]float64{1, 1}, 1, 2)}
	spec := []bounds.Spec{{C: [][]float64{{1}}, D: []float64{0}}} // y itself

	ibp, _ := bounds.SpecIBP(g, box, spec, bounds.Options{})
	crown, _ := bounds.CROWN(g, box, spec, bounds.Options{})
	alpha, _ := bounds.AlphaCROWN(g, box, spec, bounds.AlphaOptions{Iterations: 50})
	fmt.Printf("IBP %.3f, CROWN %.3f, alpha-CROWN ≥ −0.2: %v\n", ibp.Lower[0][0], crown.Lower[0][0], alpha.Lower[0][0] >= -0.2)
	// Output: IBP -0.500, CROWN -0.500, alpha-CROWN ≥ −0.2: true
}
