package bounds

import (
	"fmt"
	"reflect"

	"github.com/certify-dev/certify/nets"
)

// plan is what bound propagation needs to know of a graph's wiring: which value is
// the data input, which values depend on it ("bounded": they get boxes and linear
// coefficients) and which are constants (params, Constant nodes, and nodes whose
// inputs are all constant, folded once here).
type plan struct {
	input, output string
	inputInfo     nets.ValueInfo
	// nodes are the nodes with at least one bounded input, in the graph's
	// topological order; only their first output is bounded.
	nodes    []*nets.Node
	ops      []nets.Op               // nodes[k].Op, pointers dereferenced
	producer map[string]int          // bounded value → index in nodes
	consts   map[string]*nets.Tensor // constant values by name
	users    map[string][]int        // bounded value → indices of the nodes reading it
	extra    map[string]*nets.Node   // further outputs of bounded nodes (MaxPool Indices, Dropout mask)
}

// newPlan analyses g: one data input (a graph input that is not a param), one output.
func newPlan(g *nets.Graph) (*plan, error) {
	if g == nil {
		return nil, fmt.Errorf("nil graph")
	}
	p := &plan{producer: map[string]int{}, consts: map[string]*nets.Tensor{},
		users: map[string][]int{}, extra: map[string]*nets.Node{}}
	var data []nets.ValueInfo
	for _, vi := range g.Inputs {
		if _, isParam := g.Params[vi.Name]; !isParam {
			data = append(data, vi)
		}
	}
	if len(data) != 1 || len(g.Outputs) != 1 {
		return nil, fmt.Errorf("bound propagation needs one data input and one output; graph %q has %d and %d", g.Name, len(data), len(g.Outputs))
	}
	p.input, p.inputInfo, p.output = data[0].Name, data[0], g.Outputs[0].Name
	for k, v := range g.Params {
		p.consts[k] = v
	}
	bounded := map[string]bool{p.input: true}
	for _, n := range g.Nodes {
		if n.Op == nil {
			return nil, fmt.Errorf("node %q: no op", n.Name)
		}
		op := derefOp(n.Op)
		isBounded := false
		for _, in := range n.Inputs {
			if in == "" {
				continue
			}
			if bounded[in] {
				isBounded = true
				continue
			}
			if _, ok := p.consts[in]; !ok {
				return nil, fmt.Errorf("node %q (%s): input %q is not produced before it", n.Name, op.OpType(), in)
			}
		}
		if len(n.Outputs) == 0 || n.Outputs[0] == "" {
			return nil, fmt.Errorf("node %q (%s): no first output", n.Name, op.OpType())
		}
		if !isBounded {
			if err := p.fold(n, op); err != nil {
				return nil, err
			}
			continue
		}
		k := len(p.nodes)
		p.nodes = append(p.nodes, n)
		p.ops = append(p.ops, op)
		for _, in := range n.Inputs {
			if bounded[in] {
				p.users[in] = append(p.users[in], k)
			}
		}
		bounded[n.Outputs[0]] = true
		p.producer[n.Outputs[0]] = k
		for _, out := range n.Outputs[1:] {
			if out != "" {
				p.extra[out] = n
			}
		}
	}
	if !bounded[p.output] {
		return nil, fmt.Errorf("graph output %q does not depend on the data input %q", p.output, p.input)
	}
	// Reading a further output of a bounded node (MaxPool's Indices) is refused
	// where it happens (see engine.operands); a Dropout mask is a constant.
	return p, nil
}

// fold evaluates a node whose inputs are all constant.
func (p *plan) fold(n *nets.Node, op nets.Op) error {
	in := make([]*nets.Tensor, len(n.Inputs))
	for i, name := range n.Inputs {
		if name != "" {
			in[i] = p.consts[name]
		}
	}
	out, err := op.Forward(in)
	if err != nil {
		return fmt.Errorf("node %q (%s) on constants: %w", n.Name, op.OpType(), err)
	}
	for j, name := range n.Outputs {
		if name != "" && j < len(out) {
			p.consts[name] = out[j]
		}
	}
	return nil
}

// ancestors returns the indices of the nodes that value v depends on through
// bounded values (v's producer included), ascending.
func (p *plan) ancestors(v string) []int {
	seen := map[int]bool{}
	var walk func(name string)
	walk = func(name string) {
		k, ok := p.producer[name]
		if !ok || seen[k] {
			return
		}
		seen[k] = true
		for _, in := range p.nodes[k].Inputs {
			walk(in)
		}
	}
	walk(v)
	out := make([]int, 0, len(seen))
	for k := range p.nodes {
		if seen[k] {
			out = append(out, k)
		}
	}
	return out
}

// derefOp returns the op value behind a pointer (graphs may hold *nets.Gemm as well
// as nets.Gemm: both implement nets.Op).
func derefOp(op nets.Op) nets.Op {
	v := reflect.ValueOf(op)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		if o, ok := v.Elem().Interface().(nets.Op); ok {
			return o
		}
	}
	return op
}
