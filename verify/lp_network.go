package verify

import (
	"fmt"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// lpAffine is one affine map z = W·v + b between consecutive ReLU layers of a
// piecewise-linear chain: W is len(b) × in, row-major.
type lpAffine struct {
	in int
	W  []float64
	b  []float64
	// nnz is the number of nonzero entries of W: the LP's nonzeros of this map
	// (relaxSize) without building it.
	nnz int
}

// lpNet is a ReLU network in the form the LP relaxation needs: x → affine[0] → z₁
// → ReLU → h₁ → affine[1] → z₂ → … → ReLU → h_K → affine[K] → y. pre[k] names the
// graph value of z_{k+1} (the input of the (k+1)-th Relu), whose box bound
// propagation gives.
type lpNet struct {
	affine []lpAffine
	pre    []string
}

// affineOp reports whether op is affine in its non-constant inputs (given the
// restrictions checked in linearUse); between two Relu nodes only these may
// appear. Conv, BatchNormalization (inference), pooling by averages, padding with
// a constant and the shape ops all qualify, so convolutional nets are handled.
func affineOp(op string) bool {
	switch op {
	case "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Conv", "Flatten", "Reshape",
		"Transpose", "Concat", "Pad", "BatchNormalization", "AveragePool",
		"GlobalAveragePool", "Identity", "Dropout":
		return true
	}
	return false
}

// extractLPNet reads g as a chain of affine segments separated by Relu nodes, for
// inputs of per-sample shape sample. Each segment's W and b are found by probing:
// the segment runs, with the graph's own ops, on a batch holding the zero vector
// (row 0 gives b) and every unit vector e_i (row i+1 minus row 0 gives column i
// of W). Only ops affine in their variable inputs are accepted, so probing is
// exact up to rounding. Networks with another nonlinearity, or with a value used
// across a Relu (skip connections), are rejected with bounds.ErrUnsupported.
func extractLPNet(g *nets.Graph, sample []int) (*lpNet, error) {
	in, out, err := singleIO(g)
	if err != nil {
		return nil, err
	}
	consts := make(map[string]*nets.Tensor, len(g.Params))
	for k, v := range g.Params {
		consts[k] = v
	}
	n := nets.NumElements(sample)
	vars := map[string]*nets.Tensor{in: probe(n, sample)}
	dim := n // dimension of the current segment's base
	net := &lpNet{}
	for _, node := range g.Nodes {
		ins := make([]*nets.Tensor, len(node.Inputs))
		variable := make([]bool, len(node.Inputs))
		nvar := 0
		for i, name := range node.Inputs {
			if name == "" {
				continue
			}
			if t, ok := consts[name]; ok {
				ins[i] = t
				continue
			}
			t, ok := vars[name]
			if !ok {
				return nil, fmt.Errorf("%w: lp: node %q (%s) uses %q from before a Relu (only chains of affine layers and ReLUs are supported)", bounds.ErrUnsupported, node.Name, node.Op.OpType(), name)
			}
			ins[i], variable[i] = t, true
			nvar++
		}
		op := node.Op.OpType()
		switch {
		case nvar == 0: // constant folding
			outs, err := node.Op.Forward(ins)
			if err != nil {
				return nil, fmt.Errorf("lp: node %q (%s): %w", node.Name, op, err)
			}
			for i, name := range node.Outputs {
				if i < len(outs) {
					consts[name] = outs[i]
				}
			}
		case op == "Relu":
			z := ins[0]
			aff, err := affineOf(z, dim)
			if err != nil {
				return nil, fmt.Errorf("lp: node %q: %w", node.Name, err)
			}
			net.affine = append(net.affine, aff)
			net.pre = append(net.pre, node.Inputs[0])
			dim = len(aff.b)
			vars = map[string]*nets.Tensor{node.Outputs[0]: probe(dim, z.Shape[1:])}
		case affineOp(op) && linearUse(op, variable, nvar):
			outs, err := forwardProbe(node.Op, ins, variable)
			if err != nil {
				return nil, fmt.Errorf("lp: node %q (%s): %w", node.Name, op, err)
			}
			for i, name := range node.Outputs {
				if i < len(outs) {
					vars[name] = outs[i]
				}
			}
		default:
			return nil, fmt.Errorf("%w: lp: node %q (%s) is not affine in its input (only affine layers and Relu are supported)", bounds.ErrUnsupported, node.Name, op)
		}
	}
	y, ok := vars[out]
	if !ok {
		return nil, fmt.Errorf("%w: lp: output %q is not an affine function of the last Relu (or of the input)", bounds.ErrUnsupported, out)
	}
	aff, err := affineOf(y, dim)
	if err != nil {
		return nil, fmt.Errorf("lp: output %q: %w", out, err)
	}
	net.affine = append(net.affine, aff)
	return net, nil
}

// singleIO returns the graph's data input (the one that is not a param) and its
// output.
func singleIO(g *nets.Graph) (in, out string, err error) {
	var ins []string
	for _, vi := range g.Inputs {
		if _, isParam := g.Params[vi.Name]; !isParam {
			ins = append(ins, vi.Name)
		}
	}
	if len(ins) != 1 || len(g.Outputs) != 1 {
		return "", "", fmt.Errorf("%w: lp: graph with %d data inputs and %d outputs (want one of each)", bounds.ErrUnsupported, len(ins), len(g.Outputs))
	}
	return ins[0], g.Outputs[0].Name, nil
}

// linearUse reports whether op is linear in its variable inputs: products and
// quotients only with one variable factor (the numerator for Div).
func linearUse(op string, variable []bool, nvar int) bool {
	switch op {
	case "Gemm", "MatMul", "Mul":
		return nvar == 1
	case "Div":
		return nvar == 1 && variable[0]
	case "Conv", "BatchNormalization", "Pad", "Reshape":
		// Only the data input may vary (weights, statistics, pads, shapes fixed).
		return nvar == 1 && variable[0]
	}
	return true
}

// probe returns the batch [n+1, shape...] holding 0 and the unit vectors e_0 …
// e_{n-1}.
func probe(n int, shape []int) *nets.Tensor {
	t := nets.NewTensor(append([]int{n + 1}, shape...)...)
	for i := 0; i < n; i++ {
		t.Data[(i+1)*n+i] = 1
	}
	return t
}

// affineOf reads W and b off a probed value of batch dim+1.
func affineOf(t *nets.Tensor, dim int) (lpAffine, error) {
	if t.Rank() == 0 || t.Shape[0] != dim+1 || t.Len()%(dim+1) != 0 {
		return lpAffine{}, fmt.Errorf("%w: lp: value of shape %v does not keep the batch dimension", bounds.ErrUnsupported, t.Shape)
	}
	m := t.Len() / (dim + 1)
	a := lpAffine{in: dim, W: make([]float64, m*dim), b: append([]float64(nil), t.Data[:m]...)}
	for i := 0; i < dim; i++ {
		row := t.Data[(i+1)*m : (i+2)*m]
		for o, v := range row {
			w := v - a.b[o]
			a.W[o*dim+i] = w
			if w != 0 {
				a.nnz++
			}
		}
	}
	return a, nil
}

// forwardProbe runs op on probed inputs: on the whole batch at once, or, when the
// op insists on another batch size (a Reshape to a fixed [1, …]), row by row.
func forwardProbe(op nets.Op, ins []*nets.Tensor, variable []bool) ([]*nets.Tensor, error) {
	outs, err := op.Forward(ins)
	if err == nil && batchKept(outs, ins, variable) {
		return outs, nil
	}
	rows := 0
	for i, v := range variable {
		if v {
			rows = ins[i].Shape[0]
		}
	}
	row := make([]*nets.Tensor, len(ins))
	var parts [][]*nets.Tensor
	for r := 0; r < rows; r++ {
		for i, t := range ins {
			row[i] = t
			if variable[i] {
				row[i] = t.Row(r)
			}
		}
		o, err := op.Forward(row)
		if err != nil {
			return nil, err
		}
		parts = append(parts, o)
	}
	outs = make([]*nets.Tensor, len(parts[0]))
	for k := range outs {
		per := parts[0][k].Len()
		if parts[0][k].Rank() == 0 || parts[0][k].Shape[0] != 1 {
			return nil, fmt.Errorf("%w: output of shape %v per sample has no batch dimension", bounds.ErrUnsupported, parts[0][k].Shape)
		}
		t := nets.NewTensor(append([]int{rows}, parts[0][k].Shape[1:]...)...)
		for r := range parts {
			if parts[r][k].Len() != per {
				return nil, fmt.Errorf("output sizes differ between rows")
			}
			copy(t.Data[r*per:(r+1)*per], parts[r][k].Data)
		}
		outs[k] = t
	}
	return outs, nil
}

// batchKept reports whether every output has the batch size of the variable
// inputs.
func batchKept(outs, ins []*nets.Tensor, variable []bool) bool {
	rows := -1
	for i, v := range variable {
		if v {
			rows = ins[i].Shape[0]
		}
	}
	for _, o := range outs {
		if o == nil || o.Rank() == 0 || o.Shape[0] != rows {
			return false
		}
	}
	return true
}
