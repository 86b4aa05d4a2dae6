package nets

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// The builders below make freshly initialised classifiers with one data input
// "input" of shape [batch, ...] (dynamic batch) and one output "logits". Weights are
// He-initialised, w ~ N(0, 2/fan_in) (He et al., "Delving Deep into Rectifiers",
// ICCV 2015, eq. 10), biases start at 0; every weight and bias is Trainable.

// MLP returns Flatten → Gemm → Relu → … → Gemm: a fully connected ReLU network on
// inputs of per-sample shape input, with layer widths sizes (the last is the number
// of classes). MLP(r, []int{1, 28, 28}, 100, 100, 10) is the 784-100-100-10 MNIST
// network.
func MLP(r *rand.Rand, input []int, sizes ...int) (*Graph, error) {
	if len(sizes) == 0 {
		return nil, fmt.Errorf("mlp: no layer sizes")
	}
	for _, d := range append(append([]int(nil), input...), sizes...) {
		if d <= 0 {
			return nil, fmt.Errorf("mlp: input %v, sizes %v: dimensions must be positive", input, sizes)
		}
	}
	b := newBuilder("mlp", r, input)
	b.add("Flatten", "flatten", intAttrs("axis", 1))
	width := NumElements(input)
	for i, s := range sizes {
		b.dense(fmt.Sprintf("fc%d", i+1), width, s)
		width = s
		if i < len(sizes)-1 {
			b.add("Relu", fmt.Sprintf("relu%d", i+1), NewAttrs())
		}
	}
	return b.finish(sizes[len(sizes)-1])
}

// MNISTCNN returns the small convolutional network of Wong & Kolter, "Provable
// defenses against adversarial examples via the convex outer adversarial polytope",
// ICML 2018 (their MNIST model): on [batch,1,28,28],
//
//	Conv 16×4×4 stride 2 pad 1 → ReLU → Conv 32×4×4 stride 2 pad 1 → ReLU
//	→ Flatten → Gemm 1568→100 → ReLU → Gemm 100→10.
func MNISTCNN(r *rand.Rand) (*Graph, error) {
	b := newBuilder("mnist_cnn", r, []int{1, 28, 28})
	b.conv("conv1", 1, 16, 4, 2, 1)
	b.add("Relu", "relu1", NewAttrs())
	b.conv("conv2", 16, 32, 4, 2, 1)
	b.add("Relu", "relu2", NewAttrs())
	b.add("Flatten", "flatten", intAttrs("axis", 1))
	b.dense("fc1", 32*7*7, 100)
	b.add("Relu", "relu3", NewAttrs())
	b.dense("fc2", 100, 10)
	return b.finish(10)
}

func intAttrs(name string, v int) Attrs {
	a := NewAttrs()
	a.SetInt(name, v)
	return a
}

// builder chains single-input nodes; the first error sticks.
type builder struct {
	g   *Graph
	r   *rand.Rand
	cur string // the value the next node reads
	err error
}

func newBuilder(name string, r *rand.Rand, input []int) *builder {
	g := &Graph{
		Name:   name,
		Inputs: []ValueInfo{{Name: "input", Shape: append([]int{-1}, input...)}},
		Params: map[string]*Tensor{},
		Opset:  13,
	}
	return &builder{g: g, r: r, cur: "input"}
}

// add appends a node reading the current value (and params) and producing value name.
func (b *builder) add(opType, name string, attrs Attrs, params ...string) {
	if b.err != nil {
		return
	}
	ctor, ok := Constructors()[opType]
	if !ok {
		b.err = fmt.Errorf("%s: op %s not registered", b.g.Name, opType)
		return
	}
	op, err := ctor(NodeSpec{Attrs: attrs, Opset: b.g.Opset, NumInputs: 1 + len(params), NumOutputs: 1})
	if err != nil {
		b.err = fmt.Errorf("%s: node %s (%s): %w", b.g.Name, name, opType, err)
		return
	}
	b.g.Nodes = append(b.g.Nodes, &Node{Name: name, Op: op, Inputs: append([]string{b.cur}, params...), Outputs: []string{name}})
	b.cur = name
}

// param adds a trainable param of the given shape, N(0, 2/fanIn) or zero when fanIn is 0.
func (b *builder) param(name string, fanIn int, shape ...int) string {
	t := NewTensor(shape...)
	if fanIn > 0 {
		sd := math.Sqrt(2 / float64(fanIn))
		for i := range t.Data {
			t.Data[i] = sd * b.r.NormFloat64()
		}
	}
	b.g.Params[name] = t
	b.g.Trainable = append(b.g.Trainable, name)
	return name
}

// dense adds Gemm(x, W, b) with transB=1, W of shape [out, in] as in PyTorch's Linear.
func (b *builder) dense(name string, in, out int) {
	a := NewAttrs()
	a.SetInt("transB", 1)
	w := b.param(name+".weight", in, out, in)
	bias := b.param(name+".bias", 0, out)
	b.add("Gemm", name, a, w, bias)
}

// conv adds a square Conv with cout filters of size k over cin channels.
func (b *builder) conv(name string, cin, cout, k, stride, pad int) {
	a := NewAttrs()
	a.SetInts("kernel_shape", []int{k, k})
	a.SetInts("strides", []int{stride, stride})
	a.SetInts("pads", []int{pad, pad, pad, pad})
	w := b.param(name+".weight", cin*k*k, cout, cin, k, k)
	bias := b.param(name+".bias", 0, cout)
	b.add("Conv", name, a, w, bias)
}

// finish renames the last value "logits", declares it the output and validates.
func (b *builder) finish(classes int) (*Graph, error) {
	if b.err != nil {
		return nil, b.err
	}
	last := b.g.Nodes[len(b.g.Nodes)-1]
	last.Outputs[0] = "logits"
	b.g.Outputs = []ValueInfo{{Name: "logits", Shape: []int{-1, classes}}}
	if err := b.g.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", b.g.Name, err)
	}
	return b.g, nil
}
