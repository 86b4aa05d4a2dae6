//go:build !cgo || purego

package lp

// New returns a Solver backed by gonum's simplex: this build has no cgo (or the
// purego tag), so CLP is unavailable.
func New() Solver { return NewGonum() }
