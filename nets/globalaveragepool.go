package nets

import "fmt"

// GlobalAveragePool is the ONNX GlobalAveragePool operator
// (https://onnx.ai/onnx/operators/onnx__GlobalAveragePool.html): the mean over all
// spatial positions, X (N,C,D1,…,Dk) → Y (N,C,1,…,1). Any k ≥ 1 works, since only the
// number of spatial elements matters.
type GlobalAveragePool struct{}

func newGlobalAveragePool(NodeSpec) (Op, error) { return GlobalAveragePool{}, nil }

func (GlobalAveragePool) OpType() string { return "GlobalAveragePool" }
func (GlobalAveragePool) Attrs() Attrs   { return NewAttrs() }

// outShape checks x and returns (N,C,1,…,1) and the spatial size.
func (GlobalAveragePool) outShape(x *Tensor) ([]int, int, error) {
	if x == nil || x.Rank() < 3 {
		return nil, 0, fmt.Errorf("input of shape %v: want (N,C,D1,…) with at least one spatial dimension", shapeOf(x))
	}
	shape := make([]int, x.Rank())
	shape[0], shape[1] = x.Shape[0], x.Shape[1]
	for i := 2; i < len(shape); i++ {
		shape[i] = 1
	}
	area := NumElements(x.Shape[2:])
	if area == 0 {
		return nil, 0, fmt.Errorf("input of shape %v: empty spatial extent", x.Shape)
	}
	return shape, area, nil
}

func (g GlobalAveragePool) Forward(in []*Tensor) ([]*Tensor, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("%d inputs: want 1", len(in))
	}
	shape, area, err := g.outShape(in[0])
	if err != nil {
		return nil, err
	}
	y := NewTensor(shape...)
	inv := 1 / float64(area)
	for pl := range y.Data {
		sum := 0.0
		for _, v := range in[0].Data[pl*area : (pl+1)*area] {
			sum += v
		}
		y.Data[pl] = sum * inv
	}
	return []*Tensor{y}, nil
}

// Backward spreads each output gradient evenly over its plane: ∂Y/∂X = 1/area.
func (g GlobalAveragePool) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("%d inputs: want 1", len(in))
	}
	if len(need) == 0 || !need[0] {
		return []*Tensor{nil}, nil
	}
	shape, area, err := g.outShape(in[0])
	if err != nil {
		return nil, err
	}
	var gy *Tensor
	if len(gradOut) > 0 {
		gy = gradOut[0]
	}
	if gy == nil || !SameShape(gy.Shape, shape) {
		return nil, fmt.Errorf("output gradient of shape %v: want %v", shapeOf(gy), shape)
	}
	dx := NewTensor(in[0].Shape...)
	inv := 1 / float64(area)
	for pl, gv := range gy.Data {
		v := gv * inv
		row := dx.Data[pl*area : (pl+1)*area]
		for i := range row {
			row[i] = v
		}
	}
	return []*Tensor{dx}, nil
}
