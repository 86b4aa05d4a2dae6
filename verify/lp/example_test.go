package lp_test

import (
	"errors"
	"fmt"
	"math"

	"github.com/certify-dev/certify/verify/lp"
)

// Minimise −2x − y subject to x + y ≤ 4, x + 3y ≤ 6, 0 ≤ x ≤ 3, y ≥ 0, then
// branch on x ≤ 1, then make the problem infeasible.
func Example() {
	inf := math.Inf(1)
	p := &lp.Problem{
		Obj:   []float64{-2, -1},
		ColLo: []float64{0, 0}, ColHi: []float64{3, inf},
		RowLo: []float64{-inf, -inf}, RowHi: []float64{4, 6},
		// Column 0 is (1, 1), column 1 is (1, 3).
		ColStart: []int{0, 2, 4},
		RowIndex: []int{0, 1, 0, 1},
		Values:   []float64{1, 1, 1, 3},
	}
	s := lp.New()
	defer s.Close()
	if err := s.Load(p); err != nil {
		fmt.Println(err)
		return
	}
	sol, err := s.Solve()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%v: x = %.3g, objective %.3g\n", sol.Status, sol.X, sol.Objective)

	_ = s.SetColBounds(0, 0, 1) // warm start from the last basis
	sol, _ = s.Solve()
	fmt.Printf("x ≤ 1: x = %.3g, objective %.3g\n", sol.X, sol.Objective)

	_ = s.SetColBounds(1, 5, inf) // x + 3y ≤ 6 cannot hold
	sol, err = s.Solve()
	fmt.Println(sol.Status, errors.Is(err, lp.ErrInfeasible))
	// Output:
	// optimal: x = [3 1], objective -7
	// x ≤ 1: x = [1 1.67], objective -3.67
	// infeasible true
}
