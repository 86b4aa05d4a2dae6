package progress

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// barThrottle is the least time between two redraws of the bar: redrawing on every
// sample of a fast stage would cost more than the stage.
const barThrottle = 100 * time.Millisecond

// Bar draws each stage as a progress bar redrawn in place, for a terminal:
//
//	pgd:  32% |█████████         | (320/1000, 4 samples/s) [1m18s:2m46s]
//
// (description, percentage, bar, count/total, rate, [elapsed:ETA]). Done clears
// the bar and prints the stage's summary line in its place, so a finished run
// leaves one line per stage. A stage with total 0 draws no bar.
// Errors writing to w are ignored: a broken progress stream must not stop a run.
type Bar struct {
	mu  sync.Mutex
	w   io.Writer
	bar *progressbar.ProgressBar // nil between stages and for a stage with total 0
}

// NewBar returns a Bar drawing on w; the bar fits w's width when w is a terminal.
// A nil w discards everything.
func NewBar(w io.Writer) *Bar {
	if w == nil {
		w = io.Discard
	}
	return &Bar{w: w}
}

// Start begins stage with total samples and draws its empty bar. A stage left
// without Done is cleared first.
func (b *Bar) Start(stage string, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clear()
	if total <= 0 {
		return
	}
	b.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(stage+":"),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("samples"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(barThrottle),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)
}

// Add records n more samples done and redraws the bar (at most every barThrottle,
// and always when the count reaches total).
func (b *Bar) Add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar == nil || n == 0 {
		return
	}
	// The only errors are a count over total (the bar stays full) and write
	// errors, which a display ignores.
	_ = b.bar.Add(n)
}

// Done clears the bar and prints summary (nothing when it is empty).
func (b *Bar) Done(summary string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clear()
	if summary != "" {
		fmt.Fprintln(b.w, summary)
	}
}

// clear erases the current bar, if any, and forgets it. The caller holds b.mu.
func (b *Bar) clear() {
	if b.bar == nil {
		return
	}
	_ = b.bar.Clear()
	_ = b.bar.Exit()
	b.bar = nil
}
