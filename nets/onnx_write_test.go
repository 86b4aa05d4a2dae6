package nets

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// attrsFixture has one attribute of every kind the writer encodes, zeros included
// (proto3 leaves zero scalars off the wire; the reader must still see them).
func attrsFixture() Attrs {
	a := NewAttrs()
	a.SetInt("axis", 0)
	a.SetInt("group", 2)
	a.SetInts("pads", []int{1, 1, 0, 0})
	a.SetInts("empty", nil)
	a.SetFloat("alpha", 0.5)
	a.SetFloat("beta", 0)
	a.Floats["scales"] = []float64{1, 2.25}
	a.Strings["mode"] = "constant"
	a.Tensors["t"] = FromData([]float64{1, -2.5}, 2)
	return a
}

// spyGraph is x → Relu → Spy(attrs) → y with one float param feeding the spy.
func spyGraph() *Graph {
	return &Graph{
		Name:    "spy",
		Inputs:  []ValueInfo{{Name: "x", Shape: []int{-1, 2, -1}}},
		Outputs: []ValueInfo{{Name: "y", Shape: []int{-1, 2, 3}}},
		Params:  map[string]*Tensor{"w": FromData([]float64{0.5, -0.25}, 2), "unused": Scalar(3)},
		Nodes: []*Node{
			{Name: "r", Op: Relu{}, Inputs: []string{"x"}, Outputs: []string{"h"}},
			{Name: "s", Op: spyOp{typ: "Spy", attrs: attrsFixture()}, Inputs: []string{"h", "w", ""}, Outputs: []string{"y"}},
		},
		Opset: 11,
	}
}

func TestEncodeONNXHeader(t *testing.T) {
	g := spyGraph()
	g.Opset = 0
	data, err := EncodeONNX(g)
	if err != nil {
		t.Fatal(err)
	}
	var m onnx.ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.IrVersion != 8 || m.ProducerName != "certify" || len(m.OpsetImport) != 1 ||
		m.OpsetImport[0].Domain != "" || m.OpsetImport[0].Version != 13 {
		t.Errorf("header: ir %d producer %q opsets %v", m.IrVersion, m.ProducerName, m.OpsetImport)
	}
	in := m.Graph.Input[0].Type.GetTensorType()
	if in.ElemType != onnxFloat || in.Shape.Dim[0].GetDimParam() != "batch" || in.Shape.Dim[1].GetDimValue() != 2 ||
		in.Shape.Dim[2].GetDimParam() != "d2" {
		t.Errorf("input type %v", in)
	}
	// Initializers sorted by name, float32 raw data.
	if len(m.Graph.Initializer) != 2 || m.Graph.Initializer[0].Name != "unused" || m.Graph.Initializer[1].Name != "w" {
		t.Fatalf("initializers %v", m.Graph.Initializer)
	}
	if w := m.Graph.Initializer[1]; w.DataType != onnxFloat || !bytes.Equal(w.RawData, le(float32(0.5), float32(-0.25))) {
		t.Errorf("w = %v", w)
	}
	// Attributes sorted by name, with their kinds.
	var got []string
	for _, a := range m.Graph.Node[1].Attribute {
		got = append(got, a.Name+":"+a.Type.String())
	}
	want := []string{"alpha:FLOAT", "axis:INT", "beta:FLOAT", "empty:INTS", "group:INT", "mode:STRING", "pads:INTS", "scales:FLOATS", "t:TENSOR"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("attributes %v, want %v", got, want)
	}
}

// TestONNXRoundTripSpy writes a graph and reads it back: same structure, same
// attributes, same outputs; and writing is deterministic, byte for byte.
func TestONNXRoundTripSpy(t *testing.T) {
	g := spyGraph()
	data, err := EncodeONNX(g)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ { // map order is random: any dependence on it shows here
		again, err := EncodeONNX(g)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("encoding %d differs from the first (%v)", i, err)
		}
	}
	specs := map[string][]NodeSpec{}
	g2, err := decodeONNX(data, spyCtors(specs, "Spy"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g2.Inputs, g.Inputs) || !reflect.DeepEqual(g2.Outputs, g.Outputs) || g2.Opset != 11 || g2.Name != "spy" {
		t.Errorf("read back inputs %v outputs %v opset %d name %q", g2.Inputs, g2.Outputs, g2.Opset, g2.Name)
	}
	if !reflect.DeepEqual(g2.Params, g.Params) {
		t.Errorf("params %v, want %v", g2.Params, g.Params)
	}
	if len(g2.Nodes) != 2 || !reflect.DeepEqual(g2.Nodes[1].Inputs, []string{"h", "w", ""}) {
		t.Fatalf("nodes %v", g2.Nodes)
	}
	if got, want := specs["Spy"][0].Attrs, attrsFixture(); !reflect.DeepEqual(got, want) {
		t.Errorf("attrs read back %+v, want %+v", got, want)
	}
	again, err := EncodeONNX(g2)
	if err != nil || !bytes.Equal(again, data) {
		t.Errorf("re-encoding the read graph changes the bytes (%v)", err)
	}
}

// shapeGraph reshapes x with a param and with a Constant: both shapes must be
// written as int64, as the ONNX schema of Reshape requires.
func shapeGraph(t *testing.T) *Graph {
	ctors := Constructors()
	op := func(typ string, spec NodeSpec) Op {
		if spec.Attrs.Ints == nil {
			spec.Attrs = NewAttrs()
		}
		o, err := ctors[typ](spec)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		return o
	}
	shape := FromData([]float64{-1, 6}, 2)
	cattrs := NewAttrs()
	cattrs.Tensors["value"] = FromData([]float64{-1, 2, 3}, 3)
	return &Graph{
		Inputs:  []ValueInfo{{Name: "x", Shape: []int{-1, 2, 3}}},
		Outputs: []ValueInfo{{Name: "y", Shape: []int{-1, 2, 3}}},
		Params:  map[string]*Tensor{"shape": shape},
		Nodes: []*Node{
			{Name: "flat", Op: op("Reshape", NodeSpec{Opset: 13, NumInputs: 2, Constants: []*Tensor{nil, shape}}), Inputs: []string{"x", "shape"}, Outputs: []string{"f"}},
			{Name: "c", Op: op("Constant", NodeSpec{Attrs: cattrs, Opset: 13}), Outputs: []string{"s2"}},
			{Name: "back", Op: op("Reshape", NodeSpec{Opset: 13, NumInputs: 2}), Inputs: []string{"f", "s2"}, Outputs: []string{"y"}},
		},
	}
}

func TestEncodeONNXIntInputs(t *testing.T) {
	data, err := EncodeONNX(shapeGraph(t))
	if err != nil {
		t.Fatal(err)
	}
	var m onnx.ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if s := m.Graph.Initializer[0]; s.DataType != onnxInt64 || !bytes.Equal(s.RawData, le(int64(-1), int64(6))) {
		t.Errorf("shape initializer %v", s)
	}
	if v := m.Graph.Node[1].Attribute[0].T; v.DataType != onnxInt64 || !bytes.Equal(v.RawData, le(int64(-1), int64(2), int64(3))) {
		t.Errorf("Constant value %v", v)
	}
	g2, err := DecodeONNX(data, "shape.onnx")
	if err != nil {
		t.Fatal(err)
	}
	x := FromData([]float64{1, 2, 3, 4, 5, 6}, 1, 2, 3)
	y, err := runSingle(g2, x)
	if err != nil || !reflect.DeepEqual(y, x) {
		t.Errorf("reshape there and back: %v, %v", y, err)
	}
}

func TestEncodeONNXErrors(t *testing.T) {
	nanParam := spyGraph()
	nanParam.Params["w"] = FromData([]float64{math.NaN(), 0}, 2)
	fracShape := shapeGraph(t)
	fracShape.Params["shape"] = FromData([]float64{-1, 6.5}, 2)
	conflict := shapeGraph(t)
	conflict.Nodes = append(conflict.Nodes, &Node{Name: "r", Op: Relu{}, Inputs: []string{"shape"}, Outputs: []string{"z"}})
	dangling := spyGraph()
	dangling.Nodes[1].Inputs[1] = "nowhere"
	badScalar := spyGraph()
	a := attrsFixture()
	a.Ints["axis"] = []int64{1, 2}
	badScalar.Nodes[1].Op = spyOp{typ: "Spy", attrs: a}
	twoKinds := spyGraph()
	a = attrsFixture()
	a.Floats["axis"] = []float64{1}
	twoKinds.Nodes[1].Op = spyOp{typ: "Spy", attrs: a}
	tests := []struct {
		name string
		g    *Graph
		msg  string
	}{
		{"nil", nil, "nil graph"},
		{"nan param", nanParam, `param "w": tensor "w": value 0 is NaN`},
		{"fractional shape", fracShape, `param "shape": tensor "shape": value 1 (6.5) is not an int64`},
		{"float and int use", conflict, `node "r" (Relu): "shape" is used both as INT64 and as FLOAT`},
		{"dangling", dangling, `input "nowhere" is not produced before it`},
		{"bad scalar", badScalar, `node "s" (Spy): attribute "axis": single INT with 2 values`},
		{"two kinds", twoKinds, `node "s" (Spy): attribute "axis" has values of several kinds`},
	}
	for _, tc := range tests {
		_, err := EncodeONNX(tc.g)
		if err == nil || !strings.HasPrefix(err.Error(), "encode ONNX: ") || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.msg)
		}
	}
	if err := WriteONNX(spyGraph(), filepath.Join(t.TempDir(), "no", "such", "dir.onnx")); err == nil || !strings.HasPrefix(err.Error(), "write ") {
		t.Errorf("WriteONNX to a missing folder: %v", err)
	}
}

// f32 rounds to float32, so that export (float32 weights) keeps values exactly.
func f32(r *rand.Rand, shape ...int) *Tensor {
	t := NewTensor(shape...)
	for i := range t.Data {
		t.Data[i] = float64(float32(r.NormFloat64() * 0.5))
	}
	return t
}

// convNet builds, through the registered constructors, a small CNN using most ops:
// (x-mean)/std → Pad → Conv → BatchNormalization → Relu → MaxPool → AveragePool →
// Concat with itself plus GlobalAveragePool → Transpose → Flatten → Gemm → Tanh/Sigmoid/Add →
// Dropout → Softmax, plus MatMul/Mul/Identity/Reshape through a Constant shape.
func convNet(t testing.TB) *Graph {
	r := rand.New(rand.NewPCG(3, 5))
	ctors := Constructors()
	params := map[string]*Tensor{
		"mean": Scalar(0.5), "std": Scalar(0.25),
		"pads": FromData([]float64{0, 0, 1, 1, 0, 0, 1, 1}, 8),
		"W":    f32(r, 4, 1, 3, 3), "B": f32(r, 4),
		"scale": f32(r, 4), "bias": f32(r, 4), "rmean": f32(r, 4), "rvar": FromData([]float64{1, 0.5, 2, 0.25}, 4),
		"G": f32(r, 3, 72), "gb": f32(r, 3),
		"M": f32(r, 3, 3), "k": f32(r, 3),
	}
	type nd struct {
		name, op string
		in, out  []string
		attrs    func(a Attrs)
	}
	nodes := []nd{
		{"sub", "Sub", []string{"x", "mean"}, []string{"x1"}, nil},
		{"div", "Div", []string{"x1", "std"}, []string{"x2"}, nil},
		{"pad", "Pad", []string{"x2", "pads"}, []string{"x3"}, nil},
		{"conv", "Conv", []string{"x3", "W", "B"}, []string{"c"}, func(a Attrs) { a.SetInts("kernel_shape", []int{3, 3}); a.SetInts("strides", []int{1, 1}) }},
		{"bn", "BatchNormalization", []string{"c", "scale", "bias", "rmean", "rvar"}, []string{"bn"}, func(a Attrs) { a.SetFloat("epsilon", 1e-5) }},
		{"relu", "Relu", []string{"bn"}, []string{"h"}, nil},
		{"maxpool", "MaxPool", []string{"h"}, []string{"mp"}, func(a Attrs) { a.SetInts("kernel_shape", []int{2, 2}); a.SetInts("strides", []int{2, 2}) }},
		{"avgpool", "AveragePool", []string{"mp"}, []string{"ap"}, func(a Attrs) {
			a.SetInts("kernel_shape", []int{2, 2})
			a.SetInts("pads", []int{0, 0, 1, 1})
			a.SetInt("count_include_pad", 0)
		}},
		{"gap", "GlobalAveragePool", []string{"ap"}, []string{"g"}, nil},
		{"bcast", "Add", []string{"ap", "g"}, []string{"apg"}, nil},
		{"cat", "Concat", []string{"ap", "apg"}, []string{"cat"}, func(a Attrs) { a.SetInt("axis", 3) }},
		{"tr", "Transpose", []string{"cat"}, []string{"tr"}, func(a Attrs) { a.SetInts("perm", []int{0, 1, 3, 2}) }},
		{"flat", "Flatten", []string{"tr"}, []string{"fl"}, func(a Attrs) { a.SetInt("axis", 1) }},
		{"gemm", "Gemm", []string{"fl", "G", "gb"}, []string{"z"}, func(a Attrs) { a.SetInt("transB", 1); a.SetFloat("alpha", 0.5) }},
		{"tanh", "Tanh", []string{"z"}, []string{"th"}, nil},
		{"sig", "Sigmoid", []string{"z"}, []string{"sg"}, nil},
		{"add", "Add", []string{"th", "sg"}, []string{"s"}, nil},
		{"mm", "MatMul", []string{"s", "M"}, []string{"mm"}, nil},
		{"mul", "Mul", []string{"mm", "k"}, []string{"mk"}, nil},
		{"shape", "Constant", nil, []string{"shp"}, func(a Attrs) { a.Tensors["value"] = FromData([]float64{0, 3}, 2) }},
		{"reshape", "Reshape", []string{"mk", "shp"}, []string{"rs"}, nil},
		{"id", "Identity", []string{"rs"}, []string{"id"}, nil},
		{"drop", "Dropout", []string{"id"}, []string{"dr"}, nil},
		{"softmax", "Softmax", []string{"dr"}, []string{"y"}, func(a Attrs) { a.SetInt("axis", -1) }},
	}
	g := &Graph{
		Name:    "convnet",
		Inputs:  []ValueInfo{{Name: "x", Shape: []int{-1, 1, 6, 6}}},
		Outputs: []ValueInfo{{Name: "y", Shape: []int{-1, 3}}},
		Params:  params,
		Opset:   13,
	}
	consts := map[string]*Tensor{}
	for k, v := range params {
		consts[k] = v
	}
	for _, n := range nodes {
		a := NewAttrs()
		if n.attrs != nil {
			n.attrs(a)
		}
		spec := NodeSpec{Attrs: a, Opset: 13, NumInputs: len(n.in), NumOutputs: len(n.out), Constants: make([]*Tensor, len(n.in))}
		for j, in := range n.in {
			spec.Constants[j] = consts[in]
		}
		if n.op == "Constant" {
			consts[n.out[0]] = a.Tensors["value"]
		}
		ctor, ok := ctors[n.op]
		if !ok {
			t.Fatalf("no constructor for %s", n.op)
		}
		op, err := ctor(spec)
		if err != nil {
			t.Fatalf("node %s (%s): %v", n.name, n.op, err)
		}
		g.Nodes = append(g.Nodes, &Node{Name: n.name, Op: op, Inputs: n.in, Outputs: n.out})
	}
	return g
}

// TestONNXRoundTripOps exports a graph of real ops, reads it back and compares the
// outputs on a random batch: every op's Attrs must reproduce the op.
func TestONNXRoundTripOps(t *testing.T) {
	g := convNet(t)
	x := f32(rand.New(rand.NewPCG(1, 2)), 3, 1, 6, 6)
	want, err := runSingle(g, x)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "convnet.onnx")
	if err := WriteONNX(g, path); err != nil {
		t.Fatal(err)
	}
	g2, err := ReadONNX(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := runSingle(g2, x)
	if err != nil {
		t.Fatal(err)
	}
	// Float attributes are float32 in ONNX (BatchNormalization's epsilon 1e-5 is
	// read back as 9.99999974e-06), so the outputs agree closely, not exactly.
	if !SameShape(got.Shape, []int{3, 3}) || !SameShape(got.Shape, want.Shape) {
		t.Fatalf("after round trip %v, before %v", got, want)
	}
	for i := range got.Data {
		if math.Abs(got.Data[i]-want.Data[i]) > 1e-9 {
			t.Errorf("output %d after round trip %.17g, before %.17g", i, got.Data[i], want.Data[i])
		}
	}
	// A second round trip is exact: the bytes and every op are a fixed point.
	data, err := EncodeONNX(g2)
	if err != nil {
		t.Fatal(err)
	}
	if first, err := os.ReadFile(path); err != nil || !bytes.Equal(first, data) {
		t.Errorf("re-export of the read graph differs from the first export (%v)", err)
	}
	g3, err := DecodeONNX(data, "again")
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range g3.Nodes {
		if !reflect.DeepEqual(n.Op, g2.Nodes[i].Op) {
			t.Errorf("node %q: op %#v read back as %#v", n.Name, g2.Nodes[i].Op, n.Op)
		}
	}
}

// onnxChecker runs onnx.checker.check_model(full_check=True) of Debian's
// python3-onnx on each file and returns its report per file ("" when valid).
func onnxChecker(t *testing.T, paths ...string) []string {
	t.Helper()
	const python = "/usr/bin/python3"
	const script = `
import sys, onnx
for p in sys.argv[1:]:
    try:
        onnx.checker.check_model(onnx.load(p), full_check=True)
        print("ok")
    except Exception as e:
        print("FAIL " + str(e).replace("\n", " "))
`
	if os.Getenv("CERTIFY_NO_PYTHON") == "1" {
		t.Skip("CERTIFY_NO_PYTHON=1: not running onnx.checker")
	}
	if out, err := exec.Command(python, "-c", "import onnx").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import onnx (%v: %s): run `make deps` (Debian python3-onnx), or set CERTIFY_NO_PYTHON=1 to skip", python, err, out)
	}
	out, err := exec.Command(python, append([]string{"-c", script}, paths...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx.checker: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(paths) {
		t.Fatalf("onnx.checker printed %d lines for %d files: %s", len(lines), len(paths), out)
	}
	reports := make([]string, len(lines))
	for i, l := range lines {
		if l != "ok" {
			reports[i] = l
		}
	}
	return reports
}

// TestExportONNXChecker validates exported models with the reference ONNX checker,
// including full shape inference: the hand-built graphs, attribute encodings with
// zero values, and a re-export of every VNN-COMP family.
func TestExportONNXChecker(t *testing.T) {
	dir := t.TempDir()
	graphs := map[string]*Graph{"convnet": convNet(t), "shape": shapeGraph(t)}

	// Real ONNX op types with zero-valued scalar attributes, which proto3 leaves off
	// the wire: the checker must accept them.
	gemm := NewAttrs()
	gemm.SetInt("transA", 0)
	gemm.SetInt("transB", 1)
	gemm.SetFloat("beta", 0)
	leaky := NewAttrs()
	leaky.SetFloat("alpha", 0)
	graphs["zeros"] = &Graph{
		Inputs:  []ValueInfo{{Name: "x", Shape: []int{-1, 4}}},
		Outputs: []ValueInfo{{Name: "y", Shape: []int{-1, 2}}},
		Params:  map[string]*Tensor{"W": NewTensor(2, 4), "b": NewTensor(2)},
		Nodes: []*Node{
			{Name: "gemm", Op: spyOp{typ: "Gemm", attrs: gemm}, Inputs: []string{"x", "W", "b"}, Outputs: []string{"h"}},
			{Name: "leaky", Op: spyOp{typ: "LeakyRelu", attrs: leaky}, Inputs: []string{"h"}, Outputs: []string{"y"}},
		},
	}
	// A re-export of one network per VNN-COMP family, when they are at hand.
	vdir := os.Getenv("CERTIFY_VNNCOMP")
	if vdir == "" {
		vdir = "/work/shared/benchmarks/vnncomp"
	}
	for _, rel := range []string{
		"2021/acasxu/ACASXU_run2a_1_1_batch_2000.onnx", "2021/mnistfc/mnist-net_256x2.onnx",
		"2021/eran/nets/mnist_relu_9_200.onnx", "2021/test/test_small.onnx",
		"2022/collins_rul_cnn/onnx/NN_rul_small_window_20.onnx", "2022/rl_benchmarks/onnx/dubinsrejoin.onnx",
		"2022/reach_prob_density/onnx/vdp.onnx",
	} {
		if _, err := os.Stat(filepath.Join(vdir, rel)); err != nil {
			t.Logf("skipping %s: %v", rel, err)
			continue
		}
		g, err := ReadONNX(filepath.Join(vdir, rel))
		if err != nil {
			t.Fatal(err)
		}
		graphs[rel] = g
	}
	var names, paths []string
	for name, g := range graphs {
		p := filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".onnx")
		if err := WriteONNX(g, p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		names, paths = append(names, name), append(paths, p)
	}
	for i, rep := range onnxChecker(t, paths...) {
		if rep != "" {
			t.Errorf("%s: %s", names[i], rep)
		}
	}
}

// TestEncodeONNXZeroScalars checks that zero INT, FLOAT and STRING attribute values
// are on the wire (fields i = 3, f = 2, s = 4 of onnx.proto's AttributeProto), as
// proto2 readers need to see them present.
func TestEncodeONNXZeroScalars(t *testing.T) {
	a := NewAttrs()
	a.SetInt("axis", 0)
	a.SetFloat("beta", 0)
	a.Strings["auto_pad"] = ""
	a.SetInt("group", 2)
	aps, err := attrsToProto(a, onnxFloat)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]protowire.Number{
		"auto_pad": {1, 4, 20}, "axis": {1, 3, 20}, "beta": {1, 2, 20}, "group": {1, 3, 20},
	}
	for _, ap := range aps {
		b, err := proto.Marshal(ap)
		if err != nil {
			t.Fatal(err)
		}
		var fields []protowire.Number
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				t.Fatalf("%s: bad tag", ap.Name)
			}
			m := protowire.ConsumeFieldValue(num, typ, b[n:])
			if m < 0 {
				t.Fatalf("%s: bad field %d", ap.Name, num)
			}
			fields = append(fields, num)
			b = b[n+m:]
		}
		sort.Slice(fields, func(i, j int) bool { return fields[i] < fields[j] })
		if !reflect.DeepEqual(fields, want[ap.Name]) {
			t.Errorf("%s: fields %v on the wire, want %v", ap.Name, fields, want[ap.Name])
		}
	}
}
