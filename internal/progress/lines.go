package progress

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// DefaultInterval is the least time between two progress lines of a stage: often
// enough to see a long run is alive, rare enough to keep a log readable.
const DefaultInterval = 10 * time.Second

// Lines prints plain progress lines, for a writer that is not a terminal:
//
//	pgd: 320/1000 (32%), 4.1 samples/s, ETA 2m46s
//
// at most one every interval per stage, only when samples get done (a stalled
// stage has nothing new to say), and the stage's summary line at Done. A stage
// with total 0 prints only its summary. The rate is the stage's mean since its
// Start, so the ETA assumes the remaining samples cost as much as the done ones.
// Errors writing to w are ignored: a broken progress stream must not stop a run.
type Lines struct {
	mu       sync.Mutex
	w        io.Writer
	interval time.Duration
	now      func() time.Time

	stage       string
	total, done int
	start, last time.Time
}

// NewLines returns Lines writing to w at most one line per interval per stage
// (DefaultInterval when interval <= 0), reading the time from now (time.Now when
// nil; tests pass a fake clock). A nil w discards everything.
func NewLines(w io.Writer, interval time.Duration, now func() time.Time) *Lines {
	if w == nil {
		w = io.Discard
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	if now == nil {
		now = time.Now
	}
	return &Lines{w: w, interval: interval, now: now}
}

// Start begins stage with total samples; the count, the rate and the interval
// restart from now.
func (l *Lines) Start(stage string, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	l.stage, l.total, l.done = stage, total, 0
	l.start, l.last = t, t
}

// Add records n more samples done and prints a line when interval has passed
// since the stage started or since its last line.
func (l *Lines) Add(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done += n
	if l.total <= 0 {
		return
	}
	t := l.now()
	if t.Sub(l.last) < l.interval {
		return
	}
	l.last = t
	fmt.Fprintln(l.w, line(l.stage, l.done, l.total, t.Sub(l.start)))
}

// Done prints summary (nothing when it is empty) and ends the stage.
func (l *Lines) Done(summary string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if summary != "" {
		fmt.Fprintln(l.w, summary)
	}
	l.stage, l.total, l.done = "", 0, 0
}

// line formats one progress line: done of total after elapsed. Without a rate
// (nothing done yet, or no time passed) it leaves out the rate and the ETA.
func line(stage string, done, total int, elapsed time.Duration) string {
	s := fmt.Sprintf("%s: %d/%d (%d%%)", stage, done, total, percent(done, total))
	if done <= 0 || elapsed <= 0 {
		return s
	}
	rate := float64(done) / elapsed.Seconds()
	left := max(total-done, 0)
	eta := time.Duration(float64(left) / rate * float64(time.Second)).Round(time.Second)
	return fmt.Sprintf("%s, %s, ETA %v", s, formatRate(rate), eta)
}

// percent is the whole percentage of total that done is, rounded down so that
// 100% means finished.
func percent(done, total int) int {
	if total <= 0 {
		return 0
	}
	return int(int64(done) * 100 / int64(total))
}

// formatRate writes rate (samples per second) with a unit that keeps one decimal
// meaningful: a complete verifier can take minutes per sample.
func formatRate(rate float64) string {
	switch {
	case rate >= 1:
		return fmt.Sprintf("%.1f samples/s", rate)
	case rate*60 >= 1:
		return fmt.Sprintf("%.1f samples/min", rate*60)
	default:
		return fmt.Sprintf("%.2f samples/h", rate*3600)
	}
}
