package bounds

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/certify-dev/certify/nets"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, op(A) m×k,
// op(B) k×n, through blas64 (OpenBLAS in the default build, single-threaded: bound
// propagation splits its work across cores itself).
func gemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				row[j] *= beta
			}
		}
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	blas64.Implementation().Dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemv computes y = A·x for a row-major m×n matrix A.
func gemv(m, n int, a, x, y []float64) {
	if m == 0 {
		return
	}
	if n == 0 {
		clear(y[:m])
		return
	}
	blas64.Implementation().Dgemv(blas.NoTrans, m, n, 1, a, n, x, 1, 0, y, 1)
}

// absTensor returns |t| elementwise (a new tensor), or nil for nil.
func absTensor(t *nets.Tensor) *nets.Tensor {
	if t == nil {
		return nil
	}
	out := nets.NewTensor(t.Shape...)
	for i, v := range t.Data {
		out.Data[i] = math.Abs(v)
	}
	return out
}

// midRad returns the centre and radius of a box, and with fp the radius rounded up
// so that [lo, hi] ⊆ [mid − rad, mid + rad] holds exactly, and mag = |mid| + rad ≥
// max(|lo|, |hi|) (nil without fp).
func midRad(b Box, fp bool) (mid, rad, mag *nets.Tensor) {
	mid, rad = nets.NewTensor(b.Lo.Shape...), nets.NewTensor(b.Lo.Shape...)
	if fp {
		mag = nets.NewTensor(b.Lo.Shape...)
	}
	for i, l := range b.Lo.Data {
		h := b.Hi.Data[i]
		m := 0.5*l + 0.5*h // no overflow; exact unless subnormal
		r := 0.5*h - 0.5*l
		if fp {
			// fl(h − m) may fall short of h − m by half an ulp: step up. It is 0
			// only if h = m = l (a difference of floats rounds to 0 only when it
			// is 0), and then stays 0: degenerate boxes keep a radius of 0.
			if r = max(h-m, m-l); r != 0 {
				r = up(r)
			}
			if mag.Data[i] = math.Abs(m) + r; mag.Data[i] != 0 {
				mag.Data[i] = up(mag.Data[i])
			}
		}
		mid.Data[i], rad.Data[i] = m, r
	}
	return mid, rad, mag
}

// magnitude returns max(|lo|, |hi|) elementwise.
func magnitude(b Box) []float64 {
	m := make([]float64, len(b.Lo.Data))
	for i, l := range b.Lo.Data {
		m[i] = max(math.Abs(l), math.Abs(b.Hi.Data[i]))
	}
	return m
}

// parallel runs f(i) for i in [0, n) on up to GOMAXPROCS goroutines and returns the
// error of the smallest failing i.
func parallel(n int, f func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, n)
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = f(i)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// affineInterval is IBP for a linear op y = L(x) + b in centre-radius form (Gowal
// et al., "On the Effectiveness of Interval Bound Propagation for Training Verifiably
// Robust Models", 2018, eq. 6): y_mid = L(mid) + b, y_rad = |L|(rad), y ∈ [y_mid −
// y_rad, y_mid + y_rad]. f applies the op (with bias); fabs applies |L| (with |b| when
// bias is true). n is the length of the op's dot products (for γₙ, fp.go).
//
// With SoundFP the box is widened by 2γₙ·T + the roundings of y_mid ± y_rad, where
// T = |L|(|mid| + rad) + |b| ≥ |L||x| + |b| on the box: one γₙ·T for computing y_mid
// and y_rad, one for the network's own evaluation of L(x) + b. T (as an upper
// bound) is returned for the layer's CROWN error weight; nil without SoundFP.
func (e *engine) affineInterval(x Box, n int, f func(*nets.Tensor) (*nets.Tensor, error),
	fabs func(t *nets.Tensor, bias bool) (*nets.Tensor, error)) (Box, []float64, error) {
	mid, rad, mag := midRad(x, e.opt.SoundFP)
	ym, err := f(mid)
	if err != nil {
		return Box{}, nil, err
	}
	yr, err := fabs(rad, false)
	if err != nil {
		return Box{}, nil, err
	}
	if len(ym.Data) != len(yr.Data) {
		return Box{}, nil, fmt.Errorf("internal: centre %v and radius %v images differ", ym.Shape, yr.Shape)
	}
	lo, hi := nets.NewTensor(ym.Shape...), nets.NewTensor(ym.Shape...)
	var t []float64
	if e.opt.SoundFP {
		tt, err := fabs(mag, true)
		if err != nil {
			return Box{}, nil, err
		}
		t = tt.Data
		g := gamma(n)
		for i := range t {
			t[i] = up(t[i]*(1+2*g) + underflow(n))
		}
	}
	for i, m := range ym.Data {
		r := yr.Data[i]
		lo.Data[i], hi.Data[i] = m-r, m+r
		if t != nil {
			e := up(2*gamma(n)*t[i] + 2*unitRoundoff*(math.Abs(m)+r) + underflow(n))
			lo.Data[i], hi.Data[i] = down(lo.Data[i]-e), up(hi.Data[i]+e)
		}
	}
	return Box{Lo: lo, Hi: hi}, t, nil
}

// scaleEps returns c·t, rounded up, as an error weight vector.
func scaleEps(t []float64, c float64) []float64 {
	out := make([]float64, len(t))
	for i, v := range t {
		out[i] = up(c * v)
	}
	return out
}
