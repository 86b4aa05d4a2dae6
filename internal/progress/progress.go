// Package progress shows a long run's progress on stderr: a bar with rate and ETA
// when it is a terminal, plain periodic lines otherwise. Its displays implement
// pipeline.Progress.
package progress

import (
	"fmt"
	"io"
)

// Lines writes each stage's summary line to w.
type Lines struct{ w io.Writer }

// New returns the display for w.
func New(w io.Writer) *Lines { return &Lines{w: w} }

// Start begins a stage.
func (l *Lines) Start(stage string, total int) {}

// Add counts n samples done.
func (l *Lines) Add(n int) {}

// Done ends the stage with its summary line.
func (l *Lines) Done(summary string) { fmt.Fprintln(l.w, summary) }
