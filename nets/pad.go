package nets

import (
	"fmt"
	"math"
)

// Pad is the ONNX Pad operator in constant mode (https://onnx.ai/onnx/operators/onnx__Pad.html):
// along every axis d, begin[d] copies of the constant are put before X and end[d]
// after it; a negative amount removes that many elements instead:
//
//	Y[i] = X[i − begin]  where 0 ≤ i − begin < X.Shape, else value.
//
// Before opset 11 the amounts and value are the attributes pads (paddings in opset 1)
// and value; from opset 11 they are the inputs pads (in[1], int64 [begin…, end…]),
// the optional constant_value (in[2]) and, from opset 18, the optional axes (in[3]).
// Pads along the batch axis are refused: every op keeps axis 0 the batch.
// The reflect, edge and wrap modes are not supported.
type Pad struct {
	// FromInputs: pads, constant_value and axes are inputs (opset ≥ 11); Pads and
	// Value are then unused.
	FromInputs bool
	Pads       []int // [x1_begin, x2_begin, …, x1_end, x2_end, …] over all axes
	Value      float64
}

func newPad(spec NodeSpec) (Op, error) {
	a := spec.Attrs
	if mode := a.String("mode", "constant"); mode != "constant" {
		return nil, unsupported("Pad mode %q: only constant", mode)
	}
	pads := a.IntList("pads", a.IntList("paddings", nil))
	if pads == nil {
		// Opset ≥ 11 form. The amounts may still be checked here when they are constants.
		if spec.NumInputs != 0 && (spec.NumInputs < 2 || spec.NumInputs > 4) {
			return nil, fmt.Errorf("%d inputs: want data, pads and optional constant_value, axes", spec.NumInputs)
		}
		p := Pad{FromInputs: true}
		if len(spec.Constants) > 1 && spec.Constants[1] != nil {
			if _, err := padInts(spec.Constants[1], "pads"); err != nil {
				return nil, err
			}
		}
		return p, nil
	}
	if spec.NumInputs > 1 {
		return nil, fmt.Errorf("pads given both as attribute and as input")
	}
	if len(pads)%2 != 0 {
		return nil, fmt.Errorf("pads %v: want an even count (begins then ends)", pads)
	}
	return Pad{Pads: pads, Value: a.Float("value", 0)}, nil
}

func (Pad) OpType() string { return "Pad" }

func (p Pad) Attrs() Attrs {
	a := NewAttrs()
	a.Strings["mode"] = "constant"
	if !p.FromInputs {
		a.SetInts("pads", p.Pads)
		a.SetFloat("value", p.Value)
	}
	return a
}

// padInts reads an integer-valued tensor of rank ≤ 1.
func padInts(t *Tensor, name string) ([]int, error) {
	if t.Rank() > 1 {
		return nil, fmt.Errorf("%s of shape %v: want a 1-D tensor", name, t.Shape)
	}
	out := make([]int, len(t.Data))
	for i, v := range t.Data {
		if v != math.Trunc(v) || math.Abs(v) > 1<<31 {
			return nil, fmt.Errorf("%s %v: want integers", name, t.Data)
		}
		out[i] = int(v)
	}
	return out, nil
}

// Amounts resolves, for the inputs of a call, the padding before and after X along
// every axis and the constant. Bound propagation calls it with the constant inputs.
func (p Pad) Amounts(in []*Tensor) (begin, end []int, value float64, err error) {
	if len(in) == 0 || in[0] == nil {
		return nil, nil, 0, fmt.Errorf("missing input data")
	}
	r := in[0].Rank()
	pads, axes := p.Pads, []int(nil)
	value = p.Value
	if p.FromInputs {
		if len(in) < 2 || len(in) > 4 || in[1] == nil {
			return nil, nil, 0, fmt.Errorf("%d inputs: want data, pads and optional constant_value, axes", len(in))
		}
		if pads, err = padInts(in[1], "pads"); err != nil {
			return nil, nil, 0, err
		}
		if len(in) > 2 && in[2] != nil {
			if in[2].Len() != 1 {
				return nil, nil, 0, fmt.Errorf("constant_value of shape %v: want one value", in[2].Shape)
			}
			value = in[2].Data[0]
		} else {
			value = 0
		}
		if len(in) > 3 && in[3] != nil {
			if axes, err = padInts(in[3], "axes"); err != nil {
				return nil, nil, 0, err
			}
		}
	} else if len(in) != 1 {
		return nil, nil, 0, fmt.Errorf("%d inputs: want 1 (pads is an attribute)", len(in))
	}
	if axes == nil {
		axes = make([]int, r)
		for i := range axes {
			axes[i] = i
		}
	}
	if len(pads) != 2*len(axes) {
		return nil, nil, 0, fmt.Errorf("pads %v: want %d values for %d axes of input %v", pads, 2*len(axes), len(axes), in[0].Shape)
	}
	begin, end = make([]int, r), make([]int, r)
	seen := make([]bool, r)
	for i, ax := range axes {
		if ax < -r || ax >= r {
			return nil, nil, 0, fmt.Errorf("axis %d out of range for input %v", ax, in[0].Shape)
		}
		if ax < 0 {
			ax += r
		}
		if seen[ax] {
			return nil, nil, 0, fmt.Errorf("axes %v repeat axis %d", axes, ax)
		}
		seen[ax] = true
		begin[ax], end[ax] = pads[i], pads[len(axes)+i]
		if n := in[0].Shape[ax] + begin[ax] + end[ax]; n < 0 {
			return nil, nil, 0, fmt.Errorf("pads %v crop axis %d of input %v below zero", pads, ax, in[0].Shape)
		}
	}
	out := make([]int, r)
	for d := range out {
		out[d] = in[0].Shape[d] + begin[d] + end[d]
	}
	if !elemsWithin(out...) {
		return nil, nil, 0, fmt.Errorf("pads %v make input %v too large", pads, in[0].Shape)
	}
	if r > 0 && (begin[0] != 0 || end[0] != 0) {
		return nil, nil, 0, unsupported("padding the batch axis 0 (pads %v)", pads)
	}
	return begin, end, value, nil
}

// padBlock describes the part of X that survives in Y: for each axis, the input
// range [lo, hi) lands at output index i + begin.
type padBlock struct {
	lo, hi, begin []int
	inShape       []int
	outShape      []int
}

func newPadBlock(shape, begin, end []int) (padBlock, bool) {
	r := len(shape)
	b := padBlock{lo: make([]int, r), hi: make([]int, r), begin: begin, inShape: shape, outShape: make([]int, r)}
	nonEmpty := true
	for d := range shape {
		b.outShape[d] = shape[d] + begin[d] + end[d]
		b.lo[d] = max(0, -begin[d])
		b.hi[d] = min(shape[d], shape[d]+end[d])
		if b.hi[d] <= b.lo[d] {
			nonEmpty = false
		}
	}
	return b, nonEmpty
}

// each calls f(inOffset, outOffset, n) for every contiguous run of n surviving
// elements along the last axis.
func (b padBlock) each(f func(inOff, outOff, n int)) {
	r := len(b.inShape)
	if r == 0 {
		f(0, 0, 1)
		return
	}
	inStr, outStr := Strides(b.inShape), Strides(b.outShape)
	idx := append([]int(nil), b.lo[:r-1]...)
	run := b.hi[r-1] - b.lo[r-1]
	for {
		inOff := b.lo[r-1] * inStr[r-1]
		outOff := (b.lo[r-1] + b.begin[r-1]) * outStr[r-1]
		for d, i := range idx {
			inOff += i * inStr[d]
			outOff += (i + b.begin[d]) * outStr[d]
		}
		f(inOff, outOff, run)
		d := r - 2
		for ; d >= 0; d-- {
			idx[d]++
			if idx[d] < b.hi[d] {
				break
			}
			idx[d] = b.lo[d]
		}
		if d < 0 {
			return
		}
	}
}

func (p Pad) Forward(in []*Tensor) ([]*Tensor, error) {
	begin, end, value, err := p.Amounts(in)
	if err != nil {
		return nil, err
	}
	x := in[0]
	blk, nonEmpty := newPadBlock(x.Shape, begin, end)
	y := NewTensor(blk.outShape...)
	if value != 0 {
		for i := range y.Data {
			y.Data[i] = value
		}
	}
	if nonEmpty {
		blk.each(func(i, o, n int) { copy(y.Data[o:o+n], x.Data[i:i+n]) })
	}
	return []*Tensor{y}, nil
}

// Backward: X's gradient is the output gradient cropped back to X's place (zero
// where X was cropped away); constant_value's is the sum of the output gradient
// over the padding. pads and axes are integers and get none (nil).
func (p Pad) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	begin, end, _, err := p.Amounts(in)
	if err != nil {
		return nil, err
	}
	x := in[0]
	blk, nonEmpty := newPadBlock(x.Shape, begin, end)
	var gy *Tensor
	if len(gradOut) > 0 {
		gy = gradOut[0]
	}
	if gy == nil || !SameShape(gy.Shape, blk.outShape) {
		return nil, fmt.Errorf("output gradient of shape %v: want %v", shapeOf(gy), blk.outShape)
	}
	grads := make([]*Tensor, len(in))
	needX := len(need) > 0 && need[0]
	needV := p.FromInputs && len(in) > 2 && in[2] != nil && len(need) > 2 && need[2]
	var dx *Tensor
	if needX {
		dx = NewTensor(x.Shape...)
		grads[0] = dx
	}
	inside := 0.0
	if nonEmpty && (needX || needV) {
		blk.each(func(i, o, n int) {
			src := gy.Data[o : o+n]
			if needX {
				copy(dx.Data[i:i+n], src)
			}
			if needV {
				for _, g := range src {
					inside += g
				}
			}
		})
	}
	if needV {
		total := 0.0
		for _, g := range gy.Data {
			total += g
		}
		dv := NewTensor(in[2].Shape...)
		dv.Data[0] = total - inside
		grads[2] = dv
	}
	return grads, nil
}
