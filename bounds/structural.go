package bounds

import (
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// newStructural relaxes the ops that only move data: Flatten, Reshape, Transpose,
// Concat, Pad (constant mode), Identity and Dropout (inference). Each output
// element is a copy of one input element or a constant, so the op is an
// affineLayer with s = 1 and exact in both rules: IBP applies the movement to the
// lower and the upper ends, CROWN moves the coefficients back (summing where an
// element was copied several times).
//
// The map is found by running the op itself, twice: on the bounded inputs replaced
// by their element indices (each input with its own offset), and on the same plus
// one. An output element that changed by exactly one is a copy of the element
// whose index it holds; one that did not change is a constant (Pad's value, a
// constant input of Concat). So every op keeps its own semantics (axes, perms,
// pads, allowzero …) in one place, nets.
func newStructural(b base, op nets.Op) (layer, error) {
	if _, concat := op.(nets.Concat); !concat {
		for i, o := range b.in[1:] {
			if o.bounded() {
				return nil, fmt.Errorf("%w: %s with input %d (%q) depending on the data input: only the data may", ErrUnsupported, op.OpType(), i+1, o.name)
			}
		}
	}
	ins1, ins2 := make([]*nets.Tensor, len(b.in)), make([]*nets.Tensor, len(b.in))
	offs, sizes := make([]float64, len(b.in)), make([]int, len(b.in))
	off := 0.0
	for k, o := range b.in {
		switch {
		case o.bounded():
			ins1[k], ins2[k] = indexTensor(o.box.Lo.Shape, off), indexTensor(o.box.Lo.Shape, off+1)
			offs[k], sizes[k] = off, len(o.box.Lo.Data)
			off += float64(sizes[k])
		case o.c != nil:
			ins1[k], ins2[k] = o.c, o.c
		}
	}
	y1, err := forward1(op, ins1...)
	if err != nil {
		return nil, err
	}
	y2, err := forward1(op, ins2...)
	if err != nil {
		return nil, err
	}
	n := b.e.n
	if len(y1.Data)%n != 0 || !nets.SameShape(y1.Shape, y2.Shape) {
		return nil, fmt.Errorf("%w: output of shape %v does not split into %d samples", ErrUnsupported, y1.Shape, n)
	}
	l := &affineLayer{base: b, outShape: y1.Shape, so: len(y1.Data) / n, terms: make([]affineTerm, len(b.in)), movement: true}
	gsrc := make([][]float64, len(b.in))
	for k, o := range b.in {
		if o.bounded() {
			gsrc[k] = make([]float64, len(y1.Data))
			for g := range gsrc[k] {
				gsrc[k][g] = -1
			}
		}
	}
	var t []float64
	for g, v := range y1.Data {
		switch w := y2.Data[g]; {
		case w == v+1:
			k := -1
			for kk := range b.in {
				if gsrc[kk] != nil && v >= offs[kk] && v < offs[kk]+float64(sizes[kk]) {
					k = kk
				}
			}
			if k < 0 || v != float64(int(v)) {
				return nil, fmt.Errorf("internal: %s moved index %v out of range", op.OpType(), v)
			}
			gsrc[k][g] = v - offs[k]
		case w == v:
			if v != 0 {
				if t == nil {
					t = make([]float64, len(y1.Data))
				}
				t[g] = v
			}
		default:
			return nil, fmt.Errorf("%w: %s is not a pure data movement here (element %d: %v then %v)", ErrUnsupported, op.OpType(), g, v, w)
		}
	}
	l.t = t
	for k, o := range b.in {
		if gsrc[k] == nil {
			continue
		}
		tm := affineTerm{name: o.name, si: sizes[k] / n}
		src, fan, id, err := b.e.localize(gsrc[k], tm.si, l.so)
		if err != nil {
			return nil, err
		}
		if !id {
			tm.src = src
		}
		tm.fanout = fan
		l.terms[k] = tm
	}
	return l, nil
}
