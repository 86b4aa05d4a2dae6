package bounds_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// IBP training (Gowal et al., "On the Effectiveness of Interval Bound Propagation
// for Training Verifiably Robust Models", 2018) needs the gradient of the IBP
// bounds with respect to the weights. The IBP bounds of a Gemm/ReLU chain are
// themselves a network of ordinary ops, so we build that network in nets and train
// it with nets.Train: for y = x·Wᵀ + b over the box [l, u], with W⁺ = relu(W) and
// W⁻ = W − W⁺,
//
//	l' = l·W⁺ᵀ + u·W⁻ᵀ + b,   u' = u·W⁺ᵀ + l·W⁻ᵀ + b,
//
// relu maps [l, u] to [relu(l), relu(u)], and the last layer is folded with the
// specs of every label at once: with S the constant [K·K, K] matrix whose row
// y·K + j is e_y − e_j, the lower bounds of (S·W)·h + S·b over the last box are
// the SpecIBP margins z_y − z_j of every pair. The graph outputs the clean logits
// and those K·K margins side by side; ibpLoss picks the rows of each sample's label.

// ibpGraph returns the IBP training graph of an MLP built by nets.MLP (Flatten,
// then Gemm/Relu pairs, then a last Gemm), sharing its param tensors, so that
// training it trains the MLP. eps is the radius of the L∞ box (param "eps", not
// trainable, set it between training stages). The box is not clipped to the data
// domain: the bounds hold for a larger box, so for the clipped one too.
func ibpGraph(mlp *nets.Graph, classes int) (*nets.Graph, error) {
	g := &nets.Graph{
		Name:      "ibp-train",
		Inputs:    mlp.Inputs,
		Outputs:   []nets.ValueInfo{{Name: "out", Shape: []int{-1, classes + classes*classes}}},
		Params:    map[string]*nets.Tensor{},
		Trainable: append([]string(nil), mlp.Trainable...),
		Opset:     13,
	}
	for k, v := range mlp.Params {
		g.Params[k] = v
	}
	g.Params["eps"] = nets.FromData([]float64{0}, 1)
	s := nets.NewTensor(classes*classes, classes)
	for y := 0; y < classes; y++ {
		for j := 0; j < classes; j++ {
			if j != y {
				s.Data[(y*classes+j)*classes+y] = 1
				s.Data[(y*classes+j)*classes+j] = -1
			}
		}
	}
	g.Params["S"] = s
	// The clean network, its output renamed.
	for _, n := range mlp.Nodes {
		c := *n
		c.Outputs = append([]string(nil), n.Outputs...)
		if c.Outputs[0] == mlp.Outputs[0].Name {
			c.Outputs[0] = "clean"
		}
		g.Nodes = append(g.Nodes, &c)
	}
	add := func(name string, op nets.Op, in ...string) string {
		g.Nodes = append(g.Nodes, &nets.Node{Name: name, Op: op, Inputs: in, Outputs: []string{name}})
		return name
	}
	gemm := nets.Gemm{TransB: true, Alpha: 1, Beta: 1}
	var gemms []*nets.Node
	for _, n := range mlp.Nodes {
		switch n.Op.OpType() {
		case "Gemm":
			gemms = append(gemms, n)
		case "Flatten", "Relu":
		default:
			return nil, fmt.Errorf("ibpGraph: op %s not supported", n.Op.OpType())
		}
	}
	in := mlp.Nodes[0].Outputs[0] // the flattened input
	lo := add("l0", nets.Sub{}, in, "eps")
	hi := add("u0", nets.Add{}, in, "eps")
	for i, n := range gemms[:len(gemms)-1] {
		w, b := n.Inputs[1], n.Inputs[2]
		wp := add(fmt.Sprintf("W+%d", i), nets.Relu{}, w)
		wn := add(fmt.Sprintf("W-%d", i), nets.Sub{}, w, wp)
		l := add(fmt.Sprintf("zl%d", i), nets.Add{},
			add(fmt.Sprintf("zl+%d", i), gemm, lo, wp, b), add(fmt.Sprintf("zl-%d", i), gemm, hi, wn))
		u := add(fmt.Sprintf("zu%d", i), nets.Add{},
			add(fmt.Sprintf("zu+%d", i), gemm, hi, wp, b), add(fmt.Sprintf("zu-%d", i), gemm, lo, wn))
		lo = add(fmt.Sprintf("hl%d", i), nets.Relu{}, l)
		hi = add(fmt.Sprintf("hu%d", i), nets.Relu{}, u)
	}
	last := gemms[len(gemms)-1]
	wc := add("SW", nets.MatMul{}, "S", last.Inputs[1])
	bc := add("Sb", nets.MatMul{}, "S", last.Inputs[2])
	wp := add("SW+", nets.Relu{}, wc)
	wn := add("SW-", nets.Sub{}, wc, wp)
	margins := add("margins", nets.Add{}, add("m+", gemm, lo, wp, bc), add("m-", gemm, hi, wn))
	add("out", nets.Concat{Axis: 1}, "clean", margins)
	return g, g.Validate()
}

// ibpLoss is κ·CE(clean logits) + (1−κ)·CE(worst-case logits), the worst-case
// logit of class j being −(lower bound of z_y − z_j) (0 for j = y), as in Gowal et
// al. (2018), eq. 7 (with the elided last layer of §3).
type ibpLoss struct {
	classes int
	kappa   float64
}

func (l ibpLoss) Eval(out *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	k := l.classes
	n := len(labels)
	if out.Rank() != 2 || out.Shape[0] != n || out.Shape[1] != k+k*k {
		return nil, nil, fmt.Errorf("ibpLoss: output %v for %d labels", out.Shape, n)
	}
	clean, worst := nets.NewTensor(n, k), nets.NewTensor(n, k)
	for i, y := range labels {
		row := out.Data[i*(k+k*k) : (i+1)*(k+k*k)]
		copy(clean.Data[i*k:], row[:k])
		for j := 0; j < k; j++ {
			worst.Data[i*k+j] = -row[k+y*k+j]
		}
	}
	cv, cg, err := nets.CrossEntropy{}.Eval(clean, labels)
	if err != nil {
		return nil, nil, err
	}
	wv, wg, err := nets.CrossEntropy{}.Eval(worst, labels)
	if err != nil {
		return nil, nil, err
	}
	vals := make([]float64, n)
	grad := nets.NewTensor(out.Shape...)
	for i, y := range labels {
		vals[i] = l.kappa*cv[i] + (1-l.kappa)*wv[i]
		row := grad.Data[i*(k+k*k) : (i+1)*(k+k*k)]
		for j := 0; j < k; j++ {
			row[j] = l.kappa * cg.Data[i*k+j]
			row[k+y*k+j] = -(1 - l.kappa) * wg.Data[i*k+j]
		}
	}
	return vals, grad, nil
}

// blobs returns n points of [0,1]² labelled by the nearest of three centres,
// keeping only points at least 0.1 closer to their centre than to any other (a
// margin, so that a robust classifier exists for radius 0.05).
func blobs(rng *rand.Rand, n int) (*nets.Tensor, []int) {
	centres := [][2]float64{{0.25, 0.25}, {0.75, 0.3}, {0.5, 0.8}}
	x := nets.NewTensor(n, 2)
	labels := make([]int, n)
	for i := 0; i < n; {
		p := [2]float64{rng.Float64(), rng.Float64()}
		d := make([]float64, 3)
		best := 0
		for c, ctr := range centres {
			d[c] = math.Hypot(p[0]-ctr[0], p[1]-ctr[1])
			if d[c] < d[best] {
				best = c
			}
		}
		ok := true
		for c := range centres {
			if c != best && d[c]-d[best] < 0.1 {
				ok = false
			}
		}
		if !ok {
			continue
		}
		x.Data[2*i], x.Data[2*i+1] = p[0], p[1]
		labels[i] = best
		i++
	}
	return x, labels
}

// trainIBP trains a 2-32-32-3 MLP on blobs with IBP: 10 clean epochs, then the
// radius ramped up to eps over 40 epochs with κ = 0.5, then 20 epochs at eps.
func trainIBP(t *testing.T, eps float64) (mlp, tg *nets.Graph, x *nets.Tensor, labels []int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(11, 3))
	mlp, err := nets.MLP(rng, []int{2}, 32, 32, 3)
	if err != nil {
		t.Fatal(err)
	}
	tg, err = ibpGraph(mlp, 3)
	if err != nil {
		t.Fatal(err)
	}
	x, labels = blobs(rng, 500)
	opt := nets.NewAdam()
	stage := func(epochs int, e, kappa float64) {
		tg.Params["eps"].Data[0] = e
		_, err := nets.Train(tg, x, labels, nets.TrainConfig{Epochs: epochs, BatchSize: 50, Optimizer: opt,
			Schedule: nets.ConstantLR(0.005), Loss: ibpLoss{classes: 3, kappa: kappa}, Rand: rng})
		if err != nil {
			t.Fatal(err)
		}
	}
	stage(10, 0, 1)
	for s := 1; s <= 8; s++ {
		stage(5, eps*float64(s)/8, 0.5)
	}
	stage(20, eps, 0.5)
	return mlp, tg, x, labels
}
