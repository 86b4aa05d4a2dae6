package nets

import "fmt"

// Conv is the ONNX Conv operator for 2-D images (https://onnx.ai/onnx/operators/onnx__Conv.html):
// for input X (N,C,H,W), weights W (M, C/group, kH, kW) and optional bias B (M),
//
//	Y[n,m,oh,ow] = B[m] + Σ_{c,i,j} W[m,c,i,j] · X[n, g·C/group + c, oh·sH − pT + i·dH, ow·sW − pL + j·dW]
//
// with g = m / (M/group) the group of output channel m, and zero outside the input.
// Weights and bias are inputs (in[1], in[2]), not fields, so that training and bound
// propagation treat them like any other value.
//
// The computation is im2col followed by one matrix product per group (Chellapilla,
// Puri, Simard, "High Performance Convolutional Neural Networks for Document
// Processing", 2006): the receptive fields become the columns of a matrix, so the
// work runs in gemm.
type Conv struct {
	KernelShape []int // [kH, kW]; nil takes it from the weights
	Strides     []int // [sH, sW]
	Pads        []int // [top, left, bottom, right]; ignored unless AutoPad is NOTSET
	Dilations   []int // [dH, dW]
	Group       int
	AutoPad     string // NOTSET, VALID, SAME_UPPER or SAME_LOWER
}

func newConv(spec NodeSpec) (Op, error) {
	s, err := readWindowSpec(spec.Attrs)
	if err != nil {
		return nil, err
	}
	g := spec.Attrs.Int("group", 1)
	if g < 1 {
		return nil, fmt.Errorf("group %d: must be positive", g)
	}
	if spec.NumInputs != 0 && (spec.NumInputs < 2 || spec.NumInputs > 3) {
		return nil, fmt.Errorf("%d inputs: want X, W and optional B", spec.NumInputs)
	}
	return Conv{KernelShape: s.kernel, Strides: s.strides, Pads: s.pads, Dilations: s.dilations,
		Group: g, AutoPad: s.autoPad}, nil
}

func (Conv) OpType() string { return "Conv" }

func (c Conv) Attrs() Attrs {
	a := NewAttrs()
	writeWindowSpec(a, c.KernelShape, c.Strides, c.Pads, c.Dilations, c.AutoPad, true)
	a.SetInt("group", c.Group)
	return a
}

func (c Conv) spec() windowSpec {
	return windowSpec{kernel: c.KernelShape, strides: c.Strides, pads: c.Pads, dilations: c.Dilations, autoPad: c.AutoPad}
}

// Window checks the shapes of X (N,C,H,W), W (M,C/group,kH,kW) and B (M, or nil) and
// returns the window geometry.
func (c Conv) Window(x, w, b *Tensor) (Window2D, error) {
	if err := checkSpatial(x); err != nil {
		return Window2D{}, err
	}
	if w == nil || w.Rank() != 4 {
		return Window2D{}, fmt.Errorf("weights must be (M, C/group, kH, kW); got %v", shapeOf(w))
	}
	ch, m := x.Shape[1], w.Shape[0]
	if c.Group < 1 || m%c.Group != 0 || w.Shape[1]*c.Group != ch {
		return Window2D{}, fmt.Errorf("input %v and weights %v do not fit group %d: want weights (M, C/group, kH, kW) with M divisible by group", x.Shape, w.Shape, c.Group)
	}
	if c.KernelShape != nil && (c.KernelShape[0] != w.Shape[2] || c.KernelShape[1] != w.Shape[3]) {
		return Window2D{}, fmt.Errorf("kernel_shape %v disagrees with weights %v", c.KernelShape, w.Shape)
	}
	if b != nil && (b.Rank() != 1 || b.Shape[0] != m) {
		return Window2D{}, fmt.Errorf("bias of shape %v: want (%d)", b.Shape, m)
	}
	win, err := resolveWindow(x.Shape[2], x.Shape[3], w.Shape[2], w.Shape[3], c.spec(), false)
	if err != nil {
		return Window2D{}, fmt.Errorf("input %v, weights %v: %w", x.Shape, w.Shape, err)
	}
	return win, nil
}

// shapeOf prints a possibly absent tensor's shape.
func shapeOf(t *Tensor) string {
	if t == nil {
		return "none"
	}
	return fmt.Sprint(t.Shape)
}

// convInputs splits in into X, W and the optional B.
func convInputs(in []*Tensor) (x, w, b *Tensor, err error) {
	if len(in) < 2 || len(in) > 3 {
		return nil, nil, nil, fmt.Errorf("%d inputs: want X, W and optional B", len(in))
	}
	if len(in) == 3 {
		b = in[2]
	}
	return in[0], in[1], b, nil
}

// maxColElems caps the im2col buffer (8 MB): the batch is processed in chunks that fit.
const maxColElems = 1 << 20

// minGemmCols is the fewest im2col columns worth one gemm call.
const minGemmCols = 64

// parallelMACs is the least work (multiply-adds) worth a goroutine of its own.
const parallelMACs = 1 << 18

// convChunk is the number of samples per im2col chunk, for rows im2col rows and p
// output pixels per sample. One sample at a time is the default: its im2col matrix is
// small enough to stay in cache and gemm writes straight into Y. Only when a sample
// has fewer than minGemmCols pixels (late layers, 1×1 maps) are samples grouped, so
// that gemm still sees a matrix rather than a vector.
func convChunk(n, rows, p int) int {
	nb := max(1, minGemmCols/max(1, p))
	nb = min(nb, maxColElems/max(1, rows*p))
	return max(1, min(n, nb))
}

// convPlan holds the sizes of one call.
type convPlan struct {
	win            Window2D
	group          int
	n, ch, m       int // batch, input and output channels
	p, k, chw      int // output pixels, im2col rows, input elements per sample
	mg, kg         int // output channels and im2col rows per group
	minRowsPerPart int // samples per goroutine, so that each does parallelMACs
}

func (c Conv) plan(x, w, b *Tensor) (convPlan, error) {
	win, err := c.Window(x, w, b)
	if err != nil {
		return convPlan{}, err
	}
	pl := convPlan{win: win, group: c.Group, n: x.Shape[0], ch: x.Shape[1], m: w.Shape[0],
		p: win.OutH * win.OutW, k: x.Shape[1] * win.KH * win.KW, chw: x.Shape[1] * win.InH * win.InW}
	if !elemsWithin(pl.n, pl.m, pl.p) || !elemsWithin(pl.k, pl.p) {
		return convPlan{}, fmt.Errorf("input %v, weights %v: output %d×%d is too large", x.Shape, w.Shape, win.OutH, win.OutW)
	}
	pl.mg, pl.kg = pl.m/c.Group, pl.k/c.Group
	pl.minRowsPerPart = max(1, parallelMACs/max(1, pl.m*pl.p*pl.kg))
	return pl, nil
}

func (c Conv) Forward(in []*Tensor) ([]*Tensor, error) {
	x, w, b, err := convInputs(in)
	if err != nil {
		return nil, err
	}
	pl, err := c.plan(x, w, b)
	if err != nil {
		return nil, err
	}
	y := NewTensor(pl.n, pl.m, pl.win.OutH, pl.win.OutW)
	if pl.n == 0 || pl.p == 0 {
		return []*Tensor{y}, nil
	}
	var bias []float64
	if b != nil {
		bias = b.Data
	}
	// Samples are independent: split the batch across cores when it is worth it
	// (Graph.Logits may already have split it; the goroutines then just share cores).
	err = ParallelRows(pl.n, pl.minRowsPerPart, func(_, lo, hi int) error {
		pl.forward(x.Data, w.Data, bias, y.Data, lo, hi)
		return nil
	})
	return []*Tensor{y}, err
}

// forward computes Y for samples [lo, hi).
func (pl convPlan) forward(x, w, bias, y []float64, lo, hi int) {
	m, p := pl.m, pl.p
	nb := convChunk(hi-lo, pl.k, p)
	col := make([]float64, pl.k*nb*p)
	var tmp []float64
	if nb > 1 {
		tmp = make([]float64, m*nb*p)
	}
	for n0 := lo; n0 < hi; n0 += nb {
		bs := min(nb, hi-n0)
		cols := bs * p
		im2col(col, x[n0*pl.chw:(n0+bs)*pl.chw], pl.ch, bs, pl.win)
		dst := tmp
		if bs == 1 {
			dst = y[n0*m*p : (n0+1)*m*p] // (M, P) is already Y's layout
		}
		for g := 0; g < pl.group; g++ {
			gemm(false, false, pl.mg, cols, pl.kg, 1, w[g*pl.mg*pl.kg:], pl.kg, col[g*pl.kg*cols:], cols, 0, dst[g*pl.mg*cols:], cols)
		}
		if bs == 1 {
			for o, bv := range bias {
				row := dst[o*p : (o+1)*p]
				for i := range row {
					row[i] += bv
				}
			}
			continue
		}
		// tmp is (M, bs·P); Y wants (bs, M, P).
		for s := 0; s < bs; s++ {
			for o := 0; o < m; o++ {
				dst := y[((n0+s)*m+o)*p : ((n0+s)*m+o+1)*p]
				src := tmp[o*cols+s*p : o*cols+(s+1)*p]
				if bias == nil {
					copy(dst, src)
					continue
				}
				bv := bias[o]
				for i, v := range src {
					dst[i] = v + bv
				}
			}
		}
	}
}

// Backward: with the same im2col matrix X̂ (per group) and dŶ = dY arranged as (M, N·P),
//
//	dW_g = dŶ_g · X̂_gᵀ,   dX̂_g = W_gᵀ · dŶ_g (scattered back by col2im),   dB[m] = Σ dY[·,m,·,·].
func (c Conv) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	x, w, b, err := convInputs(in)
	if err != nil {
		return nil, err
	}
	pl, err := c.plan(x, w, b)
	if err != nil {
		return nil, err
	}
	grads := make([]*Tensor, len(in))
	needX := len(need) > 0 && need[0]
	needW := len(need) > 1 && need[1]
	needB := b != nil && len(need) > 2 && need[2]
	if !needX && !needW && !needB {
		return grads, nil
	}
	oshape := []int{pl.n, pl.m, pl.win.OutH, pl.win.OutW}
	var gy *Tensor
	if len(gradOut) > 0 {
		gy = gradOut[0]
	}
	if gy == nil || !SameShape(gy.Shape, oshape) || gy.Len() != NumElements(oshape) {
		return nil, fmt.Errorf("output gradient of shape %v: want %v", shapeOf(gy), oshape)
	}
	var dx, dw, db []float64
	if needX {
		grads[0] = NewTensor(x.Shape...)
		dx = grads[0].Data
	}
	if needW {
		grads[1] = NewTensor(w.Shape...)
		dw = grads[1].Data
	}
	if needB {
		grads[2] = NewTensor(pl.m)
		db = grads[2].Data
	}
	if pl.n == 0 || pl.p == 0 {
		return grads, nil
	}
	// dX splits by sample; dW and dB are sums over samples, so each part but the
	// first accumulates its own and they are added at the end, in part order. The
	// parts do not depend on the core count, so neither do the sums' roundings:
	// training is bit-identical on every machine (TestTrainDeterministic).
	ranges := fixedParts(pl.n, pl.minRowsPerPart, maxConvParts)
	parts := len(ranges)
	partW, partB := make([][]float64, parts), make([][]float64, parts)
	err = runParts(ranges, func(part, lo, hi int) error {
		pw, pb := dw, db
		if part > 0 && needW {
			pw = make([]float64, len(dw))
			partW[part] = pw
		}
		if part > 0 && needB {
			pb = make([]float64, len(db))
			partB[part] = pb
		}
		pl.backward(x.Data, w.Data, gy.Data, dx, pw, pb, lo, hi)
		return nil
	})
	for part := 1; part < parts; part++ {
		for i, v := range partW[part] {
			dw[i] += v
		}
		for i, v := range partB[part] {
			db[i] += v
		}
	}
	return grads, err
}

// maxConvParts bounds the parts of a parallel Conv backward: enough for the cores
// of a workstation, few enough that the per-part dW buffers stay cheap.
const maxConvParts = 8

// backward writes dX for samples [lo, hi) (when dx is not nil) and adds their
// contributions to dW and dB (when not nil).
func (pl convPlan) backward(x, w, gy, dx, dw, db []float64, lo, hi int) {
	m, p := pl.m, pl.p
	nb := convChunk(hi-lo, pl.k, p)
	var dyt, col []float64
	if nb > 1 {
		dyt = make([]float64, m*nb*p)
	}
	if dx != nil || dw != nil {
		col = make([]float64, pl.k*nb*p)
	}
	for n0 := lo; n0 < hi; n0 += nb {
		bs := min(nb, hi-n0)
		cols := bs * p
		dyc := dyt
		if bs == 1 {
			dyc = gy[n0*m*p : (n0+1)*m*p] // (M, P): dY's own layout
		}
		for s := 0; s < bs; s++ {
			for o := 0; o < m; o++ {
				src := gy[((n0+s)*m+o)*p : ((n0+s)*m+o+1)*p]
				if bs > 1 {
					copy(dyc[o*cols+s*p:], src)
				}
				if db != nil {
					sum := 0.0
					for _, v := range src {
						sum += v
					}
					db[o] += sum
				}
			}
		}
		if dw != nil {
			im2col(col, x[n0*pl.chw:(n0+bs)*pl.chw], pl.ch, bs, pl.win)
			for g := 0; g < pl.group; g++ {
				gemm(false, true, pl.mg, pl.kg, cols, 1, dyc[g*pl.mg*cols:], cols, col[g*pl.kg*cols:], cols, 1, dw[g*pl.mg*pl.kg:], pl.kg)
			}
		}
		if dx != nil {
			for g := 0; g < pl.group; g++ {
				gemm(true, false, pl.kg, cols, pl.mg, 1, w[g*pl.mg*pl.kg:], pl.kg, dyc[g*pl.mg*cols:], cols, 0, col[g*pl.kg*cols:], cols)
			}
			col2im(dx[n0*pl.chw:(n0+bs)*pl.chw], col, pl.ch, bs, pl.win)
		}
	}
}

// im2col writes the receptive fields of the bs samples in x (bs, C, H, W) into col,
// a (C·kH·kW) × (bs·P) row-major matrix, P = OutH·OutW: row (c·kH + i)·kW + j, column
// s·P + oh·OutW + ow holds X[s, c, oh·sH − pT + i·dH, ow·sW − pL + j·dW], 0 in the
// padding. Every entry is written, so col may hold stale data.
func im2col(col, x []float64, ch, bs int, w Window2D) {
	p := w.OutH * w.OutW
	cols := bs * p
	hw := w.InH * w.InW
	for c := 0; c < ch; c++ {
		for i := 0; i < w.KH; i++ {
			for j := 0; j < w.KW; j++ {
				row := col[((c*w.KH+i)*w.KW+j)*cols:][:cols]
				start := j*w.DilW - w.PadLeft
				lo, hi := tapRange(start, w.OutW, w.StrideW, w.InW)
				for s := 0; s < bs; s++ {
					plane := x[(s*ch+c)*hw : (s*ch+c+1)*hw]
					for oh := 0; oh < w.OutH; oh++ {
						dst := row[s*p+oh*w.OutW:][:w.OutW]
						ih := oh*w.StrideH - w.PadTop + i*w.DilH
						if ih < 0 || ih >= w.InH || lo >= hi {
							clear(dst)
							continue
						}
						src := plane[ih*w.InW : (ih+1)*w.InW]
						clear(dst[:lo])
						if w.StrideW == 1 {
							copy(dst[lo:hi], src[lo+start:hi+start])
						} else {
							for ow, iw := lo, lo*w.StrideW+start; ow < hi; ow, iw = ow+1, iw+w.StrideW {
								dst[ow] = src[iw]
							}
						}
						clear(dst[hi:])
					}
				}
			}
		}
	}
}

// col2im is the adjoint of im2col: it adds each entry of col to the input pixel it
// was read from (entries in the padding are dropped).
func col2im(dx, col []float64, ch, bs int, w Window2D) {
	p := w.OutH * w.OutW
	cols := bs * p
	hw := w.InH * w.InW
	for c := 0; c < ch; c++ {
		for i := 0; i < w.KH; i++ {
			for j := 0; j < w.KW; j++ {
				row := col[((c*w.KH+i)*w.KW+j)*cols:][:cols]
				start := j*w.DilW - w.PadLeft
				lo, hi := tapRange(start, w.OutW, w.StrideW, w.InW)
				if lo >= hi {
					continue
				}
				for s := 0; s < bs; s++ {
					plane := dx[(s*ch+c)*hw : (s*ch+c+1)*hw]
					for oh := 0; oh < w.OutH; oh++ {
						ih := oh*w.StrideH - w.PadTop + i*w.DilH
						if ih < 0 || ih >= w.InH {
							continue
						}
						src := row[s*p+oh*w.OutW:][:w.OutW]
						dst := plane[ih*w.InW : (ih+1)*w.InW]
						for ow, iw := lo, lo*w.StrideW+start; ow < hi; ow, iw = ow+1, iw+w.StrideW {
							dst[iw] += src[ow]
						}
					}
				}
			}
		}
	}
}
