package nets

import "fmt"

// Transpose permutes the dimensions (ONNX Transpose): output dimension i is input
// dimension Perm[i]. A nil Perm reverses the dimensions, the ONNX default.
type Transpose struct {
	Perm []int
}

func newTranspose(spec NodeSpec) (Op, error) {
	return Transpose{Perm: spec.Attrs.IntList("perm", nil)}, nil
}

func (Transpose) OpType() string { return "Transpose" }

func (op Transpose) Attrs() Attrs {
	a := NewAttrs()
	if op.Perm != nil {
		a.SetInts("perm", op.Perm)
	}
	return a
}

// perm returns the permutation for rank r, checked.
func (op Transpose) perm(r int) ([]int, error) {
	if op.Perm == nil {
		p := make([]int, r)
		for i := range p {
			p[i] = r - 1 - i
		}
		return p, nil
	}
	if len(op.Perm) != r {
		return nil, fmt.Errorf("Transpose: perm %v has %d entries for an input of rank %d", op.Perm, len(op.Perm), r)
	}
	seen := make([]bool, r)
	for _, d := range op.Perm {
		if d < 0 || d >= r || seen[d] {
			return nil, fmt.Errorf("Transpose: perm %v is not a permutation of 0..%d", op.Perm, r-1)
		}
		seen[d] = true
	}
	return op.Perm, nil
}

// transpose returns x with its dimensions permuted by perm.
func transpose(x *Tensor, perm []int) *Tensor {
	r := len(perm)
	shape := make([]int, r)
	for i, p := range perm {
		shape[i] = x.Shape[p]
	}
	y := NewTensor(shape...)
	if y.Len() == 0 {
		return y
	}
	if r == 0 {
		y.Data[0] = x.Data[0]
		return y
	}
	// src[i] is the input stride of output dimension i; walk the output in order.
	st := Strides(x.Shape)
	src := make([]int, r)
	for i, p := range perm {
		src[i] = st[p]
	}
	n, s := shape[r-1], src[r-1]
	idx := make([]int, r-1)
	off := 0
	for o := 0; o < y.Len(); o += n {
		row := y.Data[o : o+n]
		for j := range row {
			row[j] = x.Data[off+j*s]
		}
		k := r - 2
		for ; k >= 0; k-- {
			idx[k]++
			off += src[k]
			if idx[k] < shape[k] {
				break
			}
			off -= src[k] * shape[k]
			idx[k] = 0
		}
	}
	return y
}

func (op Transpose) Forward(in []*Tensor) ([]*Tensor, error) {
	if err := checkArity("Transpose", in, 1, 1); err != nil {
		return nil, err
	}
	p, err := op.perm(in[0].Rank())
	if err != nil {
		return nil, err
	}
	return []*Tensor{transpose(in[0], p)}, nil
}

// Backward applies the inverse permutation to the gradient.
func (op Transpose) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	if err := checkArity("Transpose", in, 1, 1); err != nil {
		return nil, err
	}
	if !need[0] {
		return []*Tensor{nil}, nil
	}
	x, g := in[0], gradOut[0]
	if g == nil {
		return zeroGrads(in, need), nil
	}
	p, err := op.perm(x.Rank())
	if err != nil {
		return nil, err
	}
	shape := make([]int, len(p))
	inv := make([]int, len(p))
	for i, d := range p {
		shape[i] = x.Shape[d]
		inv[d] = i
	}
	if err := checkGradOut("Transpose", g, shape); err != nil {
		return nil, err
	}
	return []*Tensor{transpose(g, inv)}, nil
}
