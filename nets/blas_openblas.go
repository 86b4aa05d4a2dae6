//go:build cgo && !purego

package nets

// By default blas64 (and so gemm) runs on OpenBLAS through gonum's cgo binding:
// measured 5–10× faster than gonum's pure-Go Dgemm on our layer sizes (see the
// README's benchmark section). The #cgo line links the system library (Debian:
// libopenblas-dev). Build with `-tags purego` or CGO_ENABLED=0 for a pure-Go binary.

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int);
import "C"

import (
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
)

// init switches the process-wide blas64 implementation: the one piece of global
// state, chosen at build time, never at run time. OpenBLAS runs single-threaded
// because our callers already split batches across cores (Graph.Logits, training,
// attacks); two levels of threads on the same cores only contend.
func init() {
	C.openblas_set_num_threads(1)
	blas64.Use(netlib.Implementation{})
}
