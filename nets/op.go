package nets

import "fmt"

// Op is one node's computation. Ops hold their static attributes (parsed once at
// import) and no per-call state, so one Op value may run on many goroutines.
//
// Inputs and outputs follow the ONNX operator's positional convention; an absent
// optional input is nil.
type Op interface {
	// OpType is the ONNX operator name, e.g. "Conv".
	OpType() string
	// Forward computes the outputs from the inputs.
	Forward(in []*Tensor) ([]*Tensor, error)
	// Backward returns dL/d(in[i]) for every i with need[i], given the inputs, the
	// outputs of Forward and dL/d(out[j]) (nil for an output that does not reach the
	// loss). Entries not needed may be nil.
	Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error)
	// Attrs returns the ONNX attributes that reproduce this op on export.
	Attrs() Attrs
}

// Attrs are the attributes of an ONNX node, decoded from or encoded to protobuf by
// the ONNX reader and writer. Only the kinds used by supported ops are kept.
type Attrs struct {
	Ints    map[string][]int64
	Floats  map[string][]float64
	Strings map[string]string
	Tensors map[string]*Tensor
	// Scalar records which Ints/Floats entries were single values (INT/FLOAT, not
	// INTS/FLOATS), so that export writes them back the same way.
	Scalar map[string]bool
}

// NewAttrs returns empty, writable attributes.
func NewAttrs() Attrs {
	return Attrs{Ints: map[string][]int64{}, Floats: map[string][]float64{},
		Strings: map[string]string{}, Tensors: map[string]*Tensor{}, Scalar: map[string]bool{}}
}

// Int returns the INT attribute name, or def when it is absent.
func (a Attrs) Int(name string, def int) int {
	if v, ok := a.Ints[name]; ok && len(v) == 1 {
		return int(v[0])
	}
	return def
}

// IntList returns the INTS attribute name, or def when it is absent.
func (a Attrs) IntList(name string, def []int) []int {
	v, ok := a.Ints[name]
	if !ok {
		return def
	}
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// Float returns the FLOAT attribute name, or def when it is absent.
func (a Attrs) Float(name string, def float64) float64 {
	if v, ok := a.Floats[name]; ok && len(v) == 1 {
		return v[0]
	}
	return def
}

// String returns the STRING attribute name, or def when it is absent.
func (a Attrs) String(name string, def string) string {
	if v, ok := a.Strings[name]; ok {
		return v
	}
	return def
}

// SetInt records a single INT attribute.
func (a Attrs) SetInt(name string, v int) {
	a.Ints[name] = []int64{int64(v)}
	a.Scalar[name] = true
}

// SetInts records an INTS attribute.
func (a Attrs) SetInts(name string, v []int) {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	a.Ints[name] = out
}

// SetFloat records a single FLOAT attribute.
func (a Attrs) SetFloat(name string, v float64) {
	a.Floats[name] = []float64{v}
	a.Scalar[name] = true
}

// NodeSpec is what an op constructor sees of an ONNX node: its attributes, the
// opset version of its domain, and which inputs are graph constants (initializers
// or Constant outputs) with their values, for ops whose meaning depends on them.
type NodeSpec struct {
	Attrs     Attrs
	Opset     int
	NumInputs int
	// NumOutputs is how many outputs the node names (trailing unnamed ones not
	// counted); 0 when unknown, taken as 1. Ops with optional outputs (MaxPool
	// Indices, BatchNormalization's training statistics) read it.
	NumOutputs int
	Constants  []*Tensor // per input: its value if constant, else nil
}

// OpConstructor builds an Op from a node's spec.
type OpConstructor func(spec NodeSpec) (Op, error)

// Constructors maps each supported ONNX op type to its constructor. It is a function,
// not a package variable, so that nothing global can be mutated.
func Constructors() map[string]OpConstructor {
	return constructors()
}

// ErrUnsupported is wrapped by errors for ops, attributes or modes we do not implement.
var ErrUnsupported = fmt.Errorf("unsupported")

// unsupported formats an ErrUnsupported with detail.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}
