package nets

import (
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Written models declare IR version 8 (ONNX 1.10–1.12 read it) and, unless the
// graph says otherwise, opset 13 of the default domain.
const (
	onnxIRVersion    = 8
	defaultONNXOpset = 13
)

// WriteONNX writes g to path as an ONNX model. See EncodeONNX.
func WriteONNX(g *Graph, path string) error {
	data, err := encodeONNX(g)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// EncodeONNX serializes g as an ONNX ModelProto: IR version 8, the default domain
// at g.Opset (13 when 0), producer "certify". Params become float32 raw_data
// initializers (the graph computes in float64, ONNX models here are float32),
// and inputs and outputs are float32 tensors, except where the ONNX schema of the
// consuming or producing op wants int64 or bool (Reshape's shape, Pad's pads,
// Dropout's mask, ...). A dynamic dimension is written as dim_param "batch" (first
// dimension) or "d<i>". The bytes depend only on the graph: maps are walked in
// sorted order.
func EncodeONNX(g *Graph) ([]byte, error) {
	data, err := encodeONNX(g)
	if err != nil {
		return nil, fmt.Errorf("encode ONNX: %w", err)
	}
	return data, nil
}

func encodeONNX(g *Graph) ([]byte, error) {
	if g == nil {
		return nil, fmt.Errorf("nil graph")
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	types, err := valueTypes(g)
	if err != nil {
		return nil, err
	}
	opset := g.Opset
	if opset == 0 {
		opset = defaultONNXOpset
	}
	name := g.Name
	if name == "" {
		name = "certify" // onnx.checker requires a graph name
	}
	gp := &onnx.GraphProto{Name: name}

	params := make([]string, 0, len(g.Params))
	for p := range g.Params {
		params = append(params, p)
	}
	sort.Strings(params)
	for _, p := range params {
		tp, err := tensorToProto(p, g.Params[p], typeOr(types, p))
		if err != nil {
			return nil, fmt.Errorf("param %q: %w", p, err)
		}
		gp.Initializer = append(gp.Initializer, tp)
	}
	for _, vi := range g.Inputs {
		if _, isParam := g.Params[vi.Name]; isParam {
			continue // an initializer already; IR 4+ does not list it again
		}
		gp.Input = append(gp.Input, valueInfoProto(vi, typeOr(types, vi.Name)))
	}
	for _, vi := range g.Outputs {
		gp.Output = append(gp.Output, valueInfoProto(vi, typeOr(types, vi.Name)))
	}
	for _, n := range g.Nodes {
		np := &onnx.NodeProto{
			Name:   n.Name,
			OpType: n.Op.OpType(),
			Input:  append([]string(nil), n.Inputs...),
			Output: append([]string(nil), n.Outputs...),
		}
		valueType := int32(onnxFloat)
		if np.OpType == "Constant" && len(n.Outputs) > 0 {
			valueType = typeOr(types, n.Outputs[0])
		}
		np.Attribute, err = attrsToProto(n.Op.Attrs(), valueType)
		if err != nil {
			return nil, fmt.Errorf("node %q (%s): %w", n.Name, np.OpType, err)
		}
		gp.Node = append(gp.Node, np)
	}
	m := &onnx.ModelProto{
		IrVersion:    onnxIRVersion,
		OpsetImport:  []*onnx.OperatorSetIdProto{{Domain: "", Version: int64(opset)}},
		ProducerName: "certify",
		Graph:        gp,
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// nonFloatInput is the element type the ONNX operator schemas give input j of
// opType when it is not a float tensor: int64 for shapes, pads, axes and indices,
// bool for Dropout's training_mode (ONNX Operators.md, opsets 13–18).
func nonFloatInput(opType string, j int) (int32, bool) {
	switch opType {
	case "Reshape", "Expand", "Tile", "Squeeze", "Unsqueeze", "Split", "Gather", "TopK",
		"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
		"ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare":
		return onnxInt64, j == 1
	case "Pad":
		return onnxInt64, j == 1 || j == 3
	case "Slice":
		return onnxInt64, j >= 1
	case "ConstantOfShape":
		return onnxInt64, j == 0
	case "Resize":
		return onnxInt64, j == 3
	case "Dropout":
		return onnxBool, j == 2
	}
	return 0, false
}

// nonFloatOutput is the element type of output j of opType when the ONNX schema
// makes it not float: Dropout's mask (bool) and MaxPool's Indices (int64).
func nonFloatOutput(opType string, j int) (int32, bool) {
	switch {
	case opType == "Dropout" && j == 1:
		return onnxBool, true
	case opType == "MaxPool" && j == 1:
		return onnxInt64, true
	}
	return 0, false
}

// valueTypes gives the element type to write for every param, Constant output and
// graph input that feeds a non-float input, and for every value a node produces as
// a non-float output; all others are float32. The graph computes in float64
// throughout, so the types come from the ONNX schemas of the consumers.
func valueTypes(g *Graph) (map[string]int32, error) {
	typed := map[string]bool{} // values whose type the consumers decide
	for name := range g.Params {
		typed[name] = true
	}
	for _, vi := range g.Inputs {
		typed[vi.Name] = true
	}
	for _, n := range g.Nodes {
		if n.Op.OpType() == "Constant" && len(n.Outputs) > 0 {
			typed[n.Outputs[0]] = true
		}
	}
	types := map[string]int32{}
	for _, n := range g.Nodes {
		for j, in := range n.Inputs {
			if !typed[in] {
				continue
			}
			dt, ok := nonFloatInput(n.Op.OpType(), j)
			if !ok {
				dt = onnxFloat
			}
			if prev, seen := types[in]; seen && prev != dt {
				return nil, fmt.Errorf("node %q (%s): %q is used both as %s and as %s",
					n.Name, n.Op.OpType(), in, onnxTypeName(prev), onnxTypeName(dt))
			}
			types[in] = dt
		}
		for j, out := range n.Outputs {
			if dt, ok := nonFloatOutput(n.Op.OpType(), j); ok && out != "" {
				types[out] = dt
			}
		}
	}
	return types, nil
}

// typeOr is the element type of value name: types[name], float32 by default.
func typeOr(types map[string]int32, name string) int32 {
	if dt, ok := types[name]; ok {
		return dt
	}
	return onnxFloat
}

// valueInfoProto describes a graph input or output as a tensor of element type dt.
func valueInfoProto(vi ValueInfo, dt int32) *onnx.ValueInfoProto {
	tt := &onnx.TypeProto_Tensor{ElemType: dt}
	if vi.Shape != nil {
		tt.Shape = &onnx.TensorShapeProto{}
		for i, d := range vi.Shape {
			dim := &onnx.TensorShapeProto_Dimension{}
			switch {
			case d >= 0:
				dim.Value = &onnx.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}
			case i == 0:
				dim.Value = &onnx.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}
			default:
				dim.Value = &onnx.TensorShapeProto_Dimension_DimParam{DimParam: fmt.Sprintf("d%d", i)}
			}
			tt.Shape.Dim = append(tt.Shape.Dim, dim)
		}
	}
	return &onnx.ValueInfoProto{
		Name: vi.Name,
		Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: tt}},
	}
}

// attrsToProto encodes attributes sorted by name. Scalar tells INT from INTS and
// FLOAT from FLOATS; tensors are written with element type tensorType.
func attrsToProto(a Attrs, tensorType int32) ([]*onnx.AttributeProto, error) {
	kinds := map[string]int{}
	var names []string
	add := func(name string) {
		kinds[name]++
		if kinds[name] == 1 {
			names = append(names, name)
		}
	}
	for k := range a.Ints {
		add(k)
	}
	for k := range a.Floats {
		add(k)
	}
	for k := range a.Strings {
		add(k)
	}
	for k := range a.Tensors {
		add(k)
	}
	sort.Strings(names)
	out := make([]*onnx.AttributeProto, 0, len(names))
	for _, name := range names {
		if kinds[name] > 1 {
			return nil, fmt.Errorf("attribute %q has values of several kinds", name)
		}
		ap := &onnx.AttributeProto{Name: name}
		if v, ok := a.Ints[name]; ok {
			if a.Scalar[name] {
				if len(v) != 1 {
					return nil, fmt.Errorf("attribute %q: single INT with %d values", name, len(v))
				}
				ap.Type, ap.I = onnx.AttributeProto_INT, v[0]
			} else {
				ap.Type, ap.Ints = onnx.AttributeProto_INTS, append([]int64{}, v...)
			}
		} else if v, ok := a.Floats[name]; ok {
			fs := make([]float32, len(v))
			for i, x := range v {
				fs[i] = float32(x)
			}
			if a.Scalar[name] {
				if len(v) != 1 {
					return nil, fmt.Errorf("attribute %q: single FLOAT with %d values", name, len(v))
				}
				ap.Type, ap.F = onnx.AttributeProto_FLOAT, fs[0]
			} else {
				ap.Type, ap.Floats = onnx.AttributeProto_FLOATS, fs
			}
		} else if v, ok := a.Strings[name]; ok {
			ap.Type, ap.S = onnx.AttributeProto_STRING, []byte(v)
		} else {
			t := a.Tensors[name]
			if t == nil {
				return nil, fmt.Errorf("attribute %q: nil tensor", name)
			}
			tp, err := tensorToProto(name, t, tensorType)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: %w", name, err)
			}
			ap.Type, ap.T = onnx.AttributeProto_TENSOR, tp
		}
		writeZeroScalar(ap)
		out = append(out, ap)
	}
	return out, nil
}

// writeZeroScalar makes a zero INT, FLOAT or STRING attribute value explicit on the
// wire. The Go types are generated from a proto3 copy of onnx.proto, and proto3
// does not write zero scalars; but ONNX is proto2, and readers that test presence
// (has_i() in ONNX shape inference, e.g. for Flatten's axis) would take the
// attribute as absent and use its default: Flatten axis 0 would become axis 1.
// The value is added as an unknown field with the number onnx.proto gives it
// (f = 2, i = 3, s = 4), which Marshal emits as is.
func writeZeroScalar(ap *onnx.AttributeProto) {
	var b []byte
	switch {
	case ap.Type == onnx.AttributeProto_INT && ap.I == 0:
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, 0)
	case ap.Type == onnx.AttributeProto_FLOAT && math.Float32bits(ap.F) == 0:
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, 0)
	case ap.Type == onnx.AttributeProto_STRING && len(ap.S) == 0:
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, nil)
	default:
		return
	}
	ap.ProtoReflect().SetUnknown(b)
}
