package defenses

import (
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// Certified training (IBP, Gowal et al. 2018; CROWN-IBP, Zhang et al. 2020) needs
// the gradient of a bound on the network's margins with respect to its weights. For
// a chain of affine layers and ReLUs those bounds are themselves a network of
// matrix products (convolutions), ReLUs and a few elementwise ops, so boundGraph
// writes them as a nets.Graph that shares the network's weight tensors: nets.Train
// on it trains the network.
//
// The bound graph reads one row per sample, [x (flattened, d values) | onehot(y) (K
// values)] (the label selects the sample's spec), and writes [z(x) | m(x, ε)]: the
// clean logits and the K lower bounds m_j of z_y − z_j over the box
// [max(x−ε, 0), min(x+ε, 1)] (m_y = 0). Layer by layer, for y = W·h + b:
//
//   - IBP in centre/radius form: with μ = (l+u)/2, r = (u−l)/2,
//     l' = W·μ + b − |W|·r and u' = W·μ + b + |W|·r (for a Conv, |W|·r is the
//     convolution of r with |W| = W⁺ − W⁻); a ReLU maps [l, u] to
//     [relu(l), relu(u)]. The last layer is folded with the spec (Gowal et al.,
//     §3, "elision of the last layer"): with C the [K, K] matrix of rows e_y − e_j,
//     m_IBP = (CW)·μ − |CW|·r + C·b on the last hidden box, exactly what
//     bounds.SpecIBP computes.
//   - CROWN-IBP (Zhang et al. 2020, §3.2), MLPs only: the spec's linear function Λ = C·W_L is
//     propagated backward; at ReLU k with IBP pre-activation bounds [l, u], a
//     coefficient λ_j ≥ 0 takes the lower line α_j·z (α_j = 1 if u_j > −l_j else 0
//     for an unstable neuron, 1 if active, 0 if dead) and λ_j < 0 the upper line
//     s_j·z + t_j (s = u/(u−l), t = −s·l for an unstable neuron, s = 1, t = 0 if
//     active, 0 if dead); a Gemm maps Λ to Λ·W, its bias into the constant. At the
//     input box, Λ₀·x ≥ Λ₀·μ₀ − |Λ₀|·r₀. α is a constant of the step (its
//     derivative is zero almost everywhere, as in the paper); s and t are
//     differentiated through.
//
// With crown, the graph outputs m = m_IBP + β·(m_CROWN-IBP − m_IBP), β the param
// "beta". The radius is the param "eps" (one value, not trainable), set per step.
type boundGraph struct {
	g       *nets.Graph
	in      int    // d: flattened input size
	classes int    // K
	clean   string // the value holding the clean logits
}

// mlpLayer is one affine layer of the chain: a Gemm (or, for IBP, a Conv), with
// the names of its weight and bias, and whether a Flatten comes before it.
type mlpLayer struct {
	op      nets.Op // nets.Gemm or nets.Conv
	gemm    nets.Gemm
	node    string
	w, b    string
	flatten bool
}

// mlpLayers checks that g is a chain of affine layers and ReLUs as nets.MLP (and,
// with conv, nets.MNISTCNN) builds it: [Conv → Relu]* then one Flatten (axis 1),
// then Gemm (→ Relu → Gemm)*, each node reading the previous one's output, every
// layer affine in params (a Gemm with alpha = beta = 1, not transA, and a bias),
// the last a Gemm; and returns its affine layers.
func mlpLayers(g *nets.Graph, conv bool) ([]mlpLayer, error) {
	in, out, err := graphIO(g)
	if err != nil {
		return nil, err
	}
	var layers []mlpLayer
	cur := in
	wantRelu, flat, flattenNext := false, false, false
	for _, n := range g.Nodes {
		if len(n.Outputs) != 1 || len(n.Inputs) == 0 || n.Inputs[0] != cur {
			return nil, fmt.Errorf("node %q (%s): not a chain of single-input layers", n.Name, n.Op.OpType())
		}
		switch op := n.Op.(type) {
		case nets.Flatten:
			if flat || wantRelu || op.Axis != 1 {
				return nil, fmt.Errorf("node %q: one Flatten with axis 1, before the Gemms and after a Relu", n.Name)
			}
			flat, flattenNext = true, true
		case nets.Conv:
			if !conv {
				return nil, fmt.Errorf("node %q: op Conv not supported (CROWN-IBP training takes an MLP: Flatten, Gemm, Relu)", n.Name)
			}
			if flat || wantRelu || len(n.Inputs) != 3 || g.Params[n.Inputs[1]] == nil || g.Params[n.Inputs[2]] == nil {
				return nil, fmt.Errorf("node %q: Conv must come before the Flatten, after a Relu, with weight and bias params", n.Name)
			}
			layers = append(layers, mlpLayer{op: op, node: n.Name, w: n.Inputs[1], b: n.Inputs[2]})
			wantRelu = true
		case nets.Gemm:
			if wantRelu {
				return nil, fmt.Errorf("node %q: two affine layers without a Relu between them", n.Name)
			}
			if op.TransA || op.Alpha != 1 || op.Beta != 1 || len(n.Inputs) != 3 {
				return nil, fmt.Errorf("node %q: Gemm must be x·W(ᵀ) + b (alpha = beta = 1, no transA, a bias)", n.Name)
			}
			w, b := g.Params[n.Inputs[1]], g.Params[n.Inputs[2]]
			if w == nil || b == nil || w.Rank() != 2 {
				return nil, fmt.Errorf("node %q: Gemm weight and bias must be params (weight 2-D)", n.Name)
			}
			out := w.Shape[0]
			if !op.TransB {
				out = w.Shape[1]
			}
			if b.Len() != out {
				return nil, fmt.Errorf("node %q: bias of %d values for %d outputs", n.Name, b.Len(), out)
			}
			if len(layers) > 0 && !flat {
				return nil, fmt.Errorf("node %q: a Gemm after a Conv needs a Flatten between them", n.Name)
			}
			layers = append(layers, mlpLayer{op: op, gemm: op, node: n.Name, w: n.Inputs[1], b: n.Inputs[2], flatten: flattenNext && len(layers) > 0})
			wantRelu, flat, flattenNext = true, true, false
		case nets.Relu:
			if !wantRelu {
				return nil, fmt.Errorf("node %q: Relu must follow an affine layer", n.Name)
			}
			wantRelu = false
		default:
			return nil, fmt.Errorf("node %q: op %s not supported (certified training takes Flatten, Gemm, Relu%s)", n.Name, n.Op.OpType(),
				map[bool]string{true: ", Conv", false: ""}[conv])
		}
		cur = n.Outputs[0]
	}
	if len(layers) == 0 || !wantRelu || cur != out {
		return nil, fmt.Errorf("graph %q must end with a Gemm producing its output", g.Name)
	}
	if _, ok := layers[len(layers)-1].op.(nets.Gemm); !ok {
		return nil, fmt.Errorf("graph %q must end with a Gemm", g.Name)
	}
	return layers, nil
}

// dims returns the (out, in) sizes of a Gemm layer.
func (l mlpLayer) dims(g *nets.Graph) (out, in int) {
	w := g.Params[l.w]
	if l.gemm.TransB {
		return w.Shape[0], w.Shape[1]
	}
	return w.Shape[1], w.Shape[0]
}

// newBoundGraph builds the bound graph of the MLP g (see boundGraph); crown adds
// the CROWN-IBP bound and its β mix.
func newBoundGraph(g *nets.Graph, crown bool) (*boundGraph, error) {
	layers, err := mlpLayers(g, !crown)
	if err != nil {
		return nil, fmt.Errorf("bound graph: %w", err)
	}
	k, _ := layers[len(layers)-1].dims(g)
	shape, err := g.InputShape()
	if err != nil {
		return nil, fmt.Errorf("bound graph: %w", err)
	}
	d := nets.NumElements(shape)
	if _, isConv := layers[0].op.(nets.Conv); isConv && (len(shape) != 3 || d <= 0) {
		return nil, fmt.Errorf("bound graph: a Conv network needs a fixed [C,H,W] input, have %v", shape)
	} else if !isConv {
		if _, d1 := layers[0].dims(g); d1 != d {
			return nil, fmt.Errorf("bound graph: input shape %v does not have the %d values of the first layer", shape, d1)
		}
	}
	bg := &nets.Graph{
		Name:      g.Name + "-bounds",
		Inputs:    []nets.ValueInfo{{Name: "input", Shape: []int{-1, d + k}}},
		Outputs:   []nets.ValueInfo{{Name: "out", Shape: []int{-1, 2 * k}}},
		Params:    map[string]*nets.Tensor{},
		Trainable: append([]string(nil), g.Trainable...),
		Opset:     13,
	}
	for name, t := range g.Params {
		bg.Params[name] = t
	}
	consts := map[string]*nets.Tensor{
		"eps": nets.FromData([]float64{0}, 1), "beta": nets.FromData([]float64{1}, 1),
		"one": nets.FromData([]float64{1}, 1), "half": nets.FromData([]float64{0.5}, 1),
		"two": nets.FromData([]float64{2}, 1), "onesK": nets.NewTensor(k, 1), "eyeK": nets.NewTensor(k, k),
	}
	for i := 0; i < k; i++ {
		consts["onesK"].Data[i] = 1
		consts["eyeK"].Data[i*k+i] = 1
	}
	for name, t := range consts {
		if _, clash := bg.Params[name]; clash {
			return nil, fmt.Errorf("bound graph: the MLP already has a param named %q", name)
		}
		bg.Params[name] = t
	}
	b := &graphBuilder{g: bg}
	x := b.add("x", sliceCols{From: 0, To: d}, "input")
	y := b.add("y", sliceCols{From: d, To: d + k}, "input")
	if _, isConv := layers[0].op.(nets.Conv); isConv {
		x = b.add("x4", nets.Reshape{Shape: append([]int{-1}, shape...)}, x)
	}

	// The clean logits.
	h := x
	for i, l := range layers {
		if l.flatten {
			h = b.add(fmt.Sprintf("flat-z%d", i), nets.Flatten{Axis: 1}, h)
		}
		h = b.add(fmt.Sprintf("z%d", i), l.op, h, l.w, l.b)
		if i < len(layers)-1 {
			h = b.add(fmt.Sprintf("h%d", i), nets.Relu{}, h)
		}
	}
	clean := h

	// The input box, clipped to [0, 1]: l = relu(x − ε), u = 1 − relu(1 − x − ε).
	lo := b.add("l0", nets.Relu{}, b.add("x-eps", nets.Sub{}, x, "eps"))
	hi := b.add("u0", nets.Sub{}, "one", b.add("relu(1-x-eps)", nets.Relu{},
		b.add("1-x-eps", nets.Sub{}, b.add("1-x", nets.Sub{}, "one", x), "eps")))
	mid0 := b.add("mid0", nets.Mul{}, b.add("l0+u0", nets.Add{}, lo, hi), "half")
	rad0 := b.add("rad0", nets.Mul{}, b.add("u0-l0", nets.Sub{}, hi, lo), "half")

	// IBP through the hidden layers; pre[i] are the pre-activation bounds.
	type box struct{ lo, hi string }
	var pre []box
	mid, rad := mid0, rad0
	flatten := func(i int) {
		mid = b.add(fmt.Sprintf("flat-mid%d", i), nets.Flatten{Axis: 1}, mid)
		rad = b.add(fmt.Sprintf("flat-rad%d", i), nets.Flatten{Axis: 1}, rad)
	}
	for i, l := range layers[:len(layers)-1] {
		if l.flatten {
			flatten(i)
		}
		// The radius goes through the layer's linear part with |W|: a Gemm with the
		// same transB, or a Conv with the same geometry, without the bias.
		var radOp nets.Op = nets.Gemm{TransB: l.gemm.TransB, Alpha: 1, Beta: 1}
		if c, isConv := l.op.(nets.Conv); isConv {
			radOp = c
		}
		zm := b.add(fmt.Sprintf("mid-z%d", i), l.op, mid, l.w, l.b)
		zr := b.add(fmt.Sprintf("rad-z%d", i), radOp, rad, b.abs(fmt.Sprintf("|W%d|", i), l.w))
		zl := b.add(fmt.Sprintf("l-z%d", i), nets.Sub{}, zm, zr)
		zu := b.add(fmt.Sprintf("u-z%d", i), nets.Add{}, zm, zr)
		pre = append(pre, box{zl, zu})
		hl := b.add(fmt.Sprintf("l-h%d", i), nets.Relu{}, zl)
		hu := b.add(fmt.Sprintf("u-h%d", i), nets.Relu{}, zu)
		mid = b.add(fmt.Sprintf("mid-h%d", i), nets.Mul{}, b.add(fmt.Sprintf("l+u-h%d", i), nets.Add{}, hl, hu), "half")
		rad = b.add(fmt.Sprintf("rad-h%d", i), nets.Mul{}, b.add(fmt.Sprintf("u-l-h%d", i), nets.Sub{}, hu, hl), "half")
	}

	if layers[len(layers)-1].flatten {
		flatten(len(layers) - 1)
	}
	// The spec C = 1·yᵀ − I ([n, K, K], row j = e_y − e_j) folded into the last layer;
	// bound(Λ, box, c) is min of Λ·h + c over the box.
	last := layers[len(layers)-1]
	spec := b.add("C", nets.Sub{}, b.add("1yT", nets.MatMul{}, "onesK", b.add("y3", nets.Reshape{Shape: []int{-1, 1, k}}, y)), "eyeK")
	lam := b.add("CW", nets.MatMul{}, spec, b.weightOutIn("W-last", last))
	cst := b.add("Cb", nets.MatMul{}, spec, b.add("b-last", nets.Reshape{Shape: []int{k, 1}}, last.b))
	bound := func(name, lam, mid, rad, cst string) string {
		v := b.add(name+"-min", concretise{}, lam, mid, rad)
		return b.add(name, nets.Add{}, b.add(name+"-3", nets.Reshape{Shape: []int{-1, k, 1}}, v), cst)
	}
	margins := bound("m-ibp", lam, mid, rad, cst)

	if crown {
		for i := len(layers) - 2; i >= 0; i-- {
			l := layers[i]
			out, _ := l.dims(g)
			relax := fmt.Sprintf("relax%d", i)
			b.g.Nodes = append(b.g.Nodes, &nets.Node{Name: relax, Op: reluRelax{}, Inputs: []string{pre[i].lo, pre[i].hi},
				Outputs: []string{relax + "-α", relax + "-s", relax + "-t"}})
			alpha := b.add(relax+"-α3", nets.Reshape{Shape: []int{-1, 1, out}}, relax+"-α")
			slope := b.add(relax+"-s3", nets.Reshape{Shape: []int{-1, 1, out}}, relax+"-s")
			icpt := b.add(relax+"-t3", nets.Reshape{Shape: []int{-1, out, 1}}, relax+"-t")
			lp := b.add(fmt.Sprintf("Λ+%d", i), nets.Relu{}, lam)
			ln := b.add(fmt.Sprintf("Λ-%d", i), nets.Sub{}, lam, lp)
			cst = b.add(fmt.Sprintf("c-relu%d", i), nets.Add{}, cst, b.add(fmt.Sprintf("Λ-t%d", i), nets.MatMul{}, ln, icpt))
			a := b.add(fmt.Sprintf("A%d", i), nets.Add{},
				b.add(fmt.Sprintf("Λ+α%d", i), nets.Mul{}, lp, alpha), b.add(fmt.Sprintf("Λ-s%d", i), nets.Mul{}, ln, slope))
			cst = b.add(fmt.Sprintf("c-gemm%d", i), nets.Add{}, cst,
				b.add(fmt.Sprintf("Ab%d", i), nets.MatMul{}, a, b.add(fmt.Sprintf("b%d-col", i), nets.Reshape{Shape: []int{out, 1}}, l.b)))
			lam = b.add(fmt.Sprintf("AW%d", i), nets.MatMul{}, a, b.weightOutIn(fmt.Sprintf("W%d", i), l))
		}
		crownM := bound("m-crown", lam, mid0, rad0, cst)
		diff := b.add("m-crown-ibp", nets.Sub{}, crownM, margins)
		margins = b.add("m-mix", nets.Add{}, margins, b.add("β(m-crown-ibp)", nets.Mul{}, diff, "beta"))
	}
	m2 := b.add("margins", nets.Reshape{Shape: []int{-1, k}}, margins)
	b.add("out", nets.Concat{Axis: 1}, clean, m2)
	// A value of the bound graph named like one of the network's params would
	// silently shadow it.
	for _, n := range bg.Nodes {
		if _, clash := g.Params[n.Outputs[0]]; clash {
			return nil, fmt.Errorf("bound graph: the network has a param named %q, a name the bound graph uses for a value; rename it", n.Outputs[0])
		}
	}
	if err := bg.Validate(); err != nil {
		return nil, fmt.Errorf("bound graph: %w", err)
	}
	return &boundGraph{g: bg, in: d, classes: k, clean: clean}, nil
}

// graphBuilder appends single-output nodes named after their output.
type graphBuilder struct{ g *nets.Graph }

func (b *graphBuilder) add(name string, op nets.Op, in ...string) string {
	b.g.Nodes = append(b.g.Nodes, &nets.Node{Name: name, Op: op, Inputs: in, Outputs: []string{name}})
	return name
}

// abs adds |v| = 2·relu(v) − v.
func (b *graphBuilder) abs(name, v string) string {
	return b.add(name, nets.Sub{}, b.add(name+"-2relu", nets.Mul{}, b.add(name+"-relu", nets.Relu{}, v), "two"), v)
}

// weightOutIn returns the layer's weight as an [out, in] matrix.
func (b *graphBuilder) weightOutIn(name string, l mlpLayer) string {
	if l.gemm.TransB {
		return l.w
	}
	return b.add(name+"ᵀ", nets.Transpose{Perm: []int{1, 0}}, l.w)
}

// setSchedule sets the radius and the CROWN-IBP weight β of the next steps.
func (bg *boundGraph) setSchedule(eps, beta float64) {
	bg.g.Params["eps"].Data[0] = eps
	bg.g.Params["beta"].Data[0] = beta
}

// rows packs a batch and its labels as the bound graph's input: [x | onehot(y)].
func (bg *boundGraph) rows(x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	n, d, k := len(labels), bg.in, bg.classes
	if x.Rank() == 0 || x.Shape[0] != n || x.Len() != n*d {
		return nil, fmt.Errorf("bound graph: batch of shape %v for %d labels and %d inputs per row", x.Shape, n, d)
	}
	out := nets.NewTensor(n, d+k)
	for i, y := range labels {
		if y < 0 || y >= k {
			return nil, fmt.Errorf("bound graph: label %d outside [0,%d)", y, k)
		}
		copy(out.Data[i*(d+k):], x.Data[i*d:(i+1)*d])
		out.Data[i*(d+k)+d+y] = 1
	}
	return out, nil
}

// margins runs the bound graph forward and returns the clean logits [n, K] and the
// margin bounds [n, K] (column y is 0).
func (bg *boundGraph) margins(x *nets.Tensor, labels []int) (clean, m *nets.Tensor, err error) {
	in, err := bg.rows(x, labels)
	if err != nil {
		return nil, nil, err
	}
	vals, err := bg.g.Forward(map[string]*nets.Tensor{"input": in})
	if err != nil {
		return nil, nil, fmt.Errorf("bound graph: %w", err)
	}
	return vals[bg.clean], vals["margins"], nil
}
