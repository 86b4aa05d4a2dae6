package bounds

import (
	"fmt"
	"math"
	"sync"

	"github.com/certify-dev/certify/nets"
)

// layer is one node's relaxation: its interval rule (IBP), its backward linear rule
// (CROWN) and, for alpha-CROWN's gradient, the forward map of the linear relaxation
// that the backward rule chose. The files named after the ops implement it.
//
// Layout: a coefficient tensor for a value of per-sample size S is a flat
// [n, r, S] array for the n samples [s0, s0+n) of a pass and r spec rows per
// sample; the linear function it represents is Σ_j a[i,r,j]·v[s0+i, j].
type layer interface {
	// interval returns the IBP box of the node's first output.
	interval() (Box, error)
	// linearize prepares the backward rule (CROWN mode only), after interval.
	linearize() error
	// back maps a, the lower-bound coefficient of the node's output, to a
	// coefficient per node input (nil for constant or absent inputs), adding any
	// constant term to p's bias. It must not modify a, and may return a itself.
	back(p *pass, a []float64) ([][]float64, error)
	// fwd maps points at the bounded inputs ([n, r, S_in] each; nil for others) to
	// the node's output under the relaxation back chose for the output coefficient
	// aOut (recorded in the same pass). For linear ops it is the op itself.
	fwd(p *pass, x [][]float64, aOut []float64) ([]float64, error)
	// eps is the SoundFP error weight per output element [N·S] (see fp.go): back's
	// rounding, and the network's own, add at most Σ_j |a_j|·eps_j to a bound. nil
	// when the rule is exact.
	eps() []float64
	// nonlinear reports whether back depends on the sign of a (fwd needs aOut).
	nonlinear() bool
}

// unitSeeder is implemented by linear layers that can start a pass from unit
// coefficients: row q of the pass has coefficient sign[q] at output element
// idx[q] (−1: a zero row). The input coefficient is then a row of the layer's
// matrix (for a convolution, the kernel of the element's channel laid on its
// receptive field), which costs far less than the dense transposed product. It
// returns the coefficient of the bounded input and adds the constant terms.
type unitSeeder interface {
	unitBack(p *pass, idx []int32, sign []float64) []float64
}

// base holds what every layer has; layers embed it.
type base struct {
	e    *engine
	k    int
	node *nets.Node
	in   []operand
	epsv []float64
}

func (b *base) eps() []float64   { return b.epsv }
func (b *base) linearize() error { return nil }
func (b *base) nonlinear() bool  { return false }

// operand is one input of a node as bound propagation sees it: a bounded value with
// its box, a constant, or absent (both nil).
type operand struct {
	name string
	box  Box
	c    *nets.Tensor
}

func (o operand) bounded() bool { return o.box.Lo != nil }

// shape returns the operand's shape.
func (o operand) shape() []int {
	if o.bounded() {
		return o.box.Lo.Shape
	}
	if o.c != nil {
		return o.c.Shape
	}
	return nil
}

// engine propagates bounds through one graph for one batch of input boxes.
type engine struct {
	plan   *plan
	opt    Options
	crown  bool // prepare linear relaxations and tighten pre-activation bounds
	n      int  // batch size
	boxes  map[string]Box
	consts map[string]*nets.Tensor
	layers []layer
	in     *centre   // the data input box in centre-radius form
	pool   sync.Pool // *[]float64 scratch buffers of passes
	mu     sync.Mutex
	mags   map[string][]float64 // magnitude cache, under mu
	zero   []float64            // read-only zeros, under mu (see shapeOnly)
}

// budget caps the elements of one coefficient tensor (512 KB): passes over many
// rows are split into chunks that fit, so a chunk's coefficients stay in cache
// while they go through the layers (measured fastest on the shipped CNN among
// 2¹⁵…2²²; large chunks are memory-bound).
const budget = 1 << 16

// newEngine checks the box against the graph and runs the sweep: every node in
// topological order gets its layer and its output box; in CROWN mode the boxes of
// values feeding a nonlinearity are then tightened by CROWN (refine) before any
// later node reads them.
func newEngine(g *nets.Graph, in Box, opt Options, crown bool) (*engine, error) {
	p, err := newPlan(g)
	if err != nil {
		return nil, err
	}
	if err := checkBox(in, p.inputInfo); err != nil {
		return nil, err
	}
	e := &engine{plan: p, opt: opt, crown: crown, n: in.Lo.Shape[0], boxes: map[string]Box{p.input: in},
		consts: map[string]*nets.Tensor{}, layers: make([]layer, len(p.nodes)), mags: map[string][]float64{}}
	for k, v := range p.consts {
		e.consts[k] = v
	}
	e.in = e.newCentre(p.input)
	for k, node := range p.nodes {
		if err := e.step(k, node); err != nil {
			return nil, fmt.Errorf("node %q (%s): %w", node.Name, p.ops[k].OpType(), err)
		}
	}
	return e, nil
}

// checkBox validates an input box against the graph's data input.
func checkBox(b Box, vi nets.ValueInfo) error {
	if b.Lo == nil || b.Hi == nil {
		return fmt.Errorf("input box: Lo or Hi is nil")
	}
	if !nets.SameShape(b.Lo.Shape, b.Hi.Shape) || len(b.Lo.Data) != len(b.Hi.Data) {
		return fmt.Errorf("input box: Lo %v and Hi %v differ in shape", b.Lo.Shape, b.Hi.Shape)
	}
	if b.Lo.Rank() == 0 || b.Lo.Shape[0] == 0 {
		return fmt.Errorf("input box of shape %v: want a non-empty batch", b.Lo.Shape)
	}
	if vi.Shape != nil {
		ok := len(vi.Shape) == b.Lo.Rank()
		for i := 0; ok && i < len(vi.Shape); i++ {
			ok = vi.Shape[i] < 0 || vi.Shape[i] == b.Lo.Shape[i]
		}
		if !ok {
			return fmt.Errorf("input box of shape %v: input %q has shape %v", b.Lo.Shape, vi.Name, vi.Shape)
		}
	}
	for i, l := range b.Lo.Data {
		h := b.Hi.Data[i]
		if math.IsNaN(l) || math.IsNaN(h) || math.IsInf(l, 0) || math.IsInf(h, 0) || l > h {
			return fmt.Errorf("input box element %d: [%v, %v] is not a finite interval", i, l, h)
		}
	}
	return nil
}

// per returns the per-sample size of a bounded value.
func (e *engine) per(name string) int { return len(e.boxes[name].Lo.Data) / e.n }

// mag returns max(|lo|, |hi|) of a bounded value (cached).
func (e *engine) mag(name string) []float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if m, ok := e.mags[name]; ok {
		return m
	}
	m := magnitude(e.boxes[name])
	e.mags[name] = m
	return m
}

// operands returns the inputs of node k.
func (e *engine) operands(node *nets.Node) ([]operand, error) {
	out := make([]operand, len(node.Inputs))
	for i, name := range node.Inputs {
		switch {
		case name == "":
		case e.boxes[name].Lo != nil:
			out[i] = operand{name: name, box: e.boxes[name]}
		case e.consts[name] != nil:
			out[i] = operand{name: name, c: e.consts[name]}
		default:
			if src, ok := e.plan.extra[name]; ok {
				return nil, fmt.Errorf("%w: input %q is output of node %q (%s) that bound propagation does not bound",
					ErrUnsupported, name, src.Name, derefOp(src.Op).OpType())
			}
			return nil, fmt.Errorf("input %q is unknown", name)
		}
	}
	return out, nil
}

// step builds node k's layer, computes its output box and, in CROWN mode, tightens
// it when a nonlinearity reads it.
func (e *engine) step(k int, node *nets.Node) error {
	in, err := e.operands(node)
	if err != nil {
		return err
	}
	l, err := newLayer(e, k, node, in)
	if err != nil {
		return err
	}
	box, err := l.interval()
	if err != nil {
		return err
	}
	out := node.Outputs[0]
	if e.n > 1 && (box.Lo.Rank() == 0 || box.Lo.Shape[0] != e.n) {
		return fmt.Errorf("%w: output %q of shape %v does not keep the batch (%d) as its first dimension", ErrUnsupported, out, box.Lo.Shape, e.n)
	}
	e.boxes[out] = box
	if err := e.clamp(out); err != nil {
		return err
	}
	e.layers[k] = l
	if d, ok := e.plan.ops[k].(nets.Dropout); ok && d.Mask && len(node.Outputs) > 1 && node.Outputs[1] != "" {
		mask := nets.NewTensor(box.Lo.Shape...)
		for i := range mask.Data {
			mask.Data[i] = 1
		}
		e.consts[node.Outputs[1]] = mask
	}
	if !e.crown {
		return nil
	}
	if err := l.linearize(); err != nil {
		return err
	}
	if err := e.stopped(); err != nil {
		return err
	}
	if err := e.refine(out); err != nil {
		return err
	}
	return e.clamp(out)
}

// clamp intersects the box of v with opt.Clamp[v], if any.
func (e *engine) clamp(v string) error {
	c, ok := e.opt.Clamp[v]
	if !ok {
		return nil
	}
	box := e.boxes[v]
	if c.Lo == nil || c.Hi == nil || c.Lo.Len() != box.Lo.Len() || c.Hi.Len() != box.Lo.Len() {
		return fmt.Errorf("clamp of %q: want %d values (shape %v)", v, box.Lo.Len(), box.Lo.Shape)
	}
	lo, hi := box.Lo.Clone(), box.Hi.Clone()
	for i := range lo.Data {
		lo.Data[i] = max(lo.Data[i], c.Lo.Data[i])
		hi.Data[i] = min(hi.Data[i], c.Hi.Data[i])
	}
	e.boxes[v] = Box{Lo: lo, Hi: hi}
	e.mu.Lock()
	delete(e.mags, v)
	e.mu.Unlock()
	return nil
}

// newLayer dispatches on the op type.
func newLayer(e *engine, k int, node *nets.Node, in []operand) (layer, error) {
	b := base{e: e, k: k, node: node, in: in}
	switch op := e.plan.ops[k].(type) {
	case nets.Gemm:
		return newGemm(b, op)
	case nets.MatMul:
		return newMatMul(b)
	case nets.Conv:
		return newConv(b, op)
	case nets.Relu:
		return newRelu(b)
	case nets.Sigmoid:
		return newSShaped(b, sigmoidCurve{})
	case nets.Tanh:
		return newSShaped(b, tanhCurve{})
	case nets.Softmax:
		return newSoftmax(b, op)
	case nets.MaxPool:
		return newMaxPool(b, op)
	case nets.AveragePool:
		return newAveragePool(b, op)
	case nets.GlobalAveragePool:
		return newGlobalAveragePool(b, op)
	case nets.BatchNormalization:
		return newBatchNormalization(b, op)
	case nets.Add:
		return newAdd(b)
	case nets.Sub:
		return newSub(b)
	case nets.Mul:
		return newMul(b)
	case nets.Div:
		return newDiv(b)
	case nets.Flatten, nets.Reshape, nets.Transpose, nets.Concat, nets.Pad, nets.Identity, nets.Dropout:
		return newStructural(b, op)
	default:
		return nil, fmt.Errorf("%w: no bound propagation rule for op %s", ErrUnsupported, op.OpType())
	}
}

// pass is one backward linear bound propagation (CROWN) for the samples
// [s0, s0+n) with r rows each: it accumulates the constant term (bias) and, with
// SoundFP, the rounding error bound (err) of every row.
type pass struct {
	e     *engine
	s0, n int
	r     int
	bias  []float64
	err   []float64
	// alpha holds, by node index, alpha-CROWN's lower ReLU slopes [n, r, S] (nil:
	// CROWN's adaptive choice). keep, when not nil, records the output coefficient
	// of every nonlinear layer (alpha-CROWN's gradient needs them).
	alpha map[int][]float64
	keep  map[int][]float64
	// beta holds, by node index, β-CROWN's multipliers [n, r, S] of the
	// layer's splits (Options.Splits; nil: none).
	beta map[int][]float64
	// in is the coefficient of the data input after run.
	in   []float64
	bufs [][]float64
}

func (e *engine) newPass(s0, n, r int) *pass {
	p := &pass{e: e, s0: s0, n: n, r: r, bias: make([]float64, n*r)}
	if e.opt.SoundFP {
		p.err = make([]float64, n*r)
	}
	return p
}

// shapeOnly returns a tensor of the given shape for nets' Backward of a linear op,
// which needs its input only for the shape: its data are shared read-only zeros.
func (e *engine) shapeOnly(shape ...int) *nets.Tensor {
	n := nets.NumElements(shape)
	e.mu.Lock()
	if len(e.zero) < n {
		e.zero = make([]float64, n)
	}
	z := e.zero[:n]
	e.mu.Unlock()
	return &nets.Tensor{Shape: shape, Data: z}
}

// scratch returns a zeroed slice of n elements that stays valid until release.
func (p *pass) scratch(n int) []float64 {
	var b []float64
	if v, ok := p.e.pool.Get().(*[]float64); ok && cap(*v) >= n {
		b = (*v)[:n]
		clear(b)
	} else {
		b = make([]float64, n)
	}
	p.bufs = append(p.bufs, b)
	return b
}

// release returns the pass's scratch buffers; nothing may use them afterwards.
func (p *pass) release() {
	for _, b := range p.bufs {
		p.e.pool.Put(&b)
	}
	p.bufs = nil
}

// rows is the number of coefficient rows n·r.
func (p *pass) rows() int { return p.n * p.r }

// run propagates the coefficient a0 ([n, r, S] of value start) back to the data
// input and returns the lower bound of every row over the input box:
// Σ_j a_j·x_j + bias ≥ Σ_j a_j·mid_j − |a_j|·rad_j + bias (Zhang et al. 2018, eq. 9
// concretised on an L∞ box). The consumers of a value are all processed before its
// producer (reverse topological order), so its coefficient is complete when used.
func (p *pass) run(start string, a0 []float64) ([]float64, error) {
	return p.runTo(start, a0, p.e.input())
}

// runTo is run stopping at value stop, which every path from start to the input
// must go through: the bound is concretised on stop's box instead of the input's.
func (p *pass) runTo(start string, a0 []float64, stop *centre) ([]float64, error) {
	k0, ok := p.e.plan.producer[start]
	if !ok {
		k0 = -1
	}
	return p.runFrom(map[string][]float64{start: a0}, k0, stop)
}

// runFrom continues a pass whose coefficients acc are complete for the outputs of
// the nodes after k0.
func (p *pass) runFrom(acc map[string][]float64, k0 int, stop *centre) ([]float64, error) {
	e := p.e
	kStop, ok := e.plan.producer[stop.name]
	if !ok {
		kStop = -1
	}
	for k := k0; k > kStop; k-- {
		node := e.plan.nodes[k]
		out := node.Outputs[0]
		a, ok := acc[out]
		if !ok {
			continue
		}
		delete(acc, out)
		l := e.layers[k]
		if p.keep != nil && l.nonlinear() {
			p.keep[k] = a
		}
		if e.opt.SoundFP {
			p.addEps(a, l.eps(), len(a)/p.rows())
		}
		ins, err := l.back(p, a)
		if err != nil {
			return nil, fmt.Errorf("node %q (%s): %w", node.Name, e.plan.ops[k].OpType(), err)
		}
		for i, name := range node.Inputs {
			if i >= len(ins) || ins[i] == nil {
				continue
			}
			if prev, ok := acc[name]; ok {
				for j, v := range ins[i] {
					prev[j] += v
				}
				if e.opt.SoundFP {
					// One rounding per element: at most u·|sum| ≤ 2u·|sum computed|,
					// i.e. 2u·|a_j|·|x_j| on the bound.
					p.addEpsScaled(prev, e.mag(name), 2*unitRoundoff, len(prev)/p.rows())
				}
			} else {
				acc[name] = ins[i]
			}
		}
	}
	p.in = acc[stop.name]
	return p.concretize(p.in, stop), nil
}

// centre is a value's box in centre-radius form, with its SoundFP concretisation
// error weights (γ(2S)·(|mid| + rad): Σ a·mid − |a|·rad has 2S products).
type centre struct {
	name          string
	mid, rad, eps []float64
}

// newCentre returns the centre form of a bounded value's box.
func (e *engine) newCentre(name string) *centre {
	mid, rad, mag := midRad(e.boxes[name], e.opt.SoundFP)
	c := &centre{name: name, mid: mid.Data, rad: rad.Data}
	if mag != nil {
		gm := gamma(2 * e.per(name))
		c.eps = mag.Data
		for i, m := range c.eps {
			c.eps[i] = up(gm * m)
		}
	}
	return c
}

// input returns the data input's centre form.
func (e *engine) input() *centre { return e.in }

// concretize returns the lower bound of every row of the linear function a·x + bias
// over the input box (a nil a is zero).
func (p *pass) concretize(a []float64, at *centre) []float64 {
	e := p.e
	s := e.per(at.name)
	out := make([]float64, p.rows())
	fp := e.opt.SoundFP
	for i := 0; i < p.n; i++ {
		g := (p.s0 + i) * s
		mid, rad := at.mid[g:g+s], at.rad[g:g+s]
		for r := 0; r < p.r; r++ {
			row := i*p.r + r
			c, ce := 0.0, 0.0
			if a != nil {
				ar := a[row*s : (row+1)*s]
				for j, v := range ar {
					c += v*mid[j] - math.Abs(v)*rad[j]
				}
				if fp {
					ie := at.eps[g : g+s]
					for j, v := range ar {
						ce += math.Abs(v) * ie[j]
					}
					ce = sumUp(ce, s) + underflow(2*s)
				}
			}
			v := c + p.bias[row]
			if !fp {
				out[row] = v
				continue
			}
			total := up(up(p.err[row]+ce) + 2*unitRoundoff*math.Abs(v))
			out[row] = down(v - total)
		}
	}
	return out
}

// addBias adds v to row's constant term.
func (p *pass) addBias(row int, v float64) {
	b := p.bias[row] + v
	p.bias[row] = b
	if p.err != nil {
		p.err[row] = up(p.err[row] + 2*unitRoundoff*math.Abs(b))
	}
}

// addDot adds Σ_j a[row, j]·t[j] to every row's constant term; t is per sample
// ([N·S], sample s0+i at (s0+i)·S) or, when shared, one [S] vector for all. The
// products go through BLAS (Dgemv), one call per sample or one for all.
func (p *pass) addDot(a, t []float64, s int, shared bool) {
	d := make([]float64, p.rows())
	if shared {
		gemv(p.rows(), s, a, t, d)
	} else {
		for i := 0; i < p.n; i++ {
			gemv(p.r, s, a[i*p.r*s:(i+1)*p.r*s], t[(p.s0+i)*s:(p.s0+i+1)*s], d[i*p.r:(i+1)*p.r])
		}
	}
	for row, v := range d {
		p.addBias(row, v)
	}
}

// addEps adds Σ_j |a[row, j]|·eps[s0+i, j] to every row's error bound (SoundFP).
func (p *pass) addEps(a, eps []float64, s int) {
	if eps == nil {
		return
	}
	for i := 0; i < p.n; i++ {
		ev := eps[(p.s0+i)*s : (p.s0+i+1)*s]
		for r := 0; r < p.r; r++ {
			row := i*p.r + r
			ar := a[row*s : (row+1)*s]
			d := 0.0
			for j, v := range ar {
				if v != 0 { // coefficient rows are often sparse
					d += math.Abs(v) * ev[j]
				}
			}
			p.err[row] = up(p.err[row] + sumUp(d, s) + underflow(s))
		}
	}
}

// addEpsScaled is addEps with eps = c·m.
func (p *pass) addEpsScaled(a, m []float64, c float64, s int) {
	for i := 0; i < p.n; i++ {
		mv := m[(p.s0+i)*s : (p.s0+i+1)*s]
		for r := 0; r < p.r; r++ {
			row := i*p.r + r
			ar := a[row*s : (row+1)*s]
			d := 0.0
			for j, v := range ar {
				d += math.Abs(v) * mv[j]
			}
			p.err[row] = up(p.err[row] + c*sumUp(d, s)*(1+4*unitRoundoff))
		}
	}
}

// errArity reports a node whose bounded inputs are not what its rule expects.
func errArity(op string, n int) error {
	return fmt.Errorf("%s: want %d input(s), the first depending on the data input", op, n)
}

// stopped is the error of opt.Context when it has ended (see Options.Context).
func (e *engine) stopped() error {
	if c := e.opt.Context; c != nil && c.Err() != nil {
		return fmt.Errorf("bounds: stopped: %w", c.Err())
	}
	return nil
}
