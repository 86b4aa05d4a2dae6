package bounds

import (
	"github.com/certify-dev/certify/nets"
)

// IBP returns a box for every value of g reachable from the data input, batched
// like in, by interval bound propagation (Gowal et al., "On the Effectiveness of
// Interval Bound Propagation for Training Verifiably Robust Models", 2018, §3):
// every node maps the boxes of its inputs to a box containing all its outputs.
// Linear ops use the centre-radius form (y_mid = W·mid + b, y_rad = |W|·rad, one
// GEMM each for the whole batch), monotone ops map the ends, MaxPool takes the
// largest ends, Softmax uses the extreme quotients and a product of two bounded
// tensors the extreme corner products. Params and other constants appear as
// degenerate boxes (Lo = Hi, not batched). With opt.SoundFP every box also holds
// under rounding (fp.go).
func IBP(g *nets.Graph, in Box, opt Options) (map[string]Box, error) {
	e, err := newEngine(g, in, opt, false)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Box, len(e.boxes)+len(e.consts))
	for k, c := range e.consts {
		out[k] = Box{Lo: c.Clone(), Hi: c.Clone()}
	}
	for k, b := range e.boxes {
		out[k] = b
	}
	out[e.plan.input] = Box{Lo: in.Lo.Clone(), Hi: in.Hi.Clone()}
	return out, nil
}

// SpecIBP bounds every row of C·y + D from below by interval arithmetic on IBP's
// boxes, with the spec folded into the last linear layer (Gowal et al. 2018, §3,
// "elision of the last layer"): for y = W·h + b, C·y + D = (C·W)·h + (C·b + D) is
// bounded on h's box by Σ_k (CW)_k·(CW_k ≥ 0 ? l_k : u_k) + C·b + D, which is never
// looser than interval arithmetic on y's box. The folding goes back through the
// whole run of exact linear ops (Gemm, MatMul, Conv, pools, elementwise affine
// ops, data movement) that ends the network, down to the first value produced by
// a nonlinearity, a node with two bounded inputs, or the input.
func SpecIBP(g *nets.Graph, in Box, specs []Spec, opt Options) (*Result, error) {
	e, err := newEngine(g, in, opt, false)
	if err != nil {
		return nil, err
	}
	lower, err := e.specIBP(specs)
	if err != nil {
		return nil, err
	}
	return &Result{Lower: lower, Nodes: e.boxes}, nil
}

// specIBP is SpecIBP on the engine's boxes. With SoundFP the folding's back-
// substitution and concretisation are widened like CROWN's.
func (e *engine) specIBP(specs []Spec) ([][]float64, error) {
	if err := e.checkSpecs(specs); err != nil {
		return nil, err
	}
	stop := e.plan.output
	for {
		k, ok := e.plan.producer[stop]
		if !ok {
			break
		}
		switch e.layers[k].(type) {
		case *gemmLayer, *matmulLayer, *convLayer, *poolLayer, *affineLayer:
		default:
			k = -1
		}
		if k < 0 {
			break
		}
		next := ""
		for _, in := range e.plan.nodes[k].Inputs {
			if e.boxes[in].Lo != nil {
				if next != "" {
					next = "!"
				} else {
					next = in
				}
			}
		}
		if next == "!" || next == "" {
			break
		}
		if !e.crown {
			if err := e.layers[k].linearize(); err != nil {
				return nil, err
			}
		}
		stop = next
	}
	at := e.input()
	if stop != e.plan.input {
		at = e.newCentre(stop)
	}
	return e.specLower(specs, at, nil)
}
