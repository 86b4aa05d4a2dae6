package lp

import (
	"context"
	"fmt"
	"sync"
)

// interrupter is a Solver whose running Solve another goroutine can stop: the
// solve returns soon after (status Failed), and the solver stays usable once
// resume is called.
type interrupter interface {
	interrupt()
	resume()
}

// SolveContext is s.Solve that ends when ctx does: when ctx ends during the
// solve, the backend is stopped (CLP between two simplex iterations; a backend
// that cannot be stopped finishes its solve first) and the error wraps
// ctx.Err(). A solve that ctx does not end is exactly s.Solve: stopping is
// armed, never used, so the simplex path and its answer do not change.
func SolveContext(ctx context.Context, s Solver) (*Solution, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lp: %w", err)
	}
	in, ok := s.(interrupter)
	if !ok || ctx.Done() == nil {
		sol, err := s.Solve()
		if err != nil && ctx.Err() != nil {
			return sol, fmt.Errorf("lp: %w", ctx.Err())
		}
		return sol, err
	}
	var mu sync.Mutex
	solving, stopped := true, false
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			mu.Lock()
			if solving {
				in.interrupt()
				stopped = true
			}
			mu.Unlock()
		case <-done:
		}
	}()
	sol, err := s.Solve()
	mu.Lock()
	solving = false
	mu.Unlock()
	close(done)
	if stopped {
		in.resume()
		return sol, fmt.Errorf("lp: solve stopped: %w", ctx.Err())
	}
	return sol, err
}
