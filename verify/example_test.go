package verify_test

import (
	"context"
	"fmt"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/verify"
)

// A 2-2-1 ReLU network y = relu(x1 + x2 + 0.5) − relu(x1 − x2 + 0.25) takes values
// in [0.25, 2.25] on [0,1]². Is y > −0.5 everywhere? IBP cannot tell, CROWN proves
// it.
func Example() {
	g := &nets.Graph{
		Inputs:  []nets.ValueInfo{{Name: "x", Shape: []int{-1, 2}}},
		Outputs: []nets.ValueInfo{{Name: "y", Shape: []int{-1, 1}}},
		Params: map[string]*nets.Tensor{
			"W1": nets.FromData([]float64{1, 1, 1, -1}, 2, 2), "b1": nets.FromData([]float64{0.5, 0.25}, 2),
			"W2": nets.FromData([]float64{1, -1}, 1, 2), "b2": nets.FromData([]float64{0}, 1),
		},
		Nodes: []*nets.Node{
			{Name: "fc1", Op: nets.Gemm{TransB: true, Alpha: 1, Beta: 1}, Inputs: []string{"x", "W1", "b1"}, Outputs: []string{"z"}},
			{Name: "relu", Op: nets.Relu{}, Inputs: []string{"z"}, Outputs: []string{"h"}},
			{Name: "fc2", Op: nets.Gemm{TransB: true, Alpha: 1, Beta: 1}, Inputs: []string{"h", "W2", "b2"}, Outputs: []string{"y"}},
		},
	}
	region := verify.Region{Lo: nets.FromData([]float64{0, 0}, 1, 2), Hi: nets.FromData([]float64{1, 1}, 1, 2)}
	spec := bounds.Spec{C: [][]float64{{1}}, D: []float64{0.5}} // y + 0.5 > 0
	for _, v := range []verify.Verifier{verify.IBP{}, verify.CROWN{}, verify.AlphaCROWN{}} {
		res, err := v.Verify(context.Background(), g, region, spec)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%-11s %-8s margin %g\n", v.Name(), res.Verdict, res.Margin)
	}
	// Output:
	// ibp         unknown  margin -0.25
	// crown       verified margin 0.375
	// alpha-crown verified margin 0.375
}
