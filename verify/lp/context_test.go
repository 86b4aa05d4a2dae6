package lp

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// SolveContext stops a long CLP solve when its context ends, promptly, and the
// solver then solves the same problem to the optimum a fresh solver finds; a
// context that does not end changes nothing.
func TestSolveContext(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	p := randomLP(rng, 800, 600, 0.6, true)
	fresh := New()
	defer fresh.Close()
	if err := fresh.Load(p); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	want, err := fresh.Solve()
	full := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the full solve takes %v, %d iterations", full, want.Iterations)

	s := New()
	defer s.Close()
	if err := s.Load(p); err != nil {
		t.Fatal(err)
	}
	_, interruptible := s.(interrupter)
	if interruptible && full > 200*time.Millisecond {
		ctx, cancel := context.WithTimeout(context.Background(), full/10)
		start = time.Now()
		_, err = SolveContext(ctx, s)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("stopped solve: %v, want the context's error", err)
		}
		if took > full/2 {
			t.Errorf("the stopped solve took %v of the full %v", took, full)
		}
		if err := s.Load(p); err != nil { // from scratch, as fresh did
			t.Fatal(err)
		}
	}
	got, err := SolveContext(context.Background(), s)
	if err != nil {
		t.Fatalf("solve after a stop: %v", err)
	}
	if got.Status != Optimal || math.Abs(got.Objective-want.Objective) > 1e-9*max(1, math.Abs(want.Objective)) || got.Iterations != want.Iterations {
		t.Errorf("after a stop: %v, objective %v in %d iterations; fresh solver %v in %d", got.Status, got.Objective, got.Iterations, want.Objective, want.Iterations)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := SolveContext(ctx, s); !errors.Is(err, context.Canceled) {
		t.Errorf("ended context: %v", err)
	}
}
