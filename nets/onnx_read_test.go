package nets

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// TestDecodeONNXGraph reads a model with the quirks of old exporters: an
// initializer also listed as a graph input, a symbolic batch, nodes out of order
// and a second, unused opset domain.
func TestDecodeONNXGraph(t *testing.T) {
	g := &onnx.GraphProto{
		Name: "g",
		Input: []*onnx.ValueInfoProto{
			pvi("x", "N", 3, 0, nil), pvi("b", 3),
		},
		Output:      []*onnx.ValueInfoProto{pvi("y", "N", 3, 1, 1)},
		Initializer: []*onnx.TensorProto{pfloats("b", []int64{3}, 1, 2, 3), pints("shape", []int64{2}, 3, 1)},
		Node: []*onnx.NodeProto{
			pnode("second", "Relu", []string{"h"}, []string{"y"}),
			pnode("first", "Relu", []string{"x"}, []string{"h"}),
		},
	}
	m := &onnx.ModelProto{IrVersion: 3, Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{
		{Domain: "ai.onnx.ml", Version: 2}, {Domain: "", Version: 11}}}
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeONNX(data, spyCtors(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := []ValueInfo{{Name: "x", Shape: []int{-1, 3, -1, -1}}}; !reflect.DeepEqual(got.Inputs, want) {
		t.Errorf("inputs %v, want %v", got.Inputs, want)
	}
	if want := []ValueInfo{{Name: "y", Shape: []int{-1, 3, 1, 1}}}; !reflect.DeepEqual(got.Outputs, want) {
		t.Errorf("outputs %v, want %v", got.Outputs, want)
	}
	if got.Opset != 11 || got.Name != "g" {
		t.Errorf("opset %d name %q, want 11 \"g\"", got.Opset, got.Name)
	}
	if len(got.Params) != 2 || !reflect.DeepEqual(got.Params["b"].Data, []float64{1, 2, 3}) {
		t.Errorf("params %v", got.Params)
	}
	// Only weights and biases of Gemm/MatMul/Conv/BatchNormalization (and bias Adds)
	// are trainable: "b" feeds no node and "shape" is an integer tensor
	// (TestImportTrainableWeightsOnly covers the positive case).
	if len(got.Trainable) != 0 {
		t.Errorf("trainable %v, want none", got.Trainable)
	}
	if len(got.Nodes) != 2 || got.Nodes[0].Name != "first" || got.Nodes[1].Name != "second" {
		t.Fatalf("nodes not in topological order: %v", got.Nodes)
	}
	x := FromData([]float64{-1, 2, -3, 4, 0, 5}, 2, 3, 1, 1)
	vals, err := got.Forward(map[string]*Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{0, 2, 0, 4, 0, 5}; !reflect.DeepEqual(vals["y"].Data, want) {
		t.Errorf("y = %v, want %v", vals["y"].Data, want)
	}
}

// TestDecodeONNXConstants checks what constructors see: attributes of every kind,
// the opset, and the values of inputs that are initializers or Constant outputs,
// including a Constant placed after its consumer.
func TestDecodeONNXConstants(t *testing.T) {
	g := &onnx.GraphProto{
		Input:       []*onnx.ValueInfoProto{pvi("x", 2, 2)},
		Output:      []*onnx.ValueInfoProto{pvi("y")},
		Initializer: []*onnx.TensorProto{pfloats("w", []int64{2}, 0.5, -1)},
		Node: []*onnx.NodeProto{
			pnode("spy", "Spy", []string{"x", "shape", "w", "", "k"}, []string{"y", "", ""},
				&onnx.AttributeProto{Name: "f", Type: onnx.AttributeProto_FLOAT, F: 0.25},
				&onnx.AttributeProto{Name: "i", Type: onnx.AttributeProto_INT, I: -3},
				&onnx.AttributeProto{Name: "zero", Type: onnx.AttributeProto_INT}, // proto3 omits i=0
				&onnx.AttributeProto{Name: "s", Type: onnx.AttributeProto_STRING, S: []byte("SAME_UPPER")},
				&onnx.AttributeProto{Name: "fs", Type: onnx.AttributeProto_FLOATS, Floats: []float32{1, 2.5}},
				&onnx.AttributeProto{Name: "is", Type: onnx.AttributeProto_INTS, Ints: []int64{4, 5, 6}},
				&onnx.AttributeProto{Name: "old", Ints: []int64{7}}, // type UNDEFINED: inferred
				pattrT("t", pfloats("", []int64{1, 2}, 3, 4)),
			),
			pnode("c1", "Constant", nil, []string{"shape"}, pattrT("value", pints("", []int64{2}, 1, -1))),
			pnode("c2", "Constant", nil, []string{"k"}, &onnx.AttributeProto{Name: "value_float", Type: onnx.AttributeProto_FLOAT, F: 2}),
		},
	}
	specs := map[string][]NodeSpec{}
	got, err := decodeONNX(pmodel(t, g, 17), spyCtors(specs, "Spy", "Constant"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Nodes) != 3 || got.Nodes[2].Name != "spy" {
		t.Fatalf("spy should come after the Constants: %v", got.Nodes)
	}
	spec := specs["Spy"][0]
	if spec.Opset != 17 || spec.NumInputs != 5 || spec.NumOutputs != 1 || len(spec.Constants) != 5 {
		t.Fatalf("spec opset %d, %d inputs, %d outputs, %d constants", spec.Opset, spec.NumInputs, spec.NumOutputs, len(spec.Constants))
	}
	wantConst := []*Tensor{nil, FromData([]float64{1, -1}, 2), FromData([]float64{0.5, -1}, 2), nil, Scalar(2)}
	if !reflect.DeepEqual(spec.Constants, wantConst) {
		t.Errorf("constants %v, want %v", spec.Constants, wantConst)
	}
	a := spec.Attrs
	wantInts := map[string][]int64{"i": {-3}, "zero": {0}, "is": {4, 5, 6}, "old": {7}}
	wantFloats := map[string][]float64{"f": {0.25}, "fs": {1, 2.5}}
	wantScalar := map[string]bool{"f": true, "i": true, "zero": true}
	if !reflect.DeepEqual(a.Ints, wantInts) || !reflect.DeepEqual(a.Floats, wantFloats) || !reflect.DeepEqual(a.Scalar, wantScalar) {
		t.Errorf("attrs %+v", a)
	}
	if a.String("s", "") != "SAME_UPPER" || !reflect.DeepEqual(a.Tensors["t"], FromData([]float64{3, 4}, 1, 2)) {
		t.Errorf("string/tensor attrs %+v", a)
	}
}

func TestConstantValue(t *testing.T) {
	mk := func(f func(a Attrs)) Attrs { a := NewAttrs(); f(a); return a }
	tests := []struct {
		name string
		a    Attrs
		want *Tensor
		err  string
	}{
		{"value", mk(func(a Attrs) { a.Tensors["value"] = FromData([]float64{1, 2}, 1, 2) }), FromData([]float64{1, 2}, 1, 2), ""},
		{"value_float", mk(func(a Attrs) { a.SetFloat("value_float", 1.5) }), Scalar(1.5), ""},
		{"value_floats", mk(func(a Attrs) { a.Floats["value_floats"] = []float64{1, 2, 3} }), FromData([]float64{1, 2, 3}, 3), ""},
		{"value_int", mk(func(a Attrs) { a.SetInt("value_int", -4) }), Scalar(-4), ""},
		{"value_ints", mk(func(a Attrs) { a.SetInts("value_ints", []int{1, -1}) }), FromData([]float64{1, -1}, 2), ""},
		{"none", NewAttrs(), nil, "exactly one value"},
		{"two", mk(func(a Attrs) { a.SetInt("value_int", 1); a.SetFloat("value_float", 1) }), nil, "has 2"},
		{"string", mk(func(a Attrs) { a.Strings["value_string"] = "x" }), nil, "unsupported"},
	}
	for _, tc := range tests {
		got, err := constantValue(tc.a)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// TestDecodeONNXErrors checks that bad models give errors that name the file and,
// where one is to blame, the node.
func TestDecodeONNXErrors(t *testing.T) {
	x, y := []*onnx.ValueInfoProto{pvi("x", 1, 2)}, []*onnx.ValueInfoProto{pvi("y", 1, 2)}
	relu := func(name, in, out string) *onnx.NodeProto {
		return pnode(name, "Relu", []string{in}, []string{out})
	}
	graph := func(nodes ...*onnx.NodeProto) *onnx.GraphProto {
		return &onnx.GraphProto{Input: x, Output: y, Node: nodes}
	}
	withInit := func(tp *onnx.TensorProto) *onnx.GraphProto {
		g := graph(relu("r", "x", "y"))
		g.Initializer = []*onnx.TensorProto{tp}
		return g
	}
	withInput := func(in *onnx.ValueInfoProto) *onnx.GraphProto {
		g := graph(relu("r", "x", "y"))
		g.Input = []*onnx.ValueInfoProto{in}
		return g
	}
	seqType := &onnx.ValueInfoProto{Name: "x", Type: &onnx.TypeProto{Value: &onnx.TypeProto_SequenceType{
		SequenceType: &onnx.TypeProto_Sequence{}}}}
	noOpset, err := proto.Marshal(&onnx.ModelProto{Graph: graph(relu("r", "x", "y"))})
	if err != nil {
		t.Fatal(err)
	}
	noGraph, err := proto.Marshal(&onnx.ModelProto{IrVersion: 7})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		data        []byte
		unsupported bool
		msg         string
	}{
		{"garbage", []byte{0xff, 0xff, 0xff}, false, "load m.onnx: not an ONNX model"},
		{"no graph", noGraph, false, "load m.onnx: not an ONNX model: no graph"},
		{"no opset", noOpset, false, "no version for the default ONNX domain"},
		{"lstm", pmodel(t, graph(pnode("n3", "LSTM", []string{"x"}, []string{"y"})), 13), true,
			`load m.onnx: node "n3" (LSTM): unsupported op`},
		{"lstm with dangling input", pmodel(t, graph(pnode("n4", "LSTM", []string{"nowhere"}, []string{"y"})), 13), true,
			`load m.onnx: node "n4" (LSTM): unsupported op`},
		{"ml domain", pmodel(t, graph(&onnx.NodeProto{Name: "s", OpType: "Scaler", Domain: "ai.onnx.ml", Input: []string{"x"}, Output: []string{"y"}}), 13), true,
			`load m.onnx: node "s" (Scaler): unsupported: operator domain "ai.onnx.ml"`},
		{"no op type", pmodel(t, graph(pnode("n", "", []string{"x"}, []string{"y"})), 13), false, `node "n" (): no op type`},
		{"nan initializer", pmodel(t, withInit(pfloats("w", []int64{2}, 1, float32(math.NaN()))), 13), false,
			`load m.onnx: initializer "w": value 1 is NaN`},
		{"inf initializer", pmodel(t, withInit(pfloats("w", []int64{1}, float32(math.Inf(1)))), 13), false, `initializer "w": value 0 is +Inf`},
		{"external initializer", pmodel(t, withInit(&onnx.TensorProto{Name: "w", DataType: onnxFloat, Dims: []int64{1},
			DataLocation: onnx.TensorProto_EXTERNAL}), 13), true, `initializer "w": unsupported: tensor data stored in an external file`},
		{"bad raw length", pmodel(t, withInit(&onnx.TensorProto{Name: "w", DataType: onnxFloat, Dims: []int64{2}, RawData: []byte{1, 2, 3, 4}}), 13), false,
			`initializer "w": dims [2] need more values`},
		{"unnamed initializer", pmodel(t, withInit(pfloats("", []int64{1}, 1)), 13), false, "initializer 0 has no name"},
		{"dangling input", pmodel(t, graph(relu("r", "nowhere", "y")), 13), false,
			`node "r" (Relu): input "nowhere" is not a graph input, an initializer or any node's output`},
		{"cycle", pmodel(t, graph(relu("a", "x", "h"), relu("b", "h2", "h3"), relu("c", "h3", "h2"), relu("d", "h", "y")), 13), false,
			`node "b" (Relu): cannot be ordered`},
		{"two producers", pmodel(t, graph(relu("a", "x", "y"), relu("b", "x", "y")), 13), false,
			`node "b" (Relu): output "y" is also produced by node "a"`},
		{"output shadows input", pmodel(t, graph(relu("a", "x", "x")), 13), false, `output "x" is also a graph input`},
		{"output never produced", pmodel(t, graph(relu("a", "x", "h")), 13), false, `graph output "y" is never produced`},
		{"negative input dim", pmodel(t, withInput(pvi("x", 1, -2)), 13), false, "negative dimension -2"},
		{"absurd input shape", pmodel(t, withInput(pvi("x", 1<<20, 1<<20, 1<<20)), 13), false, "shape of more than"},
		{"unnamed input", pmodel(t, withInput(pvi("", 1)), 13), false, "graph input 0: no name"},
		{"sequence input", pmodel(t, withInput(seqType), 13), true, "not a tensor"},
		{"duplicate attribute", pmodel(t, graph(pnode("r", "Relu", []string{"x"}, []string{"y"},
			&onnx.AttributeProto{Name: "a", Type: onnx.AttributeProto_INT}, &onnx.AttributeProto{Name: "a", Type: onnx.AttributeProto_INT})), 13), false,
			`node "r" (Relu): attribute "a" appears twice`},
		{"graph attribute", pmodel(t, graph(pnode("r", "Relu", []string{"x"}, []string{"y"},
			&onnx.AttributeProto{Name: "body", Type: onnx.AttributeProto_GRAPH, G: &onnx.GraphProto{}})), 13), true,
			`node "r" (Relu): unsupported: attribute "body" of type GRAPH`},
		{"constant without value", pmodel(t, graph(pnode("c", "Constant", nil, []string{"y"})), 13), false,
			`node "c" (Constant): a Constant needs exactly one value attribute`},
		{"nan constant", pmodel(t, graph(pnode("c", "Constant", nil, []string{"y"},
			pattrT("value", pfloats("", []int64{1}, float32(math.NaN()))))), 13), false, `node "c" (Constant): value 0 is NaN`},
		{"constructor error", pmodel(t, graph(pnode("b", "Bad", []string{"x"}, []string{"y"})), 13), false, `node "b" (Bad): bad attributes`},
		{"constructor panic", pmodel(t, graph(pnode("p", "Boom", []string{"x"}, []string{"y"})), 13), false, `node "p" (Boom): op constructor panicked`},
		{"bad opset", pmodel(t, graph(relu("r", "x", "y")), -1), false, "invalid default-domain version -1"},
	}
	ctors := spyCtors(nil)
	ctors["Constant"] = newConstant
	ctors["Bad"] = func(NodeSpec) (Op, error) { return nil, fmt.Errorf("bad attributes") }
	ctors["Boom"] = func(spec NodeSpec) (Op, error) { return nil, fmt.Errorf("%v", spec.Constants[7]) }
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := decodeONNX(tc.data, ctors)
			if err == nil {
				t.Fatalf("no error; graph %+v", g)
			}
			err = fmt.Errorf("load m.onnx: %w", err) // as DecodeONNX words it
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
			if errors.Is(err, ErrUnsupported) != tc.unsupported {
				t.Errorf("errors.Is(err, ErrUnsupported) = %v, want %v", !tc.unsupported, tc.unsupported)
			}
		})
	}
}

// TestDecodeONNXNamesFile checks the exported entry points' wording.
func TestDecodeONNXNamesFile(t *testing.T) {
	g := &onnx.GraphProto{Input: []*onnx.ValueInfoProto{pvi("x", 1)}, Output: []*onnx.ValueInfoProto{pvi("y", 1)},
		Node: []*onnx.NodeProto{pnode("n3", "LSTM", []string{"x"}, []string{"y"})}}
	_, err := DecodeONNX(pmodel(t, g, 13), "m.onnx")
	if err == nil || err.Error() != `load m.onnx: node "n3" (LSTM): unsupported op` {
		t.Errorf("error %v", err)
	}
	_, err = ReadONNX("testdata/does-not-exist.onnx")
	if err == nil || !strings.HasPrefix(err.Error(), "load testdata/does-not-exist.onnx: ") {
		t.Errorf("error %v", err)
	}
}

// TestImportTrainableWeightsOnly: an imported model's Trainable holds its weights and
// biases, not its normalisation constants or shape tensors.
func TestImportTrainableWeightsOnly(t *testing.T) {
	g, err := ReadONNX("../testdata/pytorch/mlp_op9.onnx")
	if err != nil {
		t.Fatal(err)
	}
	// 3 Gemm layers: 3 weights and 3 biases; the Sub/Div constants stay fixed.
	if len(g.Trainable) != 6 {
		t.Fatalf("trainable %v, want the 6 Gemm weights and biases", g.Trainable)
	}
	for _, name := range g.Trainable {
		used := ""
		for _, n := range g.Nodes {
			for _, in := range n.Inputs {
				if in == name {
					used = n.Op.OpType()
				}
			}
		}
		switch used {
		case "Gemm", "MatMul", "Conv", "Add", "BatchNormalization":
		default:
			t.Errorf("param %q (used by %q) marked trainable", name, used)
		}
	}
}
