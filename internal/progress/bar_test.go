package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// lastLine is what a terminal shows on the last line of out: the text after the
// last newline-terminated line's preceding carriage return.
func lastLine(out string) string {
	out = strings.TrimSuffix(out, "\n")
	if i := strings.LastIndexAny(out, "\r\n"); i >= 0 {
		out = out[i+1:]
	}
	return out
}

func TestBar(t *testing.T) {
	const sum = "pgd: 3/97 adversarial examples found (2.10s)"
	cases := []struct {
		name  string
		total int
		adds  []int
		// drawn: the output holds a drawn bar with this count.
		drawn string
	}{
		{name: "full", total: 50, adds: repeat(1, 50), drawn: "(0/50, "},
		{name: "stopped early", total: 50, adds: []int{3, 4}, drawn: "(0/50, "},
		{name: "over total", total: 5, adds: []int{4, 4, 4}, drawn: "(0/5, "},
		{name: "no total", total: 0, adds: []int{1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			b := NewBar(&buf)
			b.Start("pgd", tc.total)
			for _, n := range tc.adds {
				b.Add(n)
			}
			b.Done(sum)
			out := buf.String()
			if !strings.HasSuffix(out, sum+"\n") || lastLine(out) != sum {
				t.Errorf("output does not end with the summary line: %q", out)
			}
			if tc.drawn == "" {
				if out != sum+"\n" {
					t.Errorf("stage without total drew something: %q", out)
				}
				return
			}
			if !strings.Contains(out, "pgd:") || !strings.Contains(out, tc.drawn) {
				t.Errorf("no bar with %q in %q", tc.drawn, out)
			}
			// The summary starts on a line the bar was wiped from: the
			// carriage return before it follows a run of blanks.
			before := strings.TrimSuffix(out, sum+"\n")
			if !strings.HasSuffix(before, " \r") {
				t.Errorf("bar not cleared before the summary: %q", out)
			}
		})
	}
}

// TestBarStagesAndConcurrency: two stages, the first with Add from many
// goroutines; each summary follows its cleared bar, and the second stage draws
// from 0 again.
func TestBarStagesAndConcurrency(t *testing.T) {
	var buf bytes.Buffer
	b := NewBar(&buf)
	b.Start("ibp", 400)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				b.Add(1)
			}
		})
	}
	wg.Wait()
	b.Done("ibp: 120/400 certified")
	b.Start("crown", 10)
	b.Add(2)
	b.Done("crown: 7/10 certified")
	out := buf.String()
	i := strings.Index(out, "ibp: 120/400 certified\n")
	if i < 0 || !strings.Contains(out[i:], "(0/10, ") || lastLine(out) != "crown: 7/10 certified" {
		t.Errorf("unexpected output %q", out)
	}
	if !strings.Contains(out[:i], "(0/400, ") {
		t.Errorf("first stage's bar missing: %q", out[:i])
	}
}

func TestBarNilWriter(t *testing.T) {
	b := NewBar(nil)
	b.Start("x", 2)
	b.Add(5)
	b.Done("x done")
}

func repeat(v, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}
