package nets

import (
	"fmt"
)

// Inference (Graph.Logits) runs the nodes like Forward, but only the output leaves a
// call, so the intermediate values can live in reused buffers:
//
//   - each worker goroutine owns an inferArena whose per-node buffers are reused for
//     every slice of rows it runs (within one Logits call);
//   - Conv writes its im2col matrix and output into those buffers (same chunks of
//     samples per gemm as Forward; it does not split the batch again across cores,
//     since Logits already runs one part per core);
//   - a Relu whose input comes straight from a Conv or Gemm, and is read by nothing
//     else, is applied while that op writes its output (max(0, v) on the same v);
//   - Flatten, Reshape and Identity return views of their input instead of copies
//     (safe here: no op writes into its inputs and nothing outlives the call).
//
// Every value is computed by the same floating-point operations in the same order as
// Forward (the same gemm calls on the same shapes, plus the bias, then the Relu), so
// Logits agrees bit for bit with Forward on the same rows (TestLogitsMatchesForward).
// The gemm shapes must stay those of Forward: OpenBLAS rounds an element of a product
// differently with the product's width and height (its small-matrix and edge
// kernels), so batching more samples per gemm would change the last bits.

// inferKind says how a step runs.
type inferKind int

const (
	inferGeneric inferKind = iota // Op.Forward
	inferConv                     // Conv into the arena
	inferGemm                     // Gemm into the arena
	inferView                     // Flatten, Reshape, Identity: a view of in[0]
	inferFused                    // a Relu applied by the previous step
)

// inferStep is one node of the inference schedule.
type inferStep struct {
	node *Node
	kind inferKind
	relu bool // apply max(0,·) to this step's output (a fused Relu follows)
	// alias names the fused Relu's output, which is this step's output too.
	alias string
}

// inferSchedule plans the nodes of g for inference: which run through a fast path
// and which Relus fold into the step before them.
func (g *Graph) inferSchedule() []inferStep {
	readers := map[string]int{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			readers[in]++
		}
	}
	for _, out := range g.Outputs {
		readers[out.Name]++ // a graph output must stay as computed
	}
	steps := make([]inferStep, len(g.Nodes))
	for i, n := range g.Nodes {
		steps[i] = inferStep{node: n, kind: inferGeneric}
		switch n.Op.(type) {
		case Conv:
			if len(n.Inputs) >= 2 && len(n.Outputs) == 1 {
				steps[i].kind = inferConv
			}
		case Gemm:
			if len(n.Inputs) >= 2 && len(n.Outputs) == 1 {
				steps[i].kind = inferGemm
			}
		case Flatten, Reshape, Identity:
			if len(n.Inputs) >= 1 && len(n.Outputs) == 1 {
				steps[i].kind = inferView
			}
		}
	}
	for i := 1; i < len(g.Nodes); i++ {
		n, prev := g.Nodes[i], &steps[i-1]
		if _, isRelu := n.Op.(Relu); !isRelu || len(n.Inputs) != 1 || len(n.Outputs) != 1 {
			continue
		}
		if (prev.kind != inferConv && prev.kind != inferGemm) || prev.relu {
			continue
		}
		if out := prev.node.Outputs[0]; n.Inputs[0] == out && out != "" && readers[out] == 1 {
			prev.relu, prev.alias = true, n.Outputs[0]
			steps[i].kind = inferFused
		}
	}
	return steps
}

// inferArena holds one worker's reusable buffers, per step.
type inferArena struct {
	out  [][]float64 // step outputs
	col  [][]float64 // Conv im2col matrices
	tmp  [][]float64 // Conv products before the (M, bs·P) → (bs, M, P) reorder
	vals Values
}

func newInferArena(steps int) *inferArena {
	return &inferArena{out: make([][]float64, steps), col: make([][]float64, steps),
		tmp: make([][]float64, steps), vals: Values{}}
}

// grow returns (*buf)[:n], reallocating when the capacity is short. The contents are
// stale: callers overwrite every element.
func grow(buf *[]float64, n int) []float64 {
	if cap(*buf) < n {
		*buf = make([]float64, n)
	}
	return (*buf)[:n]
}

// infer runs the schedule on the rows in x (a whole call's worth: at most rowStep)
// and returns the named output. The returned tensor may share the arena's storage:
// the caller copies it before the next call.
func (g *Graph) infer(steps []inferStep, a *inferArena, in ValueInfo, x *Tensor, outName string) (*Tensor, error) {
	vals := a.vals
	clear(vals)
	for k, v := range g.Params {
		vals[k] = v
	}
	if err := checkInput(in, x); err != nil {
		return nil, err
	}
	vals[in.Name] = x
	ins := make([]*Tensor, 0, 4)
	for i := range steps {
		st := &steps[i]
		n := st.node
		if st.kind == inferFused {
			continue
		}
		ins = ins[:0]
		for _, name := range n.Inputs {
			if name == "" {
				ins = append(ins, nil)
				continue
			}
			ins = append(ins, vals[name])
		}
		var (
			out []*Tensor
			err error
		)
		switch st.kind {
		case inferConv:
			var y *Tensor
			y, err = n.Op.(Conv).infer(ins, &a.out[i], &a.col[i], &a.tmp[i], st.relu)
			out = []*Tensor{y}
		case inferGemm:
			var y *Tensor
			y, err = n.Op.(Gemm).infer(ins, &a.out[i], st.relu)
			out = []*Tensor{y}
		case inferView:
			var y *Tensor
			y, err = viewForward(n.Op, ins)
			out = []*Tensor{y}
		default:
			out, err = n.Op.Forward(ins)
		}
		if err != nil {
			return nil, fmt.Errorf("node %q (%s): %w", n.Name, n.Op.OpType(), err)
		}
		for j, name := range n.Outputs {
			if j < len(out) && name != "" {
				vals[name] = out[j]
			}
		}
		if st.relu {
			vals[st.alias] = out[0]
		}
	}
	y, ok := vals[outName]
	if !ok {
		return nil, fmt.Errorf("graph output %q is never produced", outName)
	}
	return y, nil
}

// viewForward is Flatten, Reshape or Identity without the copy: the output shares
// in[0]'s storage.
func viewForward(op Op, in []*Tensor) (*Tensor, error) {
	var shape []int
	var err error
	switch op := op.(type) {
	case Flatten:
		if err := checkArity("Flatten", in, 1, 1); err != nil {
			return nil, err
		}
		shape, err = op.OutShape(in[0].Shape)
	case Reshape:
		shape, err = op.outShape(in)
	case Identity:
		if err := checkArity("Identity", in, 1, 1); err != nil {
			return nil, err
		}
		shape = in[0].Shape
	default:
		return nil, fmt.Errorf("%s has no view form", op.OpType())
	}
	if err != nil {
		return nil, err
	}
	return FromData(in[0].Data, shape...), nil
}

// runPartsArena is runParts with one arena per worker goroutine: f runs each range
// with the arena of whichever worker picked it up. The ranges, and so the results,
// do not depend on the number of workers.
func runPartsArena(parts [][2]int, newArena func() *inferArena, f func(a *inferArena, part, lo, hi int) error) error {
	return runPartsWith(parts, newArena, f)
}
