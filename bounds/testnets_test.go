package bounds

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
)

// builder assembles small random graphs for the tests: one data input "x" with a
// dynamic batch, params drawn N(0, scale²).
type builder struct {
	g   *nets.Graph
	r   *rand.Rand
	cnt int
}

func newBuilder(r *rand.Rand, in ...int) *builder {
	return &builder{r: r, g: &nets.Graph{
		Name:   "test",
		Inputs: []nets.ValueInfo{{Name: "x", Shape: append([]int{-1}, in...)}},
		Params: map[string]*nets.Tensor{},
		Opset:  13,
	}}
}

func (b *builder) name(prefix string) string {
	b.cnt++
	return fmt.Sprintf("%s%d", prefix, b.cnt)
}

// param adds a random param.
func (b *builder) param(scale float64, shape ...int) string {
	t := nets.NewTensor(shape...)
	for i := range t.Data {
		t.Data[i] = scale * b.r.NormFloat64()
	}
	return b.constant(t)
}

// constant adds a fixed param.
func (b *builder) constant(t *nets.Tensor) string {
	n := b.name("p")
	b.g.Params[n] = t
	return n
}

// node appends op on the inputs and returns its output's name.
func (b *builder) node(op nets.Op, in ...string) string {
	out := b.name(op.OpType())
	b.g.Nodes = append(b.g.Nodes, &nets.Node{Name: out, Op: op, Inputs: in, Outputs: []string{out}})
	return out
}

// dense is Gemm(x, W[out, in], b) as PyTorch's Linear.
func (b *builder) dense(x string, in, out int) string {
	return b.node(nets.Gemm{TransB: true, Alpha: 1, Beta: 1}, x, b.param(1.5/math.Sqrt(float64(in)), out, in), b.param(0.3, out))
}

// conv is a 2-D convolution with square kernel k, stride s, padding p.
func (b *builder) conv(x string, cin, cout, k, s, p, group int) string {
	op := nets.Conv{Strides: []int{s, s}, Pads: []int{p, p, p, p}, Group: group}
	return b.node(op, x, b.param(1.5/math.Sqrt(float64(cin/group*k*k)), cout, cin/group, k, k), b.param(0.3, cout))
}

func (b *builder) finish(out string) *nets.Graph {
	b.g.Outputs = []nets.ValueInfo{{Name: out}}
	if err := b.g.Validate(); err != nil {
		panic(err)
	}
	return b.g
}

// testNet is a named graph with the per-sample input shape it takes.
type testNet struct {
	name  string
	g     *nets.Graph
	in    []int
	crown bool // CROWN supports every op on the output's path
}

// testNets returns random networks covering every supported op: chains, a
// residual graph, convolutional nets with BN and pooling, smooth activations,
// normalisation and data movement, and IBP-only ops.
func testNets(seed uint64) []testNet {
	r := rand.New(rand.NewPCG(seed, 17))
	var out []testNet
	add := func(name string, in []int, crown bool, f func(b *builder) string) {
		b := newBuilder(r, in...)
		out = append(out, testNet{name: name, g: b.finish(f(b)), in: in, crown: crown})
	}
	add("mlp-relu", []int{6}, true, func(b *builder) string {
		h := b.node(nets.Relu{}, b.dense("x", 6, 12))
		h = b.node(nets.Relu{}, b.dense(h, 12, 10))
		return b.dense(h, 10, 4)
	})
	add("mlp-mixed", []int{5}, true, func(b *builder) string {
		h := b.node(nets.Sigmoid{}, b.dense("x", 5, 9))
		h = b.node(nets.Tanh{}, b.dense(h, 9, 8))
		h = b.node(nets.Relu{}, b.dense(h, 8, 7))
		return b.dense(h, 7, 3)
	})
	add("tanh-wide", []int{4}, true, func(b *builder) string {
		// Large weights: pre-activations cross 0 far into both tails.
		h := b.node(nets.Tanh{}, b.node(nets.Gemm{TransB: true, Alpha: 4, Beta: 1}, "x", b.param(1, 8, 4), b.param(1, 8)))
		h = b.node(nets.Sigmoid{}, b.node(nets.Gemm{TransB: true, Alpha: 3, Beta: 1}, h, b.param(1, 6, 8), b.param(1, 6)))
		return b.dense(h, 6, 3)
	})
	add("residual", []int{6}, true, func(b *builder) string {
		h1 := b.node(nets.Relu{}, b.dense("x", 6, 8))
		h2 := b.node(nets.Relu{}, b.dense(h1, 8, 8))
		s := b.node(nets.Add{}, h1, b.dense(h2, 8, 8)) // skip connection
		h3 := b.node(nets.Relu{}, s)
		d := b.node(nets.Sub{}, h3, h1) // two bounded operands
		h4 := b.node(nets.Relu{}, b.dense(b.node(nets.Concat{Axis: 1}, d, h2), 16, 6))
		return b.dense(b.node(nets.Add{}, h4, b.dense("x", 6, 6)), 6, 3)
	})
	add("cnn-bn-maxpool", []int{2, 8, 8}, true, func(b *builder) string {
		c := b.conv("x", 2, 4, 3, 1, 1, 1)
		bn := b.node(nets.BatchNormalization{Epsilon: 1e-5}, c, b.param(1, 4), b.param(0.3, 4), b.param(0.3, 4),
			b.constant(nets.FromData([]float64{0.5, 1, 2, 0.8}, 4)))
		h := b.node(nets.Relu{}, bn)
		h = b.node(nets.MaxPool{KernelShape: []int{2, 2}, Strides: []int{2, 2}}, h)
		h = b.node(nets.Relu{}, b.conv(h, 4, 4, 3, 1, 1, 2)) // grouped
		h = b.node(nets.AveragePool{KernelShape: []int{2, 2}, Strides: []int{1, 1}, Pads: []int{0, 0, 1, 1}}, h)
		h = b.node(nets.Flatten{Axis: 1}, h)
		return b.dense(h, 4*4*4, 3)
	})
	add("cnn-strided", []int{1, 9, 9}, true, func(b *builder) string {
		h := b.node(nets.Relu{}, b.conv("x", 1, 3, 4, 2, 1, 1))
		h = b.node(nets.MaxPool{KernelShape: []int{3, 3}, Strides: []int{2, 2}, Pads: []int{1, 1, 1, 1}, CeilMode: true}, h)
		h = b.node(nets.Sigmoid{}, b.conv(h, 3, 5, 2, 1, 0, 1))
		h = b.node(nets.GlobalAveragePool{}, h)
		h = b.node(nets.Flatten{Axis: 1}, h)
		return b.dense(h, 5, 3)
	})
	add("cnn-dilated-avg", []int{2, 7, 7}, true, func(b *builder) string {
		op := nets.Conv{Strides: []int{1, 1}, Pads: []int{2, 2, 2, 2}, Dilations: []int{2, 2}, Group: 1}
		h := b.node(op, "x", b.param(0.6, 3, 2, 3, 3), b.param(0.3, 3))
		h = b.node(nets.Tanh{}, h)
		h = b.node(nets.AveragePool{KernelShape: []int{3, 3}, Strides: []int{2, 2}, Pads: []int{1, 1, 1, 1}, CountIncludePad: true}, h)
		h = b.node(nets.Relu{}, b.conv(h, 3, 3, 2, 1, 0, 1))
		h = b.node(nets.Flatten{Axis: 1}, h)
		return b.dense(h, 3*3*3, 4)
	})
	add("normalise-move", []int{2, 3}, true, func(b *builder) string {
		mean := b.constant(nets.FromData([]float64{0.1, 0.2, 0.3}, 3))
		std := b.constant(nets.FromData([]float64{0.5, 2, 0.25}, 3))
		h := b.node(nets.Div{}, b.node(nets.Sub{}, "x", mean), std)
		h = b.node(nets.Mul{}, b.constant(nets.FromData([]float64{-1.5, 2}, 2, 1)), h) // constant first
		h = b.node(nets.Add{}, h, b.constant(nets.Scalar(0.25)))
		h = b.node(nets.Sub{}, b.constant(nets.Scalar(1)), h) // constant minus bounded
		h = b.node(nets.Transpose{Perm: []int{0, 2, 1}}, h)   // [N,3,2]
		h = b.node(nets.Pad{Pads: []int{0, 1, 0, 0, 0, 1}, Value: 0.5}, h)
		h = b.node(nets.Identity{}, h)
		h = b.node(nets.Dropout{Ratio: 0.5}, h) // [N,4,3]
		h = b.node(nets.Reshape{}, h, b.constant(nets.FromData([]float64{0, -1}, 2)))
		h = b.node(nets.Concat{Axis: 1}, h, b.node(nets.Add{}, b.param(0.5, 1, 3), b.node(nets.MatMul{}, b.dense(h, 12, 3), b.param(1, 3, 3)))) // [N,15]
		h = b.node(nets.Relu{}, b.node(nets.MatMul{}, h, b.param(0.5, 15, 6)))
		h = b.node(nets.Reshape{}, h, b.constant(nets.FromData([]float64{0, 6, 1}, 3)))
		h = b.node(nets.MatMul{}, b.param(0.5, 4, 6), h) // W·X per sample: [N,4,1]
		h = b.node(nets.Relu{}, h)
		h = b.node(nets.Flatten{Axis: 1}, h)
		return b.dense(h, 4, 3)
	})
	add("broadcast-bounded", []int{3, 1}, true, func(b *builder) string {
		// A bounded [N,3,1] broadcast against a constant [1,4] (each element read 4 times).
		h := b.node(nets.Mul{}, "x", b.param(1, 1, 4))
		h = b.node(nets.Relu{}, b.node(nets.Add{}, h, b.param(0.3, 3, 4)))
		h = b.node(nets.Add{}, h, b.node(nets.Mul{}, "x", b.constant(nets.Scalar(2)))) // both bounded, broadcast
		h = b.node(nets.Flatten{Axis: 1}, h)
		return b.dense(b.node(nets.Relu{}, b.dense(h, 12, 6)), 6, 3)
	})
	add("softmax-out", []int{4}, false, func(b *builder) string {
		h := b.node(nets.Relu{}, b.dense("x", 4, 6))
		return b.node(nets.Softmax{Axis: -1}, b.dense(h, 6, 3))
	})
	add("bilinear", []int{4}, false, func(b *builder) string {
		h := b.node(nets.Relu{}, b.dense("x", 4, 5))
		h = b.node(nets.Mul{}, h, b.dense("x", 4, 5))
		h = b.node(nets.Div{}, b.constant(nets.Scalar(2)), b.node(nets.Add{}, b.node(nets.Relu{}, h), b.constant(nets.Scalar(1))))
		return b.dense(h, 5, 3)
	})
	return out
}

// randomBoxes returns n boxes around random centres in [−1, 1]: radii vary per
// sample, and some coordinates are degenerate (lo = hi).
func randomBoxes(r *rand.Rand, n int, in []int) (Box, *nets.Tensor) {
	shape := append([]int{n}, in...)
	x := nets.NewTensor(shape...)
	for i := range x.Data {
		x.Data[i] = 2*r.Float64() - 1
	}
	box := Box{Lo: nets.NewTensor(shape...), Hi: nets.NewTensor(shape...)}
	per := x.Len() / n
	for i := 0; i < n; i++ {
		rad := []float64{0.02, 0.1, 0.4}[i%3]
		for j := 0; j < per; j++ {
			g := i*per + j
			w := rad * r.Float64()
			if r.IntN(6) == 0 {
				w = 0
			}
			box.Lo.Data[g], box.Hi.Data[g] = x.Data[g]-w, x.Data[g]+w
		}
	}
	return box, x
}

// samplePoints returns, for every sample of the box, p points inside it: its
// centre, random corners and uniform points, as one batch [n·p, …] (sample i's
// points at rows i·p …).
func samplePoints(r *rand.Rand, box Box, p int) *nets.Tensor {
	n := box.Lo.Shape[0]
	per := box.Lo.Len() / n
	pts := nets.NewTensor(append([]int{n * p}, box.Lo.Shape[1:]...)...)
	for i := 0; i < n; i++ {
		lo, hi := box.Lo.Data[i*per:(i+1)*per], box.Hi.Data[i*per:(i+1)*per]
		for q := 0; q < p; q++ {
			dst := pts.Data[(i*p+q)*per : (i*p+q+1)*per]
			for j := range dst {
				switch {
				case q == 0:
					dst[j] = 0.5*lo[j] + 0.5*hi[j]
				case q < p/2:
					dst[j] = lo[j]
					if r.IntN(2) == 0 {
						dst[j] = hi[j]
					}
				default:
					dst[j] = lo[j] + r.Float64()*(hi[j]-lo[j])
				}
				dst[j] = min(max(dst[j], lo[j]), hi[j])
			}
		}
	}
	return pts
}

// randomSpecs returns rows random spec rows per sample over k outputs.
func randomSpecs(r *rand.Rand, n, rows, k int) []Spec {
	specs := make([]Spec, n)
	for i := range specs {
		for q := 0; q < rows+i%2; q++ { // ragged: samples differ in row counts
			row := make([]float64, k)
			for j := range row {
				row[j] = r.NormFloat64()
			}
			specs[i].C = append(specs[i].C, row)
			specs[i].D = append(specs[i].D, r.NormFloat64())
		}
	}
	return specs
}
