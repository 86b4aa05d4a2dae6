package nets

import "fmt"

// Gemm is the general matrix multiplication of ONNX (opsets 7–13):
//
//	Y = alpha·A'·B' + beta·C,   A' = transA ? Aᵀ : A,   B' = transB ? Bᵀ : B,
//
// with A' of shape [M,K], B' of shape [K,N] and Y of shape [M,N]. C is optional
// (from opset 11; an absent C counts as 0) and is broadcast unidirectionally to
// [M,N]: [N], [1,N], [M,1], [M,N] or a scalar. A fully connected layer is
// Gemm(X, W, b) with transB=1; W and b stay graph inputs (in[1], in[2]) so that
// training updates them like any other value.
type Gemm struct {
	TransA, TransB bool
	Alpha, Beta    float64
}

func newGemm(spec NodeSpec) (Op, error) {
	if _, ok := spec.Attrs.Ints["broadcast"]; ok && spec.Opset < 7 {
		return nil, unsupported("Gemm: attribute \"broadcast\" (opset < 7)")
	}
	return Gemm{
		TransA: spec.Attrs.Int("transA", 0) != 0,
		TransB: spec.Attrs.Int("transB", 0) != 0,
		Alpha:  spec.Attrs.Float("alpha", 1),
		Beta:   spec.Attrs.Float("beta", 1),
	}, nil
}

func (Gemm) OpType() string { return "Gemm" }

func (op Gemm) Attrs() Attrs {
	a := NewAttrs()
	a.SetFloat("alpha", op.Alpha)
	a.SetFloat("beta", op.Beta)
	a.SetInt("transA", b2i(op.TransA))
	a.SetInt("transB", b2i(op.TransB))
	return a
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// gemmDims checks the inputs and returns M, N, K, and C's broadcast plan (nil when
// C is absent).
func (op Gemm) gemmDims(in []*Tensor) (m, n, k int, pc *bcastPlan, err error) {
	if err := checkArity("Gemm", in, 2, 3); err != nil {
		return 0, 0, 0, nil, err
	}
	a, b := in[0], in[1]
	if a.Rank() != 2 {
		return 0, 0, 0, nil, fmt.Errorf("Gemm: A must be 2-D, got %s", fmtShape(a.Shape))
	}
	if b.Rank() != 2 {
		return 0, 0, 0, nil, fmt.Errorf("Gemm: B must be 2-D, got %s", fmtShape(b.Shape))
	}
	m, k = a.Shape[0], a.Shape[1]
	if op.TransA {
		m, k = k, m
	}
	kb, n := b.Shape[0], b.Shape[1]
	if op.TransB {
		kb, n = n, kb
	}
	if k != kb {
		ta := ""
		if op.TransA {
			ta = " (transA=1)"
		}
		return 0, 0, 0, nil, fmt.Errorf("Gemm: A is %s%s but B is %s (transB=%d)",
			fmtShape(a.Shape), ta, fmtShape(b.Shape), b2i(op.TransB))
	}
	if len(in) == 3 && in[2] != nil {
		c := in[2]
		pc, err = planBroadcast(c.Shape, []int{m, n})
		if err != nil || c.Rank() > 2 || !SameShape(pc.Out, []int{m, n}) {
			return 0, 0, 0, nil, fmt.Errorf("Gemm: C is %s, which does not broadcast to [M,N] = %s",
				fmtShape(c.Shape), fmtShape([]int{m, n}))
		}
	}
	return m, n, k, pc, nil
}

// lead returns the row stride of a row-major 2-D matrix.
func lead(t *Tensor) int { return t.Shape[1] }

func (op Gemm) Forward(in []*Tensor) ([]*Tensor, error) {
	m, n, k, pc, err := op.gemmDims(in)
	if err != nil {
		return nil, err
	}
	y := NewTensor(m, n)
	op.compute(in, m, n, k, pc, y.Data)
	return []*Tensor{y}, nil
}

// infer is Forward for Graph.Logits: Y is written into *out (reused across calls)
// and, when relu is set, max(0,·) is taken in place, as a following Relu would.
func (op Gemm) infer(in []*Tensor, out *[]float64, relu bool) (*Tensor, error) {
	m, n, k, pc, err := op.gemmDims(in)
	if err != nil {
		return nil, err
	}
	y := &Tensor{Shape: []int{m, n}, Data: grow(out, m*n)}
	op.compute(in, m, n, k, pc, y.Data)
	if relu {
		biasRelu(y.Data, y.Data, 0, false, true)
	}
	return y, nil
}

// compute writes Y = alpha·A'·B' + beta·C into y (m×n; its prior contents are
// ignored): first beta·C stretched to [M,N], then the product accumulated on top.
func (op Gemm) compute(in []*Tensor, m, n, k int, pc *bcastPlan, y []float64) {
	if pc != nil {
		c := in[2].Data
		cols, sc, _ := pc.inner()
		beta := op.Beta
		pc.rows(func(o, ic, _ int) {
			d := y[o : o+cols]
			if sc == 1 {
				for i, v := range c[ic : ic+cols] {
					d[i] = beta * v
				}
				return
			}
			v := beta * c[ic]
			for i := range d {
				d[i] = v
			}
		})
	} else if k == 0 {
		clear(y)
	}
	if k > 0 {
		beta := 0.0 // no C: let BLAS overwrite y without reading it
		if pc != nil {
			beta = 1
		}
		gemm(op.TransA, op.TransB, m, n, k, op.Alpha, in[0].Data, lead(in[0]), in[1].Data, lead(in[1]), beta, y, n)
	}
}

// Backward differentiates Y = alpha·A'B' + beta·C:
//
//	∂L/∂A' = alpha·G·B'ᵀ,  ∂L/∂B' = alpha·A'ᵀ·G,  ∂L/∂C = beta·Σ G over C's broadcast axes,
//
// and transposes back where A or B entered transposed, folding each transposition
// into the BLAS call rather than materialising it.
func (op Gemm) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	m, n, k, pc, err := op.gemmDims(in)
	if err != nil {
		return nil, err
	}
	g := gradOut[0]
	if g == nil {
		return zeroGrads(in, need), nil
	}
	if err := checkGradOut("Gemm", g, []int{m, n}); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	grads := make([]*Tensor, len(in))
	if need[0] {
		da := NewTensor(a.Shape...)
		if k > 0 && n > 0 {
			switch {
			case !op.TransA && !op.TransB: // dA[M,K] = α·G·Bᵀ, B [K,N]
				gemm(false, true, m, k, n, op.Alpha, g.Data, n, b.Data, n, 0, da.Data, k)
			case !op.TransA && op.TransB: // dA[M,K] = α·G·B, B [N,K]
				gemm(false, false, m, k, n, op.Alpha, g.Data, n, b.Data, k, 0, da.Data, k)
			case op.TransA && !op.TransB: // dA[K,M] = α·B·Gᵀ, B [K,N]
				gemm(false, true, k, m, n, op.Alpha, b.Data, n, g.Data, n, 0, da.Data, m)
			default: // dA[K,M] = α·Bᵀ·Gᵀ, B [N,K]
				gemm(true, true, k, m, n, op.Alpha, b.Data, k, g.Data, n, 0, da.Data, m)
			}
		}
		grads[0] = da
	}
	if need[1] {
		db := NewTensor(b.Shape...)
		if k > 0 && m > 0 {
			switch {
			case !op.TransB && !op.TransA: // dB[K,N] = α·Aᵀ·G, A [M,K]
				gemm(true, false, k, n, m, op.Alpha, a.Data, k, g.Data, n, 0, db.Data, n)
			case !op.TransB && op.TransA: // dB[K,N] = α·A·G, A [K,M]
				gemm(false, false, k, n, m, op.Alpha, a.Data, m, g.Data, n, 0, db.Data, n)
			case op.TransB && !op.TransA: // dB[N,K] = α·Gᵀ·A, A [M,K]
				gemm(true, false, n, k, m, op.Alpha, g.Data, n, a.Data, k, 0, db.Data, k)
			default: // dB[N,K] = α·Gᵀ·Aᵀ, A [K,M]
				gemm(true, true, n, k, m, op.Alpha, g.Data, n, a.Data, m, 0, db.Data, k)
			}
		}
		grads[1] = db
	}
	if pc != nil && len(need) > 2 && need[2] {
		dc := pc.sumTo(0, in[2].Shape, g.Data)
		if sameStorage(dc.Data, g.Data) {
			dc = dc.Clone()
		}
		for i := range dc.Data {
			dc.Data[i] *= op.Beta
		}
		grads[2] = dc
	}
	return grads, nil
}
