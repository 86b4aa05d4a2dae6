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
	n, ch, m       int     // batch, input and output channels
	p, k, chw      int     // output pixels, im2col rows, input elements per sample
	mg, kg         int     // output channels and im2col rows per group
	minRowsPerPart int     // samples per goroutine, so that each does parallelMACs
	taps           []int32 // im2col gather table, win.taps()
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
	pl.taps = win.taps()
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
	// The split is by whole gemm chunks of nb samples, counted from sample 0, so the
	// chunks, and so the roundings (OpenBLAS's depend on the product's width), are
	// the same for any number of cores, and the same as in Conv.infer.
	nb := convChunk(pl.n, pl.k, pl.p)
	chunks := (pl.n + nb - 1) / nb
	err = ParallelRows(chunks, max(1, pl.minRowsPerPart/nb), func(_, lo, hi int) error {
		pl.forward(x.Data, w.Data, bias, y.Data, lo*nb, min(pl.n, hi*nb), nb)
		return nil
	})
	return []*Tensor{y}, err
}

// forward computes Y for samples [lo, hi), nb samples per gemm.
func (pl convPlan) forward(x, w, bias, y []float64, lo, hi, nb int) {
	m, p := pl.m, pl.p
	col := make([]float64, pl.k*nb*p)
	plane := make([]float64, pl.win.InH*pl.win.InW+1)
	var tmp []float64
	if nb > 1 {
		tmp = make([]float64, m*nb*p)
	}
	for n0 := lo; n0 < hi; n0 += nb {
		bs := min(nb, hi-n0)
		cols := bs * p
		im2colTaps(col, x[n0*pl.chw:(n0+bs)*pl.chw], pl.ch, bs, pl.win, pl.taps, plane)
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
	plane := make([]float64, pl.win.InH*pl.win.InW+1)
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
			im2colTaps(col, x[n0*pl.chw:(n0+bs)*pl.chw], pl.ch, bs, pl.win, pl.taps, plane)
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
	im2colTaps(col, x, ch, bs, w, w.taps(), make([]float64, w.InH*w.InW+1))
}

// taps returns the gather table of im2col: for kernel tap t = i·kW + j and output
// pixel q = oh·OutW + ow, taps[t·P + q] is 1 + the offset ih·W + iw of the input
// pixel it reads within a channel plane, or 0 in the padding.
func (w Window2D) taps() []int32 {
	p := w.OutH * w.OutW
	t := make([]int32, w.KH*w.KW*p)
	for i := 0; i < w.KH; i++ {
		for j := 0; j < w.KW; j++ {
			row := t[(i*w.KW+j)*p:][:p]
			for oh := 0; oh < w.OutH; oh++ {
				ih := oh*w.StrideH - w.PadTop + i*w.DilH
				for ow := 0; ow < w.OutW; ow++ {
					iw := ow*w.StrideW - w.PadLeft + j*w.DilW
					o := int32(0)
					if ih >= 0 && ih < w.InH && iw >= 0 && iw < w.InW {
						o = int32(1 + ih*w.InW + iw)
					}
					row[oh*w.OutW+ow] = o
				}
			}
		}
	}
	return t
}

// im2colTaps is im2col with the gather table taps = w.taps() and a scratch plane of
// at least H·W + 1 values. Each channel plane is copied behind a 0 (the value every
// padding tap reads), then every row of col is a branch-free gather through the
// table. At MNIST sizes (output rows of 7 to 14 pixels) this is several times faster
// than copying row by row, whose per-row bookkeeping outweighed the copying.
//
// When the row stride is a multiple q of the row dilation, kernel row i reads at
// output row oh what kernel row i − q reads at output row oh + 1, so for i ≥ q all
// but the last output row are a copy of an earlier row of col, shifted by OutW:
// half the gathers for a 4×4 kernel of stride 2.
func im2colTaps(col, x []float64, ch, bs int, w Window2D, taps []int32, plane []float64) {
	p := w.OutH * w.OutW
	cols := bs * p
	hw := w.InH * w.InW
	kk := w.KH * w.KW
	shift := 0 // q·kW: tap t copies tap t − shift, when q is defined
	if w.DilH > 0 && w.StrideH%w.DilH == 0 && w.OutH > 1 {
		shift = w.StrideH / w.DilH * w.KW
	}
	pl := plane[:hw+1]
	pl[0] = 0
	for s := 0; s < bs; s++ {
		for c := 0; c < ch; c++ {
			copy(pl[1:], x[(s*ch+c)*hw:][:hw])
			for t := 0; t < kk; t++ {
				dst := col[(c*kk+t)*cols+s*p:][:p]
				idx := taps[t*p:][:p]
				if shift > 0 && t >= shift {
					src := col[(c*kk+t-shift)*cols+s*p:][:p]
					copy(dst, src[w.OutW:])
					dst, idx = dst[p-w.OutW:], idx[p-w.OutW:]
				}
				gather(dst, pl, idx)
			}
		}
	}
}

// gather sets dst[q] = src[idx[q]].
func gather(dst, src []float64, idx []int32) {
	dst = dst[:len(idx)]
	q := 0
	for ; q+4 <= len(idx); q += 4 {
		i4 := idx[q : q+4 : q+4]
		d4 := dst[q : q+4 : q+4]
		d4[0] = src[i4[0]]
		d4[1] = src[i4[1]]
		d4[2] = src[i4[2]]
		d4[3] = src[i4[3]]
	}
	for ; q < len(idx); q++ {
		dst[q] = src[idx[q]]
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

// infer is Forward for Graph.Logits: Y is written into *out and the im2col matrix
// into *col (both reused across calls), the bias is added and, when relu is set,
// max(0,·) taken in the same pass, and the batch is not split across cores (Logits
// already runs one part per core). The samples go through gemm in the same chunks
// as in Forward (convChunk), so every value is bit-identical to Forward's: OpenBLAS
// rounds an element differently with the width of the product it sits in.
func (c Conv) infer(in []*Tensor, out, col, tmp *[]float64, relu bool) (*Tensor, error) {
	x, w, b, err := convInputs(in)
	if err != nil {
		return nil, err
	}
	pl, err := c.plan(x, w, b)
	if err != nil {
		return nil, err
	}
	m, p := pl.m, pl.p
	y := &Tensor{Shape: []int{pl.n, m, pl.win.OutH, pl.win.OutW}, Data: grow(out, pl.n*m*p)}
	if pl.n == 0 || p == 0 {
		clear(y.Data)
		return y, nil
	}
	var bias []float64
	if b != nil {
		bias = b.Data
	}
	nb := convChunk(pl.n, pl.k, p)
	cb := grow(col, pl.k*nb*p)
	plane := make([]float64, pl.win.InH*pl.win.InW+1)
	var tb []float64
	if nb > 1 {
		tb = grow(tmp, m*nb*p)
	}
	for n0 := 0; n0 < pl.n; n0 += nb {
		bs := min(nb, pl.n-n0)
		cols := bs * p
		im2colTaps(cb, x.Data[n0*pl.chw:(n0+bs)*pl.chw], pl.ch, bs, pl.win, pl.taps, plane)
		dst := tb
		if bs == 1 {
			dst = y.Data[n0*m*p : (n0+1)*m*p] // (M, P) is already Y's layout
		}
		for g := 0; g < pl.group; g++ {
			gemm(false, false, pl.mg, cols, pl.kg, 1, w.Data[g*pl.mg*pl.kg:], pl.kg, cb[g*pl.kg*cols:], cols, 0, dst[g*pl.mg*cols:], cols)
		}
		for s := 0; s < bs; s++ {
			for o := 0; o < m; o++ {
				d := y.Data[((n0+s)*m+o)*p : ((n0+s)*m+o+1)*p]
				src := d
				if bs > 1 {
					src = dst[o*cols+s*p : o*cols+(s+1)*p]
				}
				bv := 0.0
				if bias != nil {
					bv = bias[o]
				}
				biasRelu(d, src, bv, bias != nil, relu)
			}
		}
	}
	return y, nil
}

// biasRelu writes dst[i] = src[i] + bv (when add; else src[i]) and then, when relu,
// replaces every value not above 0 (NaN and −0 included) by +0, as Relu.Forward does.
// dst and src may be the same slice.
func biasRelu(dst, src []float64, bv float64, add, relu bool) {
	switch {
	case add && relu:
		for i, v := range src {
			dst[i] = relu0(v + bv)
		}
	case add:
		for i, v := range src {
			dst[i] = v + bv
		}
	case relu:
		for i, v := range src {
			dst[i] = relu0(v)
		}
	default:
		copy(dst, src)
	}
}
