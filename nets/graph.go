package nets

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// ValueInfo names a graph input or output and gives its shape; a dimension of -1 is
// dynamic (typically the batch).
type ValueInfo struct {
	Name  string
	Shape []int
}

// Node applies Op to the named input values and names its outputs. An empty input
// name is an absent optional input.
type Node struct {
	Name    string
	Op      Op
	Inputs  []string
	Outputs []string
}

// Graph is a network: nodes in topological order over named values. Params holds
// the initializers (weights, biases, constant shapes); Trainable names those that
// training updates.
type Graph struct {
	Name      string
	Inputs    []ValueInfo
	Outputs   []ValueInfo
	Params    map[string]*Tensor
	Trainable []string
	Nodes     []*Node
	// Opset is the default-domain opset version the graph was read with or is
	// written as.
	Opset int
}

// Values holds every value computed by a forward pass, by name (params included).
type Values map[string]*Tensor

// Validate checks the graph's wiring: every node input is a graph input, a param or
// an earlier node's output, and every graph output is produced.
func (g *Graph) Validate() error {
	known := map[string]bool{"": true}
	for _, in := range g.Inputs {
		known[in.Name] = true
	}
	for name := range g.Params {
		known[name] = true
	}
	for i, n := range g.Nodes {
		if n.Op == nil {
			return fmt.Errorf("node %d %q: no op", i, n.Name)
		}
		for _, in := range n.Inputs {
			if !known[in] {
				return fmt.Errorf("node %q (%s): input %q is not produced before it", n.Name, n.Op.OpType(), in)
			}
		}
		for _, out := range n.Outputs {
			known[out] = true
		}
	}
	for _, out := range g.Outputs {
		if !known[out.Name] {
			return fmt.Errorf("graph output %q is never produced", out.Name)
		}
	}
	return nil
}

// checkInput compares a fed tensor with the declared input shape (dynamic dims match
// anything).
func checkInput(vi ValueInfo, t *Tensor) error {
	if vi.Shape == nil {
		return nil
	}
	if len(vi.Shape) != len(t.Shape) {
		return fmt.Errorf("input %q: model expects shape %v, got %v", vi.Name, vi.Shape, t.Shape)
	}
	for i, d := range vi.Shape {
		if d >= 0 && d != t.Shape[i] {
			return fmt.Errorf("input %q: model expects shape %v, got %v", vi.Name, vi.Shape, t.Shape)
		}
	}
	return nil
}

// Forward runs every node on the given inputs and returns all values.
func (g *Graph) Forward(inputs map[string]*Tensor) (Values, error) {
	vals := make(Values, len(g.Params)+len(g.Nodes)+len(inputs))
	for k, v := range g.Params {
		vals[k] = v
	}
	for _, vi := range g.Inputs {
		t, ok := inputs[vi.Name]
		if !ok {
			if _, isParam := g.Params[vi.Name]; isParam {
				continue // an input with a default value (old ONNX style)
			}
			return nil, fmt.Errorf("input %q not given", vi.Name)
		}
		if err := checkInput(vi, t); err != nil {
			return nil, err
		}
		vals[vi.Name] = t
	}
	in := make([]*Tensor, 0, 4)
	for _, n := range g.Nodes {
		in = in[:0]
		for _, name := range n.Inputs {
			if name == "" {
				in = append(in, nil)
				continue
			}
			in = append(in, vals[name])
		}
		out, err := n.Op.Forward(in)
		if err != nil {
			return nil, fmt.Errorf("node %q (%s): %w", n.Name, n.Op.OpType(), err)
		}
		for j, name := range n.Outputs {
			if j < len(out) && name != "" {
				vals[name] = out[j]
			}
		}
	}
	return vals, nil
}

// Backward propagates output gradients (seeds, by value name) back through the graph
// whose forward values are vals. It returns the gradient of every value that the
// seeds reach and that leads back to a graph input, or to a param when params is true.
func (g *Graph) Backward(vals Values, seeds map[string]*Tensor, params bool) (map[string]*Tensor, error) {
	// need[v]: v is a graph input (or param) or feeds, through nodes, a node that
	// consumes one: only gradients on such paths are computed.
	need := map[string]bool{}
	for _, vi := range g.Inputs {
		need[vi.Name] = true
	}
	if params {
		for name := range g.Params {
			need[name] = true
		}
	}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if need[in] {
				for _, out := range n.Outputs {
					need[out] = true
				}
				break
			}
		}
	}
	grads := make(map[string]*Tensor, len(seeds))
	for k, v := range seeds {
		grads[k] = v
	}
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		gout := make([]*Tensor, len(n.Outputs))
		any := false
		for j, name := range n.Outputs {
			if gr, ok := grads[name]; ok {
				gout[j] = gr
				any = true
			}
		}
		if !any {
			continue
		}
		in := make([]*Tensor, len(n.Inputs))
		want := make([]bool, len(n.Inputs))
		anyWant := false
		for j, name := range n.Inputs {
			if name != "" {
				in[j] = vals[name]
				want[j] = need[name]
				anyWant = anyWant || want[j]
			}
		}
		if !anyWant {
			continue
		}
		out := make([]*Tensor, len(n.Outputs))
		for j, name := range n.Outputs {
			out[j] = vals[name]
		}
		gin, err := n.Op.Backward(in, out, gout, want)
		if err != nil {
			return nil, fmt.Errorf("backward of node %q (%s): %w", n.Name, n.Op.OpType(), err)
		}
		for j, name := range n.Inputs {
			if !want[j] || j >= len(gin) || gin[j] == nil {
				continue
			}
			if prev, ok := grads[name]; ok {
				sum := prev.Clone()
				for k, v := range gin[j].Data {
					sum.Data[k] += v
				}
				grads[name] = sum
			} else {
				grads[name] = gin[j]
			}
		}
	}
	return grads, nil
}

// single returns the names of the one data input and the one output, or an error
// for graphs with several (they are not classifiers).
func (g *Graph) single() (in ValueInfo, out string, err error) {
	var data []ValueInfo
	for _, vi := range g.Inputs {
		if _, isParam := g.Params[vi.Name]; !isParam {
			data = append(data, vi)
		}
	}
	if len(data) != 1 || len(g.Outputs) != 1 {
		return ValueInfo{}, "", fmt.Errorf("a classifier needs one data input and one output; graph has %d and %d", len(data), len(g.Outputs))
	}
	return data[0], g.Outputs[0].Name, nil
}

// InputShape returns the per-sample shape of the data input (batch dimension dropped).
func (g *Graph) InputShape() ([]int, error) {
	in, _, err := g.single()
	if err != nil {
		return nil, err
	}
	if len(in.Shape) == 0 {
		return nil, fmt.Errorf("input %q has no shape", in.Name)
	}
	return append([]int(nil), in.Shape[1:]...), nil
}

// Classifier is what attacks, smoothing and the pipeline see of a model: scores only.
type Classifier interface {
	// Logits maps a batch x [batch, ...input shape] to scores [batch, classes].
	Logits(x *Tensor) (*Tensor, error)
}

// Differentiable is a white-box classifier.
type Differentiable interface {
	Classifier
	// LossGrad returns per-sample loss values and d loss / d x for a batch.
	LossGrad(x *Tensor, labels []int, loss Loss) (values []float64, grad *Tensor, err error)
}

// chunks splits n rows into at most GOMAXPROCS contiguous ranges of at least minRows.
func chunks(n, minRows int) [][2]int {
	w := runtime.GOMAXPROCS(0)
	if max := (n + minRows - 1) / minRows; w > max {
		w = max
	}
	if w < 1 {
		w = 1
	}
	out := make([][2]int, 0, w)
	for i := 0; i < w; i++ {
		lo, hi := i*n/w, (i+1)*n/w
		if hi > lo {
			out = append(out, [2]int{lo, hi})
		}
	}
	return out
}

// sliceRows returns rows [lo,hi) of a batched tensor, sharing its data.
func sliceRows(t *Tensor, lo, hi int) *Tensor {
	per := t.Len() / t.Shape[0]
	shape := append([]int{hi - lo}, t.Shape[1:]...)
	return FromData(t.Data[lo*per:hi*per], shape...)
}

// ParallelRows runs f on contiguous row ranges [lo,hi) of a batch of n rows, one
// range per core (each at least minRows long), and returns the first error. part
// numbers the ranges in order, 0 up.
func ParallelRows(n, minRows int, f func(part, lo, hi int) error) error {
	parts := chunks(n, minRows)
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func(i, lo, hi int) {
			defer wg.Done()
			errs[i] = f(i, lo, hi)
		}(i, p[0], p[1])
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// fixedParts splits n rows into contiguous ranges of at least minRows, at most
// maxParts of them, independent of the number of cores: reductions over the parts
// then add the same numbers in the same order on every machine.
func fixedParts(n, minRows, maxParts int) [][2]int {
	w := min(maxParts, (n+minRows-1)/max(1, minRows))
	w = max(w, 1)
	out := make([][2]int, 0, w)
	for i := 0; i < w; i++ {
		lo, hi := i*n/w, (i+1)*n/w
		if hi > lo {
			out = append(out, [2]int{lo, hi})
		}
	}
	return out
}

// runParts runs f on each range, at most GOMAXPROCS at a time, and returns the
// first error by part order.
func runParts(parts [][2]int, f func(part, lo, hi int) error) error {
	return runPartsWith(parts, func() struct{} { return struct{}{} }, func(_ struct{}, part, lo, hi int) error { return f(part, lo, hi) })
}

// runPartsWith is runParts with a state per worker goroutine (newState makes
// it): f gets the state of whichever worker picked the range up.
func runPartsWith[S any](parts [][2]int, newState func() S, f func(st S, part, lo, hi int) error) error {
	errs := make([]error, len(parts))
	next := make(chan int, len(parts))
	for i := range parts {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), len(parts)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := newState()
			for i := range next {
				errs[i] = f(st, i, parts[i][0], parts[i][1])
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Logits runs the graph on a batch, splitting it across all cores. The rows go in
// the same parts and calls as in forwardRows (so the results do not depend on the
// number of cores), each through the inference schedule of infer.go, which gives
// the values Forward would.
func (g *Graph) Logits(x *Tensor) (*Tensor, error) {
	in, outName, err := g.single()
	if err != nil {
		return nil, err
	}
	if x.Rank() == 0 || x.Shape[0] == 0 {
		return nil, fmt.Errorf("input %q: empty batch, shape %v", in.Name, x.Shape)
	}
	steps := g.inferSchedule()
	n, rows, step := x.Shape[0], logitsRows, rowStep(in)
	parts := make([]*Tensor, n)
	err = runPartsArena(fixedParts(n, rows, (n+rows-1)/rows), func() *inferArena { return newInferArena(len(steps)) },
		func(a *inferArena, _, lo, hi int) error {
			for s, e := lo, lo; s < hi; s = e {
				e = hi
				if hi-s > step {
					e = s + step
				}
				y, err := g.infer(steps, a, in, sliceRows(x, s, e), outName)
				if err != nil {
					return err
				}
				parts[s] = y.Clone() // y may live in the arena, reused by the next call
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return concatRows(compact(parts))
}

// logitsRows is the number of rows per part in Logits.
const logitsRows = 32

// forwardRows runs Forward on the rows of x in parts of about rows rows, on all
// cores, and within a part in calls of at most rowStep(in) rows; f sees each call's
// rows [s,e) and values. The parts depend only on the batch size, never on the
// number of cores, so every row's result is bit-identical on any machine (BLAS
// results may differ in the last bit with the shape of the product).
func (g *Graph) forwardRows(in ValueInfo, x *Tensor, rows int, f func(s, e int, vals Values) error) error {
	step := rowStep(in)
	n := x.Shape[0]
	return runParts(fixedParts(n, rows, (n+rows-1)/rows), func(_, lo, hi int) error {
		for s, e := lo, lo; s < hi; s = e {
			e = hi
			if hi-s > step {
				e = s + step
			}
			vals, err := g.Forward(map[string]*Tensor{in.Name: sliceRows(x, s, e)})
			if err != nil {
				return err
			}
			if err := f(s, e, vals); err != nil {
				return err
			}
		}
		return nil
	})
}

// rowStep is how many rows one Forward call may take: all of them for a dynamic
// batch dimension, else the declared batch size. Models exported with a fixed batch
// of 1 (common from PyTorch and in VNN-COMP) then run one sample per call, because
// their Reshape targets often hard-code that batch.
func rowStep(in ValueInfo) int {
	if len(in.Shape) > 0 && in.Shape[0] > 0 {
		return in.Shape[0]
	}
	return math.MaxInt
}

// compact drops the nil entries of a sparse slice, keeping order.
func compact(ts []*Tensor) []*Tensor {
	out := ts[:0:0]
	for _, t := range ts {
		if t != nil {
			out = append(out, t)
		}
	}
	return out
}

// concatRows stacks batched tensors along the first dimension.
func concatRows(parts []*Tensor) (*Tensor, error) {
	if len(parts) == 1 {
		return parts[0], nil
	}
	rows := 0
	for _, p := range parts {
		if !SameShape(p.Shape[1:], parts[0].Shape[1:]) {
			return nil, fmt.Errorf("output shapes %v and %v differ beyond the batch dimension", p.Shape, parts[0].Shape)
		}
		rows += p.Shape[0]
	}
	shape := append([]int{rows}, parts[0].Shape[1:]...)
	out := NewTensor(shape...)
	off := 0
	for _, p := range parts {
		copy(out.Data[off:], p.Data)
		off += p.Len()
	}
	return out, nil
}

// LossGrad returns per-sample losses of the logits and their gradient with respect to
// the input batch x, splitting the batch across all cores.
func (g *Graph) LossGrad(x *Tensor, labels []int, loss Loss) ([]float64, *Tensor, error) {
	in, outName, err := g.single()
	if err != nil {
		return nil, nil, err
	}
	if x.Rank() == 0 || x.Shape[0] != len(labels) {
		return nil, nil, fmt.Errorf("batch of shape %v with %d labels", x.Shape, len(labels))
	}
	values := make([]float64, len(labels))
	grad := NewTensor(x.Shape...)
	per := x.Len() / x.Shape[0]
	err = g.forwardRows(in, x, 16, func(s, e int, vals Values) error {
		v, dlogits, err := loss.Eval(vals[outName], labels[s:e])
		if err != nil {
			return err
		}
		copy(values[s:e], v)
		grads, err := g.Backward(vals, map[string]*Tensor{outName: dlogits}, false)
		if err != nil {
			return err
		}
		if gx, ok := grads[in.Name]; ok {
			copy(grad.Data[s*per:e*per], gx.Data)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return values, grad, nil
}
