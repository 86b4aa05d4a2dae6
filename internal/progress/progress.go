// Package progress shows a long run's progress on stderr: a bar with rate and ETA
// when it is a terminal, plain periodic lines otherwise (a log file or a CI job,
// where a redrawn bar would leave thousands of carriage returns). Its displays
// implement pipeline.Progress; the package does not import pipeline so that any
// command can use it without pulling in the whole run.
package progress

import (
	"io"
	"os"

	"golang.org/x/term"
)

// Display is what every display here implements; it has the method set of
// pipeline.Progress, so a Display can be put in pipeline.Config.Progress.
// Add may be called from several goroutines at once.
type Display interface {
	// Start begins stage with total samples to do (0 when it has none).
	Start(stage string, total int)
	// Add records n more samples of the current stage done.
	Add(n int)
	// Done ends the current stage and prints its one-line summary.
	Done(summary string)
}

// New returns the display for w: a Bar when w is a terminal, where redrawing a line
// in place is cheap and readable, and Lines with DefaultInterval otherwise.
func New(w io.Writer) Display {
	if isTerminal(w) {
		return NewBar(w)
	}
	return NewLines(w, DefaultInterval, nil)
}

// isTerminal reports whether w is an *os.File open on a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}
