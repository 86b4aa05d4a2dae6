package nets

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// ReadONNX loads the ONNX model at path as a Graph. See DecodeONNX.
func ReadONNX(path string) (*Graph, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return DecodeONNX(data, path)
}

// DecodeONNX parses a serialized ONNX ModelProto (onnx.proto, IR versions 3 and up)
// into a Graph; name identifies the model in errors ("load name: node "conv1"
// (Conv): ...").
//
// Initializers become Params; graph inputs that are also initializers (exporters
// before IR version 4 listed them) are params, not data inputs. Input dimensions
// that are symbolic (dim_param), 0 or missing are dynamic (-1). Every node must be
// in the default ONNX domain with a registered op; nodes are put in topological
// order when they are not already. Constructors see, in NodeSpec.Constants, the
// values of inputs that are initializers or outputs of Constant nodes.
//
// Hostile input yields an error, never a panic, and allocations are bounded by the
// size of data.
func DecodeONNX(data []byte, name string) (*Graph, error) {
	g, err := decodeONNX(data, Constructors())
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	return g, nil
}

// decodeONNX builds the graph with the given op constructors (tests pass their own).
func decodeONNX(data []byte, ctors map[string]OpConstructor) (*Graph, error) {
	var m onnx.ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not an ONNX model: %w", err)
	}
	gp := m.GetGraph()
	if gp == nil {
		return nil, fmt.Errorf("not an ONNX model: no graph")
	}
	opset, err := defaultOpset(m.GetOpsetImport())
	if err != nil {
		return nil, err
	}
	if len(gp.GetSparseInitializer()) > 0 {
		return nil, unsupported("sparse initializer %q", gp.GetSparseInitializer()[0].GetValues().GetName())
	}
	g := &Graph{Name: gp.GetName(), Params: map[string]*Tensor{}, Opset: opset}
	floatParams := map[string]bool{}

	// Initializers.
	for i, tp := range gp.GetInitializer() {
		name := tp.GetName()
		if name == "" {
			return nil, fmt.Errorf("initializer %d has no name", i)
		}
		if _, dup := g.Params[name]; dup {
			return nil, fmt.Errorf("initializer %q appears twice", name)
		}
		t, dt, err := tensorFromProto(tp)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", name, err)
		}
		if err := checkFinite(t); err != nil {
			return nil, fmt.Errorf("initializer %q: %w", name, err)
		}
		g.Params[name] = t
		if isFloatType(dt) {
			floatParams[name] = true
		}
	}

	// Data inputs and outputs.
	defined := map[string]bool{}
	for name := range g.Params {
		defined[name] = true
	}
	for i, vp := range gp.GetInput() {
		if _, isParam := g.Params[vp.GetName()]; isParam {
			continue
		}
		vi, err := valueInfo(vp)
		if err != nil {
			return nil, fmt.Errorf("graph input %d: %w", i, err)
		}
		if defined[vi.Name] {
			return nil, fmt.Errorf("graph input %q appears twice", vi.Name)
		}
		defined[vi.Name] = true
		g.Inputs = append(g.Inputs, vi)
	}
	for i, vp := range gp.GetOutput() {
		vi, err := valueInfo(vp)
		if err != nil {
			return nil, fmt.Errorf("graph output %d: %w", i, err)
		}
		g.Outputs = append(g.Outputs, vi)
	}

	// Nodes: op types and attributes first, so that an unsupported op is reported
	// as such and Constant values are known to every consumer whatever the node
	// order; then topological order; then the ops.
	nps := gp.GetNode()
	names := make([]string, len(nps))
	attrs := make([]Attrs, len(nps))
	consts := map[string]*Tensor{}
	for name, t := range g.Params {
		consts[name] = t
	}
	for i, np := range nps {
		names[i] = np.GetName()
		if names[i] == "" {
			names[i] = fmt.Sprintf("%s_%d", np.GetOpType(), i)
		}
		where := func(err error) error {
			return fmt.Errorf("node %q (%s): %w", names[i], np.GetOpType(), err)
		}
		if np.GetOpType() == "" {
			return nil, where(fmt.Errorf("no op type"))
		}
		if d := np.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, where(unsupported("operator domain %q", d))
		}
		if _, ok := ctors[np.GetOpType()]; !ok {
			return nil, where(fmt.Errorf("%w op", ErrUnsupported))
		}
		a, err := attrsFromProto(np.GetAttribute())
		if err != nil {
			return nil, where(err)
		}
		attrs[i] = a
		if np.GetOpType() == "Constant" && len(np.GetOutput()) > 0 && np.GetOutput()[0] != "" {
			t, err := constantValue(a)
			if err != nil {
				return nil, where(err)
			}
			if err := checkFinite(t); err != nil {
				return nil, where(err)
			}
			consts[np.GetOutput()[0]] = t
		}
	}
	order, err := topoOrder(nps, names, defined)
	if err != nil {
		return nil, err
	}
	for _, i := range order {
		np := nps[i]
		where := func(err error) error {
			return fmt.Errorf("node %q (%s): %w", names[i], np.GetOpType(), err)
		}
		ins := np.GetInput()
		outs := np.GetOutput()
		numOut := len(outs)
		for numOut > 0 && outs[numOut-1] == "" {
			numOut-- // trailing unnamed outputs are absent optional ones
		}
		spec := NodeSpec{Attrs: attrs[i], Opset: opset, NumInputs: len(ins), NumOutputs: numOut,
			Constants: make([]*Tensor, len(ins))}
		for j, in := range ins {
			if in != "" {
				spec.Constants[j] = consts[in]
			}
		}
		op, err := safeConstruct(ctors[np.GetOpType()], spec)
		if err != nil {
			return nil, where(err)
		}
		if op == nil {
			return nil, where(fmt.Errorf("constructor returned no op"))
		}
		g.Nodes = append(g.Nodes, &Node{
			Name:    names[i],
			Op:      op,
			Inputs:  append([]string(nil), ins...),
			Outputs: append([]string(nil), outs...),
		})
	}
	g.Trainable = weightParams(g, floatParams)
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// safeConstruct runs an op constructor, turning a panic into an error: the reader
// promises never to panic on any file, and a constructor handed attributes it did
// not expect must not break that promise.
func safeConstruct(ctor OpConstructor, spec NodeSpec) (op Op, err error) {
	defer func() {
		if r := recover(); r != nil {
			op, err = nil, fmt.Errorf("op constructor panicked: %v", r)
		}
	}()
	return ctor(spec)
}

// defaultOpset returns the version of the default ONNX domain ("" or "ai.onnx")
// from the model's opset_import.
func defaultOpset(imports []*onnx.OperatorSetIdProto) (int, error) {
	var v int64
	found := false
	for _, o := range imports {
		if d := o.GetDomain(); d != "" && d != "ai.onnx" {
			continue // other domains matter only if a node uses them
		}
		if found && o.GetVersion() != v {
			return 0, fmt.Errorf("opset_import gives the default domain twice (%d and %d)", v, o.GetVersion())
		}
		v, found = o.GetVersion(), true
	}
	switch {
	case !found:
		return 0, fmt.Errorf("opset_import has no version for the default ONNX domain")
	case v < 1 || v > 1000:
		return 0, fmt.Errorf("opset_import: invalid default-domain version %d", v)
	}
	return int(v), nil
}

// maxInputElements bounds the number of elements a declared input shape may imply:
// far beyond any real network input, and small enough that a caller allocating a
// tensor of that shape cannot overflow int.
const maxInputElements = 1 << 31

// valueInfo converts a graph input or output. A dimension with dim_param, with
// dim_value 0 or with no value is dynamic (-1); a missing shape is nil (unknown).
func valueInfo(vp *onnx.ValueInfoProto) (ValueInfo, error) {
	vi := ValueInfo{Name: vp.GetName()}
	if vi.Name == "" {
		return vi, fmt.Errorf("no name")
	}
	tt := vp.GetType().GetTensorType()
	if vp.GetType() != nil && vp.GetType().GetValue() != nil && tt == nil {
		return vi, unsupported("value %q is not a tensor", vi.Name)
	}
	if tt == nil {
		return vi, nil
	}
	if et := tt.GetElemType(); et != 0 && rawWidth(et) == 0 {
		return vi, unsupported("value %q has element type %s", vi.Name, onnxTypeName(et))
	}
	sp := tt.GetShape()
	if sp == nil {
		return vi, nil
	}
	vi.Shape = make([]int, len(sp.GetDim()))
	n := 1
	for i, d := range sp.GetDim() {
		v := d.GetDimValue()
		switch {
		case v < 0:
			return vi, fmt.Errorf("value %q: negative dimension %d", vi.Name, v)
		case v == 0:
			vi.Shape[i] = -1
			continue
		case v > maxInputElements/int64(n):
			return vi, fmt.Errorf("value %q: shape of more than %d elements", vi.Name, maxInputElements)
		}
		vi.Shape[i] = int(v)
		n *= int(v)
	}
	return vi, nil
}

// checkFinite reports the first NaN or infinite value of t: a model holding one is
// broken, and every bound computed through it would be meaningless.
func checkFinite(t *Tensor) error {
	for i, v := range t.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("value %d is %v", i, v)
		}
	}
	return nil
}

// attrsFromProto converts node attributes. Kinds no supported op uses (graphs,
// lists of strings or tensors, sparse tensors, types) are refused rather than
// dropped, since ignoring an attribute could silently change an op's meaning.
func attrsFromProto(aps []*onnx.AttributeProto) (Attrs, error) {
	a := NewAttrs()
	seen := map[string]bool{}
	for _, ap := range aps {
		name := ap.GetName()
		if name == "" {
			return a, fmt.Errorf("attribute with no name")
		}
		if seen[name] {
			return a, fmt.Errorf("attribute %q appears twice", name)
		}
		seen[name] = true
		if ap.GetRefAttrName() != "" {
			return a, unsupported("attribute %q refers to a function attribute", name)
		}
		switch attrType(ap) {
		case onnx.AttributeProto_FLOAT:
			a.Floats[name] = []float64{float64(ap.GetF())}
			a.Scalar[name] = true
		case onnx.AttributeProto_INT:
			a.Ints[name] = []int64{ap.GetI()}
			a.Scalar[name] = true
		case onnx.AttributeProto_STRING:
			a.Strings[name] = string(ap.GetS())
		case onnx.AttributeProto_FLOATS:
			fs := make([]float64, len(ap.GetFloats()))
			for i, f := range ap.GetFloats() {
				fs[i] = float64(f)
			}
			a.Floats[name] = fs
		case onnx.AttributeProto_INTS:
			a.Ints[name] = append([]int64{}, ap.GetInts()...)
		case onnx.AttributeProto_TENSOR:
			t, _, err := tensorFromProto(ap.GetT())
			if err != nil {
				return a, fmt.Errorf("attribute %q: %w", name, err)
			}
			a.Tensors[name] = t
		default:
			return a, unsupported("attribute %q of type %v", name, ap.GetType())
		}
	}
	return a, nil
}

// attrType is the attribute's declared type or, for old files that left it
// UNDEFINED, the type implied by the one value field that is set.
func attrType(ap *onnx.AttributeProto) onnx.AttributeProto_AttributeType {
	if t := ap.GetType(); t != onnx.AttributeProto_UNDEFINED {
		return t
	}
	switch {
	case len(ap.GetFloats()) > 0:
		return onnx.AttributeProto_FLOATS
	case len(ap.GetInts()) > 0:
		return onnx.AttributeProto_INTS
	case len(ap.GetS()) > 0:
		return onnx.AttributeProto_STRING
	case ap.GetT() != nil:
		return onnx.AttributeProto_TENSOR
	}
	return onnx.AttributeProto_UNDEFINED
}

// constantValue is the output of a Constant node: exactly one of its value
// attributes (ONNX operator Constant, opsets 1-19).
func constantValue(a Attrs) (*Tensor, error) {
	var out []*Tensor
	if t, ok := a.Tensors["value"]; ok {
		out = append(out, t.Clone())
	}
	if v, ok := a.Floats["value_float"]; ok && len(v) == 1 {
		out = append(out, Scalar(v[0]))
	}
	if v, ok := a.Floats["value_floats"]; ok {
		out = append(out, FromData(append([]float64{}, v...), len(v)))
	}
	if v, ok := a.Ints["value_int"]; ok && len(v) == 1 {
		out = append(out, Scalar(float64(v[0])))
	}
	if v, ok := a.Ints["value_ints"]; ok {
		d := make([]float64, len(v))
		for i, x := range v {
			d[i] = float64(x)
		}
		out = append(out, FromData(d, len(d)))
	}
	if len(out) != 1 {
		if _, ok := a.Strings["value_string"]; ok {
			return nil, unsupported("string constant")
		}
		return nil, fmt.Errorf("a Constant needs exactly one value attribute, has %d", len(out))
	}
	return out[0], nil
}

// topoOrder returns node indices in an order where every node comes after the
// producers of its inputs: Kahn's algorithm (Kahn 1962, "Topological sorting of
// large networks"), always taking the lowest-indexed ready node, so that a file
// already in order keeps its order. defined holds the names of graph inputs and
// initializers.
func topoOrder(nps []*onnx.NodeProto, names []string, defined map[string]bool) ([]int, error) {
	producer := map[string]int{}
	for i, np := range nps {
		for _, out := range np.GetOutput() {
			if out == "" {
				continue
			}
			if defined[out] {
				return nil, fmt.Errorf("node %q (%s): output %q is also a graph input or initializer", names[i], np.GetOpType(), out)
			}
			if p, dup := producer[out]; dup {
				return nil, fmt.Errorf("node %q (%s): output %q is also produced by node %q", names[i], np.GetOpType(), out, names[p])
			}
			producer[out] = i
		}
	}
	indeg := make([]int, len(nps))
	consumers := make([][]int, len(nps))
	for i, np := range nps {
		for _, in := range np.GetInput() {
			if in == "" || defined[in] {
				continue
			}
			p, ok := producer[in]
			if !ok {
				return nil, fmt.Errorf("node %q (%s): input %q is not a graph input, an initializer or any node's output", names[i], np.GetOpType(), in)
			}
			indeg[i]++
			consumers[p] = append(consumers[p], i)
		}
	}
	ready := &intHeap{}
	for i, d := range indeg {
		if d == 0 {
			*ready = append(*ready, i)
		}
	}
	heap.Init(ready)
	order := make([]int, 0, len(nps))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		order = append(order, i)
		for _, c := range consumers[i] {
			indeg[c]--
			if indeg[c] == 0 {
				heap.Push(ready, c)
			}
		}
	}
	if len(order) < len(nps) {
		for i, d := range indeg {
			if d > 0 {
				return nil, fmt.Errorf("node %q (%s): cannot be ordered: its inputs depend on a cycle of nodes", names[i], nps[i].GetOpType())
			}
		}
		return nil, errors.New("nodes form a cycle")
	}
	return order, nil
}

// intHeap is a min-heap of node indices for topoOrder.
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// weightParams names the float initializers that play the part of weights or biases,
// sorted: inputs 1 and 2 of Gemm and Conv, either side of MatMul, the scale and shift
// of BatchNormalization, and the constant operand of an Add that follows a
// MatMul/Gemm/Conv (a bias, as older exporters write it). Normalisation constants
// (Sub/Div), running statistics and shape tensors are left out: fine-tuning an
// imported model must not move them.
func weightParams(g *Graph, float map[string]bool) []string {
	producer := map[string]string{}
	for _, n := range g.Nodes {
		for _, out := range n.Outputs {
			producer[out] = n.Op.OpType()
		}
	}
	set := map[string]bool{}
	mark := func(n *Node, idx ...int) {
		for _, i := range idx {
			if i < len(n.Inputs) && float[n.Inputs[i]] {
				set[n.Inputs[i]] = true
			}
		}
	}
	for _, n := range g.Nodes {
		switch n.Op.OpType() {
		case "Gemm", "Conv":
			mark(n, 1, 2)
		case "MatMul":
			mark(n, 0, 1)
		case "BatchNormalization":
			mark(n, 1, 2)
		case "Add":
			if len(n.Inputs) == 2 {
				for i, in := range n.Inputs {
					switch producer[n.Inputs[1-i]] {
					case "MatMul", "Gemm", "Conv":
						if float[in] {
							set[in] = true
						}
					}
				}
			}
		}
	}
	names := make([]string, 0, len(set))
	for name := range set {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
