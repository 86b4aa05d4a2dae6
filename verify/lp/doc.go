// Package lp solves linear programs in the general bounded form
//
//	minimise    cᵀx
//	subject to  RowLo ≤ A·x ≤ RowHi,
//	            ColLo ≤ x   ≤ ColHi,
//
// with A sparse and stored column-major (CSC), and ±Inf allowed for any bound.
//
// Two backends implement the Solver interface:
//
//   - CLP (COIN-OR Linear Programming, https://github.com/coin-or/Clp) through its C
//     interface, with the dual simplex method (Lemke 1954; the bounded dual simplex
//     of Koberstein, "The dual simplex method, techniques for a fast and stable
//     implementation", PhD thesis, Paderborn 2005, is what CLP implements). The
//     basis of the last solve is kept inside the model, so re-solving after
//     SetObjective or SetColBounds is a warm start: this is what makes
//     branch-and-bound over ReLU splits cheap. New returns it when the package is
//     built with cgo (the default) and without the purego tag.
//   - gonum's dense simplex (gonum.org/v1/gonum/optimize/convex/lp.Simplex) on the
//     problem rewritten in standard form. It is slow (dense algebra, no warm
//     start, duals by a second solve of the dual LP), but needs no C library: New returns it
//     under -tags purego or CGO_ENABLED=0, and NewGonum always does, so the two
//     backends can be cross-checked.
//
// A Solver is not safe for concurrent use: use one per goroutine. Close releases
// its resources (the C memory of the CLP model); a closed Solver returns
// ErrClosed.
package lp
