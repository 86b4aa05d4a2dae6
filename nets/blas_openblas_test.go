//go:build cgo && !purego

package nets

import (
	"testing"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
)

// TestOpenBLASSelected checks that the openblas build really routes gemm to OpenBLAS
// and that it agrees with the direct product.
func TestOpenBLASSelected(t *testing.T) {
	if _, ok := blas64.Implementation().(netlib.Implementation); !ok {
		t.Fatalf("blas64 implementation is %T, want netlib.Implementation", blas64.Implementation())
	}
	a := []float64{1, 2, 3, 4, 5, 6}    // 2×3
	b := []float64{7, 8, 9, 10, 11, 12} // 3×2
	c := make([]float64, 4)
	gemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2)
	want := []float64{58, 64, 139, 154}
	for i := range want {
		if c[i] != want[i] {
			t.Fatalf("gemm = %v, want %v", c, want)
		}
	}
}
