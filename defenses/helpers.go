package defenses

import (
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// Unexported helpers shared by several defenses: batch rows, graph names and a
// parallel loop.

// graphIO returns the names of a classifier graph's one data input and one output.
func graphIO(g *nets.Graph) (in, out string, err error) {
	var data []string
	for _, vi := range g.Inputs {
		if _, isParam := g.Params[vi.Name]; !isParam {
			data = append(data, vi.Name)
		}
	}
	if len(data) != 1 || len(g.Outputs) != 1 {
		return "", "", fmt.Errorf("graph %q has %d data inputs and %d outputs; want one of each", g.Name, len(data), len(g.Outputs))
	}
	return data[0], g.Outputs[0].Name, nil
}

// rowsOf returns rows [lo,hi) of a batch, sharing its data.
func rowsOf(t *nets.Tensor, lo, hi int) *nets.Tensor {
	per := t.Len() / t.Shape[0]
	return nets.FromData(t.Data[lo*per:hi*per], append([]int{hi - lo}, t.Shape[1:]...)...)
}

// gatherRows copies the rows idx of x into a new batch.
func gatherRows(x *nets.Tensor, idx []int) *nets.Tensor {
	per := x.Len() / x.Shape[0]
	out := nets.NewTensor(append([]int{len(idx)}, x.Shape[1:]...)...)
	for i, j := range idx {
		copy(out.Data[i*per:(i+1)*per], x.Data[j*per:(j+1)*per])
	}
	return out
}

// forEach runs f(0), …, f(n−1) on all cores (nets.ParallelRows); each f(i) must
// write only its own results, so they do not depend on the number of cores.
func forEach(n int, f func(i int)) {
	_ = nets.ParallelRows(n, 1, func(_, lo, hi int) error {
		for i := lo; i < hi; i++ {
			f(i)
		}
		return nil
	})
}
