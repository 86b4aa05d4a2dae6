package defenses

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/certify-dev/certify/nets"
)

// GenerativeTraining is adversarial training against a learned attacker: a
// generator network G produces the perturbations, trained jointly with the
// classifier f to maximise f's loss, in the line of Baluja & Fischer, "Learning to
// Attack: Adversarial Transformation Networks", AAAI 2018; Lee, Han & Lee,
// "Generative Adversarial Trainer: Defense to Adversarial Perturbations with GAN",
// 2017; and Xiao et al., "Generating Adversarial Examples with Adversarial
// Networks", IJCAI 2018. The generator is
//
//	G(x) = clip(x + ε·tanh(W₂·relu(W₁·x + b₁) + b₂), 0, 1)
//
// an MLP D → Hidden → D on the flattened input (D values per row), so
// ‖G(x) − x‖∞ ≤ ε by construction. Each minibatch (x, y) takes, in turn,
//
//  1. one generator step: Adam (rate GenLR, its own optimizer) on the mean of
//     −J(f(G(x)), y), the gradient from nets.ParamGrad on the graph chaining G and
//     f with only G's params trainable;
//  2. one classifier step (nets.Train's, with cfg): on
//     CleanWeight·mean J(f(x), y) + (1 − CleanWeight)·mean J(f(G(x)), y), G as
//     updated by step 1.
//
// J is cfg.Loss (cross-entropy when nil). W₁ is He-initialised, N(0, 2/D),
// W₂ ~ N(0, 1/Hidden), the biases 0, drawn from a rand seeded by Seed (cfg.Rand
// only shuffles). CleanWeight is taken literally (0: G's points only; 1 still
// trains G but fits f on clean rows only).
type GenerativeTraining struct {
	Eps         float64 // L∞ radius in (0, 1]
	Hidden      int     // hidden width of G, ≥ 1
	GenLR       float64 // Adam learning rate of G, > 0
	CleanWeight float64 // in [0, 1]
	Seed        uint64
}

// Name is "generative-at".
func (GenerativeTraining) Name() string { return "generative-at" }

// Train fits g on d as the GenerativeTraining doc says, through nets.Train with cfg
// (its own copy: a Prepare hook takes the generator step and appends G's rows,
// after cfg.Prepare if one is set). EpochStats report the mixed loss and the
// accuracy on the clean rows of the minibatches (on G's rows when CleanWeight = 0).
func (t GenerativeTraining) Train(g *nets.Graph, d Data, cfg nets.TrainConfig) ([]nets.EpochStats, error) {
	name := t.Name()
	gen, err := t.generator(g, d, cfg)
	if err != nil {
		return nil, err
	}
	craft := func(_ int, x *nets.Tensor, y []int) (*nets.Tensor, error) {
		if _, err := gen.step(x, y); err != nil {
			return nil, err
		}
		return gen.apply(x)
	}
	if t.CleanWeight == 1 {
		// atTrain crafts nothing at weight 1, but G is still trained, as documented.
		user := cfg.Prepare
		cfg.Prepare = func(epoch, step int, x *nets.Tensor, y []int) (*nets.Tensor, []int, error) {
			if user != nil {
				var err error
				if x, y, err = user(epoch, step, x, y); err != nil {
					return nil, nil, err
				}
			}
			if _, err := gen.step(x, y); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", name, err)
			}
			return x, y, nil
		}
	}
	return atTrain(name, g, d, cfg, t.CleanWeight, craft)
}

// generator validates t and builds its generator against classifier g.
func (t GenerativeTraining) generator(g *nets.Graph, d Data, cfg nets.TrainConfig) (*atGenerator, error) {
	name := t.Name()
	if err := atCheckEps(name, t.Eps); err != nil {
		return nil, err
	}
	switch {
	case t.Hidden < 1:
		return nil, fmt.Errorf("%s: hidden width %d: want at least 1", name, t.Hidden)
	case !(t.GenLR > 0) || math.IsInf(t.GenLR, 0):
		return nil, fmt.Errorf("%s: generator learning rate %v: want finite and positive", name, t.GenLR)
	}
	if err := atCheckWeight(name, t.CleanWeight); err != nil {
		return nil, err
	}
	if err := atCheckData(name, g, d); err != nil {
		return nil, err
	}
	gen, err := newATGenerator(g, d.X.Shape[1:], t.Hidden, t.Eps, t.GenLR, rand.New(rand.NewPCG(t.Seed, 0x67656e)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	gen.loss = atLossOrCE(cfg.Loss)
	gen.chunk = cfg.ChunkSize
	return gen, nil
}

// atGenerator is G of GenerativeTraining: net maps a batch to G(x); chain is
// f(G(x)), sharing net's params and the classifier's, with only G's trainable.
type atGenerator struct {
	net, chain *nets.Graph
	out        string // net's output value
	opt        *nets.Adam
	lr         float64
	loss       nets.Loss
	chunk      int
}

// newATGenerator builds G for rows of the given per-sample shape (see
// GenerativeTraining) and the chain f(G(·)) with classifier f.
func newATGenerator(f *nets.Graph, shape []int, hidden int, eps, lr float64, r *rand.Rand) (*atGenerator, error) {
	fin, _, err := graphIO(f) // ONNX files may list their weights among the inputs
	if err != nil {
		return nil, fmt.Errorf("generator: classifier: %w", err)
	}
	const p = "gen."
	for name := range f.Params {
		if strings.HasPrefix(name, p) {
			return nil, fmt.Errorf("generator: classifier param %q clashes with the generator's names", name)
		}
	}
	for _, n := range f.Nodes {
		for _, o := range n.Outputs {
			if strings.HasPrefix(o, p) {
				return nil, fmt.Errorf("generator: classifier value %q clashes with the generator's names", o)
			}
		}
	}
	dim := 1
	for _, s := range shape {
		dim *= s
	}
	g := &nets.Graph{
		Name:   "generator",
		Inputs: []nets.ValueInfo{{Name: p + "input", Shape: append([]int{-1}, shape...)}},
		Params: map[string]*nets.Tensor{},
		Opset:  13,
	}
	normal := func(name string, sd float64, dims ...int) {
		t := nets.NewTensor(dims...)
		for i := range t.Data {
			t.Data[i] = sd * r.NormFloat64()
		}
		g.Params[name] = t
		g.Trainable = append(g.Trainable, name)
	}
	normal(p+"fc1.weight", math.Sqrt(2/float64(dim)), hidden, dim)
	normal(p+"fc1.bias", 0, hidden)
	normal(p+"fc2.weight", math.Sqrt(1/float64(hidden)), dim, hidden)
	normal(p+"fc2.bias", 0, dim)
	g.Params[p+"eps"] = nets.FromData([]float64{eps}, 1)
	g.Params[p+"one"] = nets.FromData([]float64{1}, 1)
	target := []float64{-1}
	for _, s := range shape {
		target = append(target, float64(s))
	}
	g.Params[p+"shape"] = nets.FromData(target, len(target))
	gemm := nets.NewAttrs()
	gemm.SetInt("transB", 1)
	flat := nets.NewAttrs()
	flat.SetInt("axis", 1)
	type node struct {
		op    string
		attrs nets.Attrs
		out   string
		in    []string
	}
	// clip(v, 0, 1) = 1 − relu(1 − relu(v)).
	plan := []node{
		{"Flatten", flat, "flat", []string{"input"}},
		{"Gemm", gemm, "fc1", []string{"flat", "fc1.weight", "fc1.bias"}},
		{"Relu", nets.NewAttrs(), "relu", []string{"fc1"}},
		{"Gemm", gemm, "fc2", []string{"relu", "fc2.weight", "fc2.bias"}},
		{"Tanh", nets.NewAttrs(), "tanh", []string{"fc2"}},
		{"Mul", nets.NewAttrs(), "delta", []string{"tanh", "eps"}},
		{"Add", nets.NewAttrs(), "sum", []string{"flat", "delta"}},
		{"Relu", nets.NewAttrs(), "pos", []string{"sum"}},
		{"Sub", nets.NewAttrs(), "under", []string{"one", "pos"}},
		{"Relu", nets.NewAttrs(), "cap", []string{"under"}},
		{"Sub", nets.NewAttrs(), "clip", []string{"one", "cap"}},
		{"Reshape", nets.NewAttrs(), "out", []string{"clip", "shape"}},
	}
	ctors := nets.Constructors()
	for _, n := range plan {
		op, err := ctors[n.op](nets.NodeSpec{Attrs: n.attrs, Opset: g.Opset, NumInputs: len(n.in), NumOutputs: 1})
		if err != nil {
			return nil, fmt.Errorf("generator: %s: %w", n.op, err)
		}
		in := make([]string, len(n.in))
		for i, s := range n.in {
			in[i] = p + s
		}
		g.Nodes = append(g.Nodes, &nets.Node{Name: p + n.out, Op: op, Inputs: in, Outputs: []string{p + n.out}})
	}
	out := p + "out"
	g.Outputs = []nets.ValueInfo{{Name: out, Shape: append([]int{-1}, shape...)}}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("generator: %w", err)
	}

	// The chain: G's nodes, then f's reading G's output where f read its input.
	chain := &nets.Graph{
		Name:      "generator+" + f.Name,
		Inputs:    g.Inputs,
		Outputs:   f.Outputs,
		Params:    map[string]*nets.Tensor{},
		Trainable: g.Trainable,
		Nodes:     append([]*nets.Node(nil), g.Nodes...),
		Opset:     f.Opset,
	}
	for k, v := range g.Params {
		chain.Params[k] = v
	}
	for k, v := range f.Params {
		chain.Params[k] = v
	}
	for _, n := range f.Nodes {
		c := *n
		c.Inputs = append([]string(nil), n.Inputs...)
		for i, s := range c.Inputs {
			if s == fin {
				c.Inputs[i] = out
			}
		}
		chain.Nodes = append(chain.Nodes, &c)
	}
	if err := chain.Validate(); err != nil {
		return nil, fmt.Errorf("generator chain: %w", err)
	}
	return &atGenerator{net: g, chain: chain, out: out, opt: nets.NewAdam(), lr: lr}, nil
}

// params returns G's trainable tensors, in Trainable order.
func (a *atGenerator) params() []*nets.Tensor {
	ps := make([]*nets.Tensor, len(a.net.Trainable))
	for i, n := range a.net.Trainable {
		ps[i] = a.net.Params[n]
	}
	return ps
}

// step takes one Adam step of G on −mean J(f(G(x)), y) and returns mean J(f(G(x)), y)
// before the step.
func (a *atGenerator) step(x *nets.Tensor, y []int) (float64, error) {
	neg, _, grads, err := nets.ParamGrad(a.chain, x, y, atNegLoss{a.loss}, a.chunk)
	if err != nil {
		return 0, fmt.Errorf("generator step: %w", err)
	}
	if err := a.opt.Step(a.params(), grads, a.lr); err != nil {
		return 0, fmt.Errorf("generator step: %w", err)
	}
	return -neg, nil
}

// apply returns G(x).
func (a *atGenerator) apply(x *nets.Tensor) (*nets.Tensor, error) {
	vals, err := a.net.Forward(map[string]*nets.Tensor{a.net.Inputs[0].Name: x})
	if err != nil {
		return nil, fmt.Errorf("generator: %w", err)
	}
	return vals[a.out], nil
}

// atNegLoss is −inner: descending it ascends inner.
type atNegLoss struct{ inner nets.Loss }

func (l atNegLoss) Eval(logits *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	v, g, err := l.inner.Eval(logits, labels)
	if err != nil {
		return nil, nil, err
	}
	for i := range v {
		v[i] = -v[i]
	}
	for i := range g.Data {
		g.Data[i] = -g.Data[i]
	}
	return v, g, nil
}
