package nets

import "fmt"

// Multidirectional (numpy-style) broadcasting, as defined in ONNX's Broadcasting.md:
// the shapes are aligned at their last dimension, the shorter one is padded with
// leading 1s, and each pair of dimensions must be equal or contain a 1, which is
// stretched to the other. Add, Sub, Mul, Div, MatMul (batch dimensions) and Gemm's C
// use it; the gradient of a stretched operand is the sum over the stretched axes.

// broadcastShape returns the multidirectional broadcast of shapes a and b.
func broadcastShape(a, b []int) ([]int, error) {
	r := max(len(a), len(b))
	out := make([]int, r)
	for i := 0; i < r; i++ {
		da, db := dimFromBack(a, r-1-i), dimFromBack(b, r-1-i)
		switch {
		case da == db:
			out[i] = da
		case da == 1:
			out[i] = db
		case db == 1:
			out[i] = da
		default:
			return nil, fmt.Errorf("shapes %s and %s do not broadcast: dimension %d is %d vs %d",
				fmtShape(a), fmtShape(b), i, da, db)
		}
	}
	return out, nil
}

// dimFromBack returns s[len(s)-1-k], or 1 past the front (the implicit padding).
func dimFromBack(s []int, k int) int {
	if k >= len(s) {
		return 1
	}
	return s[len(s)-1-k]
}

// bcastPlan walks an output of shape Out, broadcast from operands a and b, row by
// row. Dimensions of size 1 are dropped and neighbours that both operands traverse
// the same way are merged, so the common cases collapse to a handful of long rows:
// equal shapes to one row, a bias [N] on [M,N] to M rows of N, a per-channel [C,1,1]
// on [B,C,H,W] to B·C rows with a scalar b.
type bcastPlan struct {
	Out    []int // broadcast shape
	dims   []int // merged dimensions, innermost last
	sa, sb []int // element strides of a and b per merged dimension (0 = stretched)
}

// planBroadcast checks that a and b broadcast and plans the walk.
func planBroadcast(a, b []int) (*bcastPlan, error) {
	out, err := broadcastShape(a, b)
	if err != nil {
		return nil, err
	}
	r := len(out)
	p := &bcastPlan{Out: out, dims: make([]int, 0, r), sa: make([]int, 0, r), sb: make([]int, 0, r)}
	strideA, strideB := 1, 1
	// Walk from the innermost dimension out, then reverse.
	for k := 0; k < r; k++ {
		d := out[r-1-k]
		da, db := dimFromBack(a, k), dimFromBack(b, k)
		if d == 1 {
			continue
		}
		sa, sb := 0, 0
		if da == d {
			sa = strideA
		}
		if db == d {
			sb = strideB
		}
		strideA *= da
		strideB *= db
		if n := len(p.dims); n > 0 {
			// Merge with the inner neighbour when stepping this dimension moves each
			// operand exactly as far as running through the inner one does.
			inner := p.dims[n-1]
			if sa == p.sa[n-1]*inner && sb == p.sb[n-1]*inner {
				p.dims[n-1] *= d
				continue
			}
		}
		p.dims = append(p.dims, d)
		p.sa = append(p.sa, sa)
		p.sb = append(p.sb, sb)
	}
	if len(p.dims) == 0 { // everything is size 1: one element
		p.dims, p.sa, p.sb = append(p.dims, 1), append(p.sa, 0), append(p.sb, 0)
	}
	reverseInts(p.dims)
	reverseInts(p.sa)
	reverseInts(p.sb)
	return p, nil
}

func reverseInts(s []int) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

// inner returns the row length and the strides (0 or 1) of a and b along a row.
func (p *bcastPlan) inner() (n, sa, sb int) {
	k := len(p.dims) - 1
	return p.dims[k], p.sa[k], p.sb[k]
}

// rows calls f for each row of the output in order, with the offsets of the row's
// first element in the output, in a and in b. Nothing is called for an empty output.
func (p *bcastPlan) rows(f func(o, ia, ib int)) {
	for _, d := range p.dims {
		if d == 0 {
			return
		}
	}
	outer := len(p.dims) - 1
	n := p.dims[outer]
	idx := make([]int, outer)
	ia, ib := 0, 0
	for o := 0; ; o += n {
		f(o, ia, ib)
		// Odometer over the outer dimensions.
		k := outer - 1
		for ; k >= 0; k-- {
			idx[k]++
			ia += p.sa[k]
			ib += p.sb[k]
			if idx[k] < p.dims[k] {
				break
			}
			ia -= p.sa[k] * p.dims[k]
			ib -= p.sb[k] * p.dims[k]
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}

// binaryKind selects the arithmetic of an elementwise binary op.
type binaryKind int

const (
	kindAdd binaryKind = iota
	kindSub
	kindMul
	kindDiv
)

// binaryForward computes dst = a ∘ b elementwise over the planned broadcast. The
// inner loops are written out per operation and stride pattern so that each is a
// plain loop the compiler can keep tight: this is the hot path of every bias add.
func binaryForward(kind binaryKind, p *bcastPlan, a, b []float64) *Tensor {
	y := NewTensor(p.Out...)
	n, sa, sb := p.inner()
	dst := y.Data
	p.rows(func(o, ia, ib int) {
		d := dst[o : o+n]
		switch {
		case sa == 1 && sb == 1:
			binaryVV(kind, d, a[ia:ia+n], b[ib:ib+n])
		case sa == 1:
			binaryVS(kind, d, a[ia:ia+n], b[ib])
		case sb == 1:
			binarySV(kind, d, a[ia], b[ib:ib+n])
		default:
			v := binaryScalar(kind, a[ia], b[ib])
			for i := range d {
				d[i] = v
			}
		}
	})
	return y
}

func binaryScalar(kind binaryKind, x, y float64) float64 {
	switch kind {
	case kindAdd:
		return x + y
	case kindSub:
		return x - y
	case kindMul:
		return x * y
	default:
		return x / y
	}
}

func binaryVV(kind binaryKind, d, a, b []float64) {
	a, b = a[:len(d)], b[:len(d)]
	switch kind {
	case kindAdd:
		for i := range d {
			d[i] = a[i] + b[i]
		}
	case kindSub:
		for i := range d {
			d[i] = a[i] - b[i]
		}
	case kindMul:
		for i := range d {
			d[i] = a[i] * b[i]
		}
	default:
		for i := range d {
			d[i] = a[i] / b[i]
		}
	}
}

func binaryVS(kind binaryKind, d, a []float64, s float64) {
	a = a[:len(d)]
	switch kind {
	case kindAdd:
		for i := range d {
			d[i] = a[i] + s
		}
	case kindSub:
		for i := range d {
			d[i] = a[i] - s
		}
	case kindMul:
		for i := range d {
			d[i] = a[i] * s
		}
	default:
		for i := range d {
			d[i] = a[i] / s
		}
	}
}

func binarySV(kind binaryKind, d []float64, s float64, b []float64) {
	b = b[:len(d)]
	switch kind {
	case kindAdd:
		for i := range d {
			d[i] = s + b[i]
		}
	case kindSub:
		for i := range d {
			d[i] = s - b[i]
		}
	case kindMul:
		for i := range d {
			d[i] = s * b[i]
		}
	default:
		for i := range d {
			d[i] = s / b[i]
		}
	}
}

// binaryOperands checks the two inputs of an elementwise binary op and plans their
// broadcast.
func binaryOperands(op string, in []*Tensor) (*bcastPlan, error) {
	if err := checkArity(op, in, 2, 2); err != nil {
		return nil, err
	}
	p, err := planBroadcast(in[0].Shape, in[1].Shape)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return p, nil
}

// binaryOp is the forward of Add, Sub, Mul and Div.
func binaryOp(op string, kind binaryKind, in []*Tensor) ([]*Tensor, error) {
	p, err := binaryOperands(op, in)
	if err != nil {
		return nil, err
	}
	return []*Tensor{binaryForward(kind, p, in[0].Data, in[1].Data)}, nil
}

// binaryBackward returns the gradients of y = a ∘ b. full(p, which, g) must return
// ∂L/∂operand at output resolution (for a stretched operand, one term per output
// element; g itself is allowed); it is then summed over the stretched axes.
func binaryBackward(op string, in, gradOut []*Tensor, need []bool, full func(p *bcastPlan, which int, g []float64) []float64) ([]*Tensor, error) {
	p, err := binaryOperands(op, in)
	if err != nil {
		return nil, err
	}
	g := gradOut[0]
	if g == nil {
		return zeroGrads(in, need), nil
	}
	if err := checkGradOut(op, g, p.Out); err != nil {
		return nil, err
	}
	grads := make([]*Tensor, 2)
	for i := 0; i < 2; i++ {
		if i < len(need) && need[i] {
			gi := p.sumTo(i, in[i].Shape, full(p, i, g.Data))
			if sameStorage(gi.Data, g.Data) {
				gi = gi.Clone() // never hand out the caller's gradient buffer
			}
			grads[i] = gi
		}
	}
	return grads, nil
}

// sumTo reduces v, a value at output resolution, to the shape of operand which
// (0 = a, 1 = b) by summing over the axes along which that operand was stretched.
// v is returned (reshaped) when the operand was not stretched at all.
func (p *bcastPlan) sumTo(which int, shape []int, v []float64) *Tensor {
	if NumElements(shape) == len(v) {
		return FromData(v, shape...)
	}
	dst := NewTensor(shape...)
	n, sa, sb := p.inner()
	s := sa
	if which == 1 {
		s = sb
	}
	p.rows(func(o, ia, ib int) {
		off := ia
		if which == 1 {
			off = ib
		}
		row := v[o : o+n]
		if s == 1 {
			d := dst.Data[off : off+n]
			for i, x := range row {
				d[i] += x
			}
			return
		}
		t := 0.0
		for _, x := range row {
			t += x
		}
		dst.Data[off] += t
	})
	return dst
}

// withOperand returns g ∘ v at output resolution, where v is the data of operand
// which (0 = a, 1 = b) stretched by the plan and ∘ is kindMul or kindDiv: the terms
// of the product and quotient rules.
func (p *bcastPlan) withOperand(kind binaryKind, which int, g, v []float64) []float64 {
	t := make([]float64, len(g))
	n, sa, sb := p.inner()
	s := sa
	if which == 1 {
		s = sb
	}
	p.rows(func(o, ia, ib int) {
		off := ia
		if which == 1 {
			off = ib
		}
		if s == 1 {
			binaryVV(kind, t[o:o+n], g[o:o+n], v[off:off+n])
		} else {
			binaryVS(kind, t[o:o+n], g[o:o+n], v[off])
		}
	})
	return t
}
