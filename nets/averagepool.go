package nets

import "fmt"

// AveragePool is the ONNX AveragePool operator for 2-D images
// (https://onnx.ai/onnx/operators/onnx__AveragePool.html): for X (N,C,H,W),
//
//	Y[n,c,oh,ow] = (1/D[oh,ow]) · Σ_{i,j} X[n, c, oh·sH − pT + i·dH, ow·sW − pL + j·dW]
//
// summing the taps inside the input. The divisor D counts the taps inside the input
// (count_include_pad = 0) or inside the padded input [−pT, H+pB)×[−pL, W+pR)
// (count_include_pad = 1); taps of a ceil_mode window that reach past the end padding
// are never counted. This is PyTorch's and ONNX Runtime's rule.
//
// Y is linear in X, so Backward spreads each output gradient evenly, divided by D,
// over its window's taps.
type AveragePool struct {
	KernelShape     []int // [kH, kW]
	Strides         []int // [sH, sW]
	Pads            []int // [top, left, bottom, right]; ignored unless AutoPad is NOTSET
	Dilations       []int // [dH, dW] (opset 19)
	AutoPad         string
	CeilMode        bool
	CountIncludePad bool
}

func newAveragePool(spec NodeSpec) (Op, error) {
	s, err := readWindowSpec(spec.Attrs)
	if err != nil {
		return nil, err
	}
	if s.kernel == nil {
		return nil, fmt.Errorf("kernel_shape is required")
	}
	ceil, err := readBool(spec.Attrs, "ceil_mode")
	if err != nil {
		return nil, err
	}
	incl, err := readBool(spec.Attrs, "count_include_pad")
	if err != nil {
		return nil, err
	}
	return AveragePool{KernelShape: s.kernel, Strides: s.strides, Pads: s.pads, Dilations: s.dilations,
		AutoPad: s.autoPad, CeilMode: ceil, CountIncludePad: incl}, nil
}

func (AveragePool) OpType() string { return "AveragePool" }

func (p AveragePool) Attrs() Attrs {
	a := NewAttrs()
	writeWindowSpec(a, p.KernelShape, p.Strides, p.Pads, p.Dilations, p.AutoPad, false)
	if p.CeilMode {
		a.SetInt("ceil_mode", 1)
	}
	if p.CountIncludePad {
		a.SetInt("count_include_pad", 1)
	}
	return a
}

// Window checks that x is (N,C,H,W) and returns the window geometry.
func (p AveragePool) Window(x *Tensor) (Window2D, error) {
	return poolWindow(x, windowSpec{kernel: p.KernelShape, strides: p.Strides, pads: p.Pads, dilations: p.Dilations, autoPad: p.AutoPad}, p.CeilMode)
}

// plan returns the in-input tap ranges per output row and column and the reciprocal
// divisor of every output pixel (OutH × OutW).
func (p AveragePool) plan(w Window2D) (rows, cols [][2]int, inv []float64, err error) {
	rows, cols, err = poolRanges(w, p.CountIncludePad)
	if err != nil {
		return nil, nil, nil, err
	}
	// The divisor factorises into a row count and a column count.
	dh := make([]int, w.OutH)
	for o, r := range rows {
		dh[o] = r[1] - r[0]
		if p.CountIncludePad {
			lo, hi := tapRange(o*w.StrideH, w.KH, w.DilH, w.InH+w.PadTop+w.PadBottom)
			dh[o] = hi - lo
		}
	}
	dw := make([]int, w.OutW)
	for o, r := range cols {
		dw[o] = r[1] - r[0]
		if p.CountIncludePad {
			lo, hi := tapRange(o*w.StrideW, w.KW, w.DilW, w.InW+w.PadLeft+w.PadRight)
			dw[o] = hi - lo
		}
	}
	inv = make([]float64, w.OutH*w.OutW)
	for oh := range dh {
		for ow := range dw {
			inv[oh*w.OutW+ow] = 1 / float64(dh[oh]*dw[ow])
		}
	}
	return rows, cols, inv, nil
}

func (p AveragePool) Forward(in []*Tensor) ([]*Tensor, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("%d inputs: want 1", len(in))
	}
	x := in[0]
	w, err := p.Window(x)
	if err != nil {
		return nil, err
	}
	rows, cols, inv, err := p.plan(w)
	if err != nil {
		return nil, fmt.Errorf("input %v: %w", x.Shape, err)
	}
	y := NewTensor(x.Shape[0], x.Shape[1], w.OutH, w.OutW)
	hw, ohw := w.InH*w.InW, w.OutH*w.OutW
	for pl := 0; pl < x.Shape[0]*x.Shape[1]; pl++ {
		xp := x.Data[pl*hw : (pl+1)*hw]
		yp := y.Data[pl*ohw : (pl+1)*ohw]
		for oh, r := range rows {
			h0 := oh*w.StrideH - w.PadTop
			for ow, cr := range cols {
				w0 := ow*w.StrideW - w.PadLeft
				sum := 0.0
				for i := r[0]; i < r[1]; i++ {
					line := (h0+i*w.DilH)*w.InW + w0
					for j := cr[0]; j < cr[1]; j++ {
						sum += xp[line+j*w.DilW]
					}
				}
				yp[oh*w.OutW+ow] = sum * inv[oh*w.OutW+ow]
			}
		}
	}
	return []*Tensor{y}, nil
}

func (p AveragePool) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
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
	var gy *Tensor
	if len(gradOut) > 0 {
		gy = gradOut[0]
	}
	if gy == nil || !SameShape(gy.Shape, oshape) {
		return nil, fmt.Errorf("output gradient of shape %v: want %v", shapeOf(gy), oshape)
	}
	rows, cols, inv, err := p.plan(w)
	if err != nil {
		return nil, fmt.Errorf("input %v: %w", x.Shape, err)
	}
	dx := NewTensor(x.Shape...)
	hw, ohw := w.InH*w.InW, w.OutH*w.OutW
	for pl := 0; pl < x.Shape[0]*x.Shape[1]; pl++ {
		dp := dx.Data[pl*hw : (pl+1)*hw]
		gp := gy.Data[pl*ohw : (pl+1)*ohw]
		for oh, r := range rows {
			h0 := oh*w.StrideH - w.PadTop
			for ow, cr := range cols {
				w0 := ow*w.StrideW - w.PadLeft
				g := gp[oh*w.OutW+ow] * inv[oh*w.OutW+ow]
				for i := r[0]; i < r[1]; i++ {
					line := (h0+i*w.DilH)*w.InW + w0
					for j := cr[0]; j < cr[1]; j++ {
						dp[line+j*w.DilW] += g
					}
				}
			}
		}
	}
	return []*Tensor{dx}, nil
}
