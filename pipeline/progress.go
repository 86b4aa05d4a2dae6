package pipeline

import "sync"

// Progress follows a run: the pipeline calls Start when a stage begins (the clean
// pass, each method, each attack), Add as samples of it finish, and Done when it
// ends, with a one-line summary ("pgd: 3/97 adversarial examples found (2.10s)").
// Add may be called from several goroutines at once; Start and Done are not
// concurrent with anything. Package internal/progress draws it as a bar on a
// terminal and as periodic lines elsewhere.
type Progress interface {
	// Start begins stage with total samples to do (0 when it has none).
	Start(stage string, total int)
	// Add records n more samples of the current stage done.
	Add(n int)
	// Done ends the current stage.
	Done(summary string)
}

// progress makes a nil Progress a no-op and serialises Add.
type progress struct {
	mu sync.Mutex
	p  Progress
}

func (pr *progress) start(stage string, total int) {
	if pr.p != nil {
		pr.p.Start(stage, total)
	}
}

func (pr *progress) add(n int) {
	if pr.p == nil || n == 0 {
		return
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.p.Add(n)
}

func (pr *progress) done(summary string) {
	if pr.p != nil {
		pr.p.Done(summary)
	}
}
