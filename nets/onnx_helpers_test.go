package nets

import (
	"fmt"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// Builders of ONNX protobuf messages for the reader and writer tests.

// pvi is a float graph input/output; each dim is an int (dim_value), a string
// (dim_param) or nil (a dimension with no value).
func pvi(name string, dims ...any) *onnx.ValueInfoProto {
	sp := &onnx.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnx.TensorShapeProto_Dimension{}
		switch d := d.(type) {
		case int:
			dim.Value = &onnx.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}
		case string:
			dim.Value = &onnx.TensorShapeProto_Dimension_DimParam{DimParam: d}
		}
		sp.Dim = append(sp.Dim, dim)
	}
	return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
		TensorType: &onnx.TypeProto_Tensor{ElemType: onnxFloat, Shape: sp}}}}
}

func pnode(name, op string, ins, outs []string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
	return &onnx.NodeProto{Name: name, OpType: op, Input: ins, Output: outs, Attribute: attrs}
}

func pfloats(name string, dims []int64, vals ...float32) *onnx.TensorProto {
	return &onnx.TensorProto{Name: name, DataType: onnxFloat, Dims: dims, FloatData: vals}
}

func pints(name string, dims []int64, vals ...int64) *onnx.TensorProto {
	return &onnx.TensorProto{Name: name, DataType: onnxInt64, Dims: dims, Int64Data: vals}
}

func pattrT(name string, t *onnx.TensorProto) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_TENSOR, T: t}
}

// pmodel serializes a model of graph g with the default domain at opset.
func pmodel(t testing.TB, g *onnx.GraphProto, opset int64) []byte {
	t.Helper()
	m := &onnx.ModelProto{IrVersion: 7, Graph: g,
		OpsetImport: []*onnx.OperatorSetIdProto{{Domain: "", Version: opset}}}
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// spyOp is an op of any type with given attributes: identity forward, so graphs of
// spies run; its Attrs are what the writer encodes.
type spyOp struct {
	typ   string
	attrs Attrs
}

func (s spyOp) OpType() string { return s.typ }
func (s spyOp) Attrs() Attrs   { return s.attrs }
func (s spyOp) Forward(in []*Tensor) ([]*Tensor, error) {
	if len(in) == 0 || in[0] == nil {
		return nil, fmt.Errorf("spy: no input")
	}
	return []*Tensor{in[0].Clone()}, nil
}
func (s spyOp) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	return []*Tensor{gradOut[0]}, nil
}

// spyCtors returns constructors for Relu (the real one) and for the given spy op
// types, each recording the specs it was given in *specs, keyed by op type.
func spyCtors(specs map[string][]NodeSpec, types ...string) map[string]OpConstructor {
	ctors := map[string]OpConstructor{"Relu": newRelu}
	for _, typ := range types {
		ctors[typ] = func(spec NodeSpec) (Op, error) {
			specs[typ] = append(specs[typ], spec)
			return spyOp{typ: typ, attrs: spec.Attrs}, nil
		}
	}
	return ctors
}
