package lp

import (
	"errors"
	"fmt"
)

// Status is the outcome of a solve.
type Status int

const (
	// Optimal: X is an optimal solution (within the backend's tolerances).
	Optimal Status = iota
	// Infeasible: no x satisfies the constraints.
	Infeasible
	// Unbounded: the problem is feasible and the objective is unbounded below.
	Unbounded
	// Failed: the backend stopped without an answer (numerical trouble,
	// iteration limit); nothing is known.
	Failed
)

func (s Status) String() string {
	switch s {
	case Optimal:
		return "optimal"
	case Infeasible:
		return "infeasible"
	case Unbounded:
		return "unbounded"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Solution is the result of a solve. X, Objective and Duals are meaningful only
// when Status is Optimal.
type Solution struct {
	Status    Status
	X         []float64 // primal, one per column
	Objective float64   // Obj·X
	// Duals are the row duals y (one per row, CLP's row prices): at an optimum
	// the reduced costs are Obj − Aᵀy, y_i ≥ 0 when row i is at its lower bound
	// and y_i ≤ 0 at its upper bound. They are nil when the backend could not
	// compute them (gonum's solve of the dual LP failed numerically).
	Duals []float64
	// Iterations is the number of simplex iterations of this solve (0 when the
	// backend does not report it).
	Iterations int
}

var (
	// ErrInfeasible is wrapped by Solve's error when the problem is infeasible.
	ErrInfeasible = errors.New("lp: problem is infeasible")
	// ErrUnbounded is wrapped by Solve's error when the objective is unbounded.
	ErrUnbounded = errors.New("lp: problem is unbounded")
	// ErrFailed is wrapped by Solve's error when the backend gave no answer.
	ErrFailed = errors.New("lp: solver failed")
	// ErrClosed is returned by every method of a closed Solver.
	ErrClosed = errors.New("lp: solver is closed")
	// ErrNoProblem is returned by methods called before a successful Load.
	ErrNoProblem = errors.New("lp: no problem loaded")
)

// Solver solves one Problem at a time and keeps state between solves. A Solver
// is not safe for concurrent use.
type Solver interface {
	// Load replaces the problem (validated by Problem.Validate; the slices are
	// copied). The basis is reset.
	Load(p *Problem) error
	// SetObjective replaces the objective, keeping the last basis as a warm start.
	SetObjective(obj []float64) error
	// SetColBounds changes one column's bounds (for branching), keeping the basis.
	SetColBounds(j int, lo, hi float64) error
	// Solve solves the current problem. Unless the status is Optimal, the error
	// wraps ErrInfeasible, ErrUnbounded or ErrFailed, and the Solution (non-nil)
	// carries the status.
	Solve() (*Solution, error)
	// Close releases the solver's resources. It is safe to call twice.
	Close()
}

// statusErr returns the error Solve returns with status s (nil for Optimal).
func statusErr(backend string, s Status) error {
	switch s {
	case Optimal:
		return nil
	case Infeasible:
		return fmt.Errorf("%s: %w", backend, ErrInfeasible)
	case Unbounded:
		return fmt.Errorf("%s: %w", backend, ErrUnbounded)
	}
	return fmt.Errorf("%s: %w", backend, ErrFailed)
}

// checkObjective validates a replacement objective of n coefficients.
func checkObjective(obj []float64, n int) error {
	if len(obj) != n {
		return fmt.Errorf("lp: objective has %d coefficients, want %d", len(obj), n)
	}
	for j, v := range obj {
		if err := checkFinite("objective coefficient", j, v); err != nil {
			return err
		}
	}
	return nil
}

// checkColBounds validates new bounds for column j of n.
func checkColBounds(j, n int, lo, hi float64) error {
	if j < 0 || j >= n {
		return fmt.Errorf("lp: column %d out of range [0, %d)", j, n)
	}
	return checkBounds("column", j, lo, hi)
}
