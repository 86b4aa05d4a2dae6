package verify

// Resource limits. A verifier that would need more than its budget (an LP too
// large to build, more branch-and-bound domains than allowed, more time) does
// not fail: it answers Unknown, with Result.Reason saying which budget ran out,
// and keeps whatever it proved within the budget (an α-CROWN proof, say).

// Reasons of an Unknown result that ran out of a budget (Result.Reason). The
// strings are those of the report (pipeline.Sample.Unknown).
const (
	// ReasonTimeout: the per-sample time limit (BaB.Timeout) ended the search.
	ReasonTimeout = "timeout"
	// ReasonLPSize: an LP the verifier needed has more nonzeros than its limit
	// (LP.MaxNonzeros, BaB.MaxLPNonzeros); it was not built.
	ReasonLPSize = "lp size"
	// ReasonBaBDomains: branch and bound would have held more open domains than
	// BaB.MaxDomains.
	ReasonBaBDomains = "bab domains"
	// ReasonBaBNodes: branch and bound bounded BaB.MaxNodes domains without
	// settling the sample.
	ReasonBaBNodes = "bab nodes"
)

// DefaultMaxLPNonzeros is the largest LP (nonzeros of its constraint matrix)
// LP and BaB build when their limit is 0. It is a memory limit: building an LP
// and loading it into CLP peaks at about 110 bytes per nonzero (the Go
// triplets, the CSC copy and CLP's row and column copies; measured by
// BenchmarkLPBytesPerNonzero: 99 bytes at 2 million nonzeros, 112 at 20
// million), so an LP at the limit takes about 2.2 GB and 6 s to build and
// load. It does not bound the solve time, which depends on the LP's structure
// more than on its size (a dense all-unstable LP of 1.3 million nonzeros: 24 s
// per solve; the shipped MNIST CNN's sparse one of 0.57 million: over 3
// minutes), and a CLP solve does not observe the context.
const DefaultMaxLPNonzeros = 20_000_000

// lpSize is the size of one LP: its constraint matrix has Rows rows, Cols
// columns and Nonzeros stored entries.
type lpSize struct {
	Rows, Cols, Nonzeros int
}

// relaxSize is the size of the LP buildRelax(net, _, _, lo, hi, layers, pre)
// builds, counted without building it: per affine map k included, one row per
// output and the nonzeros of W_k plus one (the z column); per ReLU neuron,
// nothing when inactive (u ≤ 0, h = 0 by its bounds), one row of two nonzeros
// when active (l ≥ 0, h = z), two rows of two nonzeros each when unstable (the
// triangle's upper line and h ≥ z). Columns: the input, then z and h of every
// ReLU layer, and z of layer layers+1 with pre.
func relaxSize(net *lpNet, nin int, lo, hi [][]float64, layers int, pre bool) lpSize {
	s := lpSize{Cols: nin}
	nz := layers
	if pre {
		nz++
	}
	for k := 0; k < nz; k++ {
		a := net.affine[k]
		m := len(a.b)
		s.Cols += m
		s.Rows += m
		s.Nonzeros += m + a.nnz
		if k == layers {
			break
		}
		s.Cols += m
		for o := 0; o < m; o++ {
			l, u := lo[k][o], hi[k][o]
			switch {
			case u <= 0:
			case l >= 0:
				s.Rows++
				s.Nonzeros += 2
			default:
				s.Rows += 2
				s.Nonzeros += 4
			}
		}
	}
	return s
}

// minRelaxNonzeros is the fewest nonzeros the LP of the first layers ReLU
// layers can have, whatever the pre-activation bounds: the affine rows alone
// (every neuron inactive). An LP-all whose final LP cannot fit is abandoned
// before any tightening.
func minRelaxNonzeros(net *lpNet, layers int) int {
	n := 0
	for k := 0; k < layers; k++ {
		n += len(net.affine[k].b) + net.affine[k].nnz
	}
	return n
}

// nonzeroLimit is limit, or DefaultMaxLPNonzeros when limit is 0.
func nonzeroLimit(limit int) int {
	if limit == 0 {
		return DefaultMaxLPNonzeros
	}
	return limit
}
