package nets_test

import (
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// A graph written with EncodeONNX (or WriteONNX) reads back with DecodeONNX (or
// ReadONNX); the dynamic batch dimension survives as dim_param "batch".
func ExampleEncodeONNX() {
	g := &nets.Graph{
		Inputs:  []nets.ValueInfo{{Name: "x", Shape: []int{-1, 3}}},
		Outputs: []nets.ValueInfo{{Name: "y", Shape: []int{-1, 3}}},
		Nodes:   []*nets.Node{{Name: "relu", Op: nets.Relu{}, Inputs: []string{"x"}, Outputs: []string{"y"}}},
	}
	data, err := nets.EncodeONNX(g)
	if err != nil {
		fmt.Println(err)
		return
	}
	back, err := nets.DecodeONNX(data, "relu.onnx")
	if err != nil {
		fmt.Println(err)
		return
	}
	y, err := back.Logits(nets.FromData([]float64{-1, 0, 2, 3, -4, 5}, 2, 3))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(back.Inputs, back.Opset, y.Data)
	// Output: [{x [-1 3]}] 13 [0 0 2 3 0 5]
}
