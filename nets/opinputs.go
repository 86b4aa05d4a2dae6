package nets

import (
	"fmt"
	"strconv"
	"strings"
)

// Helpers shared by the ops' argument checks: ops get their inputs from arbitrary
// ONNX files, so every count, rank and axis is checked and reported, never assumed.

// checkArity reports an error unless in has between min and max entries with the
// first min present (non-nil). max < 0 means no upper bound (variadic ops).
func checkArity(op string, in []*Tensor, min, max int) error {
	if len(in) < min || (max >= 0 && len(in) > max) {
		switch {
		case max < 0:
			return fmt.Errorf("%s: got %d inputs, want at least %d", op, len(in), min)
		case min == max:
			return fmt.Errorf("%s: got %d inputs, want %d", op, len(in), min)
		default:
			return fmt.Errorf("%s: got %d inputs, want %d to %d", op, len(in), min, max)
		}
	}
	for i := 0; i < min; i++ {
		if in[i] == nil {
			return fmt.Errorf("%s: required input %d is absent", op, i)
		}
	}
	return nil
}

// checkGradOut reports an error unless g has the shape the op's output has.
func checkGradOut(op string, g *Tensor, shape []int) error {
	if !SameShape(g.Shape, shape) || len(g.Data) != NumElements(shape) {
		return fmt.Errorf("%s: output gradient has shape %s, output has %s", op, fmtShape(g.Shape), fmtShape(shape))
	}
	return nil
}

// fmtShape writes a shape as [2,3], the way ONNX tools print it.
func fmtShape(s []int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(d))
	}
	b.WriteByte(']')
	return b.String()
}

// zeroGrads returns zero gradients, shaped like the inputs, for every needed input:
// the answer when no gradient reaches the op's outputs.
func zeroGrads(in []*Tensor, need []bool) []*Tensor {
	out := make([]*Tensor, len(in))
	for i, t := range in {
		if i < len(need) && need[i] && t != nil {
			out[i] = NewTensor(t.Shape...)
		}
	}
	return out
}

// resolveAxis maps a possibly negative axis attribute onto [0, hi] for a tensor of
// the given rank, where hi is rank-1 for ops that select a dimension and rank for
// ops that split the shape before a position (Flatten). ONNX counts negative axes
// from the back: axis -1 is the last dimension.
func resolveAxis(op string, axis, rank, hi int) (int, error) {
	a := axis
	if a < 0 {
		a += rank
	}
	if a < 0 || a > hi {
		return 0, fmt.Errorf("%s: axis %d out of range [%d,%d] for rank %d", op, axis, -rank, hi, rank)
	}
	return a, nil
}

// checkLegacyBroadcast rejects the attributes of opset < 7 elementwise ops, whose
// limited broadcasting (attributes broadcast and axis) differs from numpy's.
func checkLegacyBroadcast(op string, spec NodeSpec) error {
	for _, name := range []string{"broadcast", "axis"} {
		if _, ok := spec.Attrs.Ints[name]; ok {
			return unsupported("%s: attribute %q (opset < 7 broadcasting)", op, name)
		}
	}
	return nil
}

// sameStorage reports whether two non-empty slices start at the same element, so
// that an op can avoid returning its caller's buffer as its own result.
func sameStorage(a, b []float64) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0]
}
