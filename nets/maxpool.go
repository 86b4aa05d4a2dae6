package nets

import (
	"fmt"
	"math"
)

// MaxPool is the ONNX MaxPool operator for 2-D images
// (https://onnx.ai/onnx/operators/onnx__MaxPool.html): for X (N,C,H,W),
//
//	Y[n,c,oh,ow] = max_{i,j} X[n, c, oh·sH − pT + i·dH, ow·sW − pL + j·dW]
//
// over the taps inside the input (padding never wins, as if it were −∞). The optional
// second output Indices holds the flat index into X (row-major over N,C,H,W:
// storage_order 0) of each maximum; it is produced when the node names it.
// A window that sees only padding is an error rather than −∞.
type MaxPool struct {
	KernelShape []int // [kH, kW]
	Strides     []int // [sH, sW]
	Pads        []int // [top, left, bottom, right]; ignored unless AutoPad is NOTSET
	Dilations   []int // [dH, dW]
	AutoPad     string
	CeilMode    bool
	// Indices: the node asks for the second output.
	Indices bool
}

func newMaxPool(spec NodeSpec) (Op, error) {
	s, err := readWindowSpec(spec.Attrs)
	if err != nil {
		return nil, err
	}
	if s.kernel == nil {
		return nil, fmt.Errorf("kernel_shape is required")
	}
	if so := spec.Attrs.Int("storage_order", 0); so != 0 {
		return nil, unsupported("storage_order %d (column-major Indices); only 0", so)
	}
	if spec.NumOutputs > 2 {
		return nil, fmt.Errorf("%d outputs: want Y and optional Indices", spec.NumOutputs)
	}
	ceil, err := readBool(spec.Attrs, "ceil_mode")
	if err != nil {
		return nil, err
	}
	return MaxPool{KernelShape: s.kernel, Strides: s.strides, Pads: s.pads, Dilations: s.dilations,
		AutoPad: s.autoPad, CeilMode: ceil, Indices: spec.NumOutputs == 2}, nil
}

// readBool reads a 0/1 INT attribute (default 0).
func readBool(a Attrs, name string) (bool, error) {
	switch v := a.Int(name, 0); v {
	case 0:
		return false, nil
	case 1:
		return true, nil
	default:
		return false, fmt.Errorf("%s %d: want 0 or 1", name, v)
	}
}

func (MaxPool) OpType() string { return "MaxPool" }

func (p MaxPool) Attrs() Attrs {
	a := NewAttrs()
	writeWindowSpec(a, p.KernelShape, p.Strides, p.Pads, p.Dilations, p.AutoPad, false)
	if p.CeilMode {
		a.SetInt("ceil_mode", 1)
	}
	return a
}

// Window checks that x is (N,C,H,W) and returns the window geometry.
func (p MaxPool) Window(x *Tensor) (Window2D, error) {
	return poolWindow(x, windowSpec{kernel: p.KernelShape, strides: p.Strides, pads: p.Pads, dilations: p.Dilations, autoPad: p.AutoPad}, p.CeilMode)
}

// poolRanges returns the in-input kernel rows per output row and columns per output
// column, and an error if some window lies wholly in the padding when empty is not
// allowed.
func poolRanges(w Window2D, allowEmpty bool) (rows, cols [][2]int, err error) {
	rows, cols = w.rowRanges(), w.colRanges()
	if allowEmpty {
		return rows, cols, nil
	}
	for o, r := range rows {
		if r[0] >= r[1] {
			return nil, nil, fmt.Errorf("output row %d: window covers only padding", o)
		}
	}
	for o, r := range cols {
		if r[0] >= r[1] {
			return nil, nil, fmt.Errorf("output column %d: window covers only padding", o)
		}
	}
	return rows, cols, nil
}

// argmax fills y with each window's maximum and idx with its flat index in X (first
// one on ties); either may be nil.
func (p MaxPool) argmax(x *Tensor, w Window2D, y, idx []float64) error {
	rows, cols, err := poolRanges(w, false)
	if err != nil {
		return fmt.Errorf("input %v: %w", x.Shape, err)
	}
	planes := x.Shape[0] * x.Shape[1]
	hw := w.InH * w.InW
	o := 0
	for pl := 0; pl < planes; pl++ {
		xp := x.Data[pl*hw : (pl+1)*hw]
		for oh, r := range rows {
			h0 := oh*w.StrideH - w.PadTop
			for ow, cr := range cols {
				w0 := ow*w.StrideW - w.PadLeft
				best, at := math.Inf(-1), -1
				for i := r[0]; i < r[1]; i++ {
					line := (h0 + i*w.DilH) * w.InW
					for j := cr[0]; j < cr[1]; j++ {
						q := line + w0 + j*w.DilW
						if v := xp[q]; v > best || at < 0 {
							best, at = v, q
						}
					}
				}
				if y != nil {
					y[o] = best
				}
				if idx != nil {
					idx[o] = float64(pl*hw + at)
				}
				o++
			}
		}
	}
	return nil
}

func (p MaxPool) Forward(in []*Tensor) ([]*Tensor, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("%d inputs: want 1", len(in))
	}
	x := in[0]
	w, err := p.Window(x)
	if err != nil {
		return nil, err
	}
	y := NewTensor(x.Shape[0], x.Shape[1], w.OutH, w.OutW)
	if !p.Indices {
		if err := p.argmax(x, w, y.Data, nil); err != nil {
			return nil, err
		}
		return []*Tensor{y}, nil
	}
	idx := NewTensor(y.Shape...)
	if err := p.argmax(x, w, y.Data, idx.Data); err != nil {
		return nil, err
	}
	return []*Tensor{y, idx}, nil
}

// Backward routes each output gradient to the input element that was the maximum
// (the subgradient PyTorch and ONNX Runtime take; ties go to the first tap).
func (p MaxPool) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("%d inputs: want 1", len(in))
	}
	if len(need) == 0 || !need[0] {
		return []*Tensor{nil}, nil
	}
	x := in[0]
	w, err := p.Window(x)
	if err != nil {
		return nil, err
	}
	oshape := []int{x.Shape[0], x.Shape[1], w.OutH, w.OutW}
	dx := NewTensor(x.Shape...)
	if len(gradOut) == 0 || gradOut[0] == nil {
		return []*Tensor{dx}, nil // only Indices reached the loss: it is piecewise constant
	}
	gy := gradOut[0]
	if !SameShape(gy.Shape, oshape) {
		return nil, fmt.Errorf("output gradient of shape %v: want %v", gy.Shape, oshape)
	}
	var idx []float64
	if len(out) > 1 && out[1] != nil && SameShape(out[1].Shape, oshape) {
		idx = out[1].Data
	} else {
		idx = make([]float64, NumElements(oshape))
		if err := p.argmax(x, w, nil, idx); err != nil {
			return nil, err
		}
	}
	for o, g := range gy.Data {
		q := int(idx[o])
		if q < 0 || q >= len(dx.Data) {
			return nil, fmt.Errorf("Indices output %v at %d is outside the input", idx[o], o)
		}
		dx.Data[q] += g
	}
	return []*Tensor{dx}, nil
}
