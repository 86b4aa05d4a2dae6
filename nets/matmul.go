package nets

import "fmt"

// MatMul is the matrix product with numpy.matmul semantics (ONNX MatMul, opsets
// 1–13):
//   - a 1-D A of shape [K] is promoted to [1,K] and a 1-D B of shape [K] to [K,1];
//     the promoted dimension is removed from the result;
//   - operands of rank ≥ 2 are stacks of matrices in their last two dimensions, and
//     the leading (batch) dimensions broadcast multidirectionally.
//
// The weight may sit on either side: MatMul(X[B,784], W[784,256]) as exported by
// PyTorch, or MatMul(W[256,784], X[784,1]) as in some VNN-COMP models.
type MatMul struct{}

func newMatMul(NodeSpec) (Op, error) { return MatMul{}, nil }

func (MatMul) OpType() string { return "MatMul" }
func (MatMul) Attrs() Attrs   { return NewAttrs() }

// matmulPlan is the checked geometry of one MatMul call.
type matmulPlan struct {
	m, k, n   int
	aMat      []int      // promoted shape of A ([...,M,K])
	bMat      []int      // promoted shape of B ([...,K,N])
	out       []int      // shape of Y, promotions removed
	flat      bool       // B is a single matrix and A's batch is not stretched: one GEMM over rows
	batch     *bcastPlan // walk over the broadcast batch dimensions, when !flat
	batchSize int
}

func planMatMul(in []*Tensor) (*matmulPlan, error) {
	if err := checkArity("MatMul", in, 2, 2); err != nil {
		return nil, err
	}
	as, bs := in[0].Shape, in[1].Shape
	if len(as) == 0 || len(bs) == 0 {
		return nil, fmt.Errorf("MatMul: A is %s and B is %s; scalars are not allowed", fmtShape(as), fmtShape(bs))
	}
	p := &matmulPlan{}
	p.aMat = append([]int(nil), as...)
	if len(as) == 1 {
		p.aMat = []int{1, as[0]}
	}
	p.bMat = append([]int(nil), bs...)
	if len(bs) == 1 {
		p.bMat = []int{bs[0], 1}
	}
	ra, rb := len(p.aMat), len(p.bMat)
	p.m, p.k = p.aMat[ra-2], p.aMat[ra-1]
	kb := p.bMat[rb-2]
	p.n = p.bMat[rb-1]
	if p.k != kb {
		return nil, fmt.Errorf("MatMul: A is %s but B is %s: inner dimensions %d and %d differ",
			fmtShape(as), fmtShape(bs), p.k, kb)
	}
	var err error
	p.batch, err = planBroadcast(p.aMat[:ra-2], p.bMat[:rb-2])
	if err != nil {
		return nil, fmt.Errorf("MatMul: A is %s, B is %s: batch %w", fmtShape(as), fmtShape(bs), err)
	}
	batchShape := p.batch.Out
	p.batchSize = NumElements(batchShape)
	p.flat = NumElements(p.bMat[:rb-2]) == 1 && NumElements(p.aMat[:ra-2]) == p.batchSize
	p.out = append([]int(nil), batchShape...)
	if len(as) > 1 {
		p.out = append(p.out, p.m)
	}
	if len(bs) > 1 {
		p.out = append(p.out, p.n)
	}
	return p, nil
}

// batches calls f with the offsets (in elements) of the A, B and Y matrices of every
// product in the broadcast batch.
func (p *matmulPlan) batches(f func(ia, ib, iy int)) {
	szA, szB, szY := p.m*p.k, p.k*p.n, p.m*p.n
	rowLen, sa, sb := p.batch.inner()
	p.batch.rows(func(o, ia, ib int) {
		for t := 0; t < rowLen; t++ {
			f((ia+t*sa)*szA, (ib+t*sb)*szB, (o+t)*szY)
		}
	})
}

func (MatMul) Forward(in []*Tensor) ([]*Tensor, error) {
	p, err := planMatMul(in)
	if err != nil {
		return nil, err
	}
	y := NewTensor(p.out...)
	if p.k == 0 {
		return []*Tensor{y}, nil
	}
	a, b := in[0].Data, in[1].Data
	m, k, n := p.m, p.k, p.n
	if p.flat {
		// [batch·M, K]·[K, N] in one call: the common inference case.
		gemm(false, false, p.batchSize*m, n, k, 1, a, k, b, n, 0, y.Data, n)
		return []*Tensor{y}, nil
	}
	p.batches(func(ia, ib, iy int) {
		gemm(false, false, m, n, k, 1, a[ia:ia+m*k], k, b[ib:ib+k*n], n, 0, y.Data[iy:iy+m*n], n)
	})
	return []*Tensor{y}, nil
}

// Backward: for each product Y_i = A_i·B_i, ∂L/∂A_i = G_i·B_iᵀ and ∂L/∂B_i = A_iᵀ·G_i.
// A matrix shared by several products (a stretched batch dimension) accumulates the
// contributions of all of them, which GEMM's beta = 1 does in place.
func (MatMul) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	p, err := planMatMul(in)
	if err != nil {
		return nil, err
	}
	g := gradOut[0]
	if g == nil {
		return zeroGrads(in, need), nil
	}
	if err := checkGradOut("MatMul", g, p.out); err != nil {
		return nil, err
	}
	a, b, gd := in[0].Data, in[1].Data, g.Data
	m, k, n := p.m, p.k, p.n
	grads := make([]*Tensor, 2)
	var da, db *Tensor
	if need[0] {
		da = NewTensor(in[0].Shape...)
		grads[0] = da
	}
	if len(need) > 1 && need[1] {
		db = NewTensor(in[1].Shape...)
		grads[1] = db
	}
	if n == 0 || (p.flat && p.batchSize*m == 0) {
		return grads, nil // an empty product: every gradient is zero
	}
	if p.flat {
		rows := p.batchSize * m
		if da != nil && k > 0 {
			gemm(false, true, rows, k, n, 1, gd, n, b, n, 0, da.Data, k)
		}
		if db != nil {
			gemm(true, false, k, n, rows, 1, a, k, gd, n, 0, db.Data, n)
		}
		return grads, nil
	}
	if m == 0 {
		return grads, nil
	}
	p.batches(func(ia, ib, iy int) {
		gi := gd[iy : iy+m*n]
		if da != nil && k > 0 {
			gemm(false, true, m, k, n, 1, gi, n, b[ib:ib+k*n], n, 1, da.Data[ia:ia+m*k], k)
		}
		if db != nil {
			gemm(true, false, k, n, m, 1, a[ia:ia+m*k], k, gi, n, 1, db.Data[ib:ib+k*n], n)
		}
	})
	return grads, nil
}
