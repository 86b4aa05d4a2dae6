package progress

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand; safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
	// step is added after every reading (0: the clock stands still).
	step time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// call is one call on a display at a time since the test's start.
type call struct {
	at    time.Duration
	op    string // "start", "add" or "done"
	stage string // start
	n     int    // start: total; add: n
	sum   string // done
}

func TestLinesOutput(t *testing.T) {
	const sum = "pgd: 3/97 adversarial examples found (2.10s)"
	cases := []struct {
		name  string
		calls []call
		want  []string
	}{
		{
			// 320 done in 78 s: 4.103/s, 680 left -> 165.75 s -> 2m46s.
			// 500 done in 88 s: 5.682/s, 500 left -> 88 s -> 1m28s.
			name: "a line per interval, none before",
			calls: []call{
				{at: 0, op: "start", stage: "pgd", n: 1000},
				{at: 5 * time.Second, op: "add", n: 100},
				{at: 9999 * time.Millisecond, op: "add", n: 0},
				{at: 78 * time.Second, op: "add", n: 220},
				{at: 80 * time.Second, op: "add", n: 10},
				{at: 87 * time.Second, op: "add", n: 100},
				{at: 88 * time.Second, op: "add", n: 70},
				{at: 90 * time.Second, op: "done", sum: sum},
			},
			want: []string{
				"pgd: 320/1000 (32%), 4.1 samples/s, ETA 2m46s",
				"pgd: 500/1000 (50%), 5.7 samples/s, ETA 1m28s",
				sum,
			},
		},
		{
			name: "exactly one interval prints",
			calls: []call{
				{at: 0, op: "start", stage: "crown", n: 8},
				{at: 10 * time.Second, op: "add", n: 2},
				{at: 11 * time.Second, op: "done", sum: "crown: 2/8 certified"},
			},
			// 2 in 10 s: 0.2/s = 12/min; 6 left -> 30 s.
			want: []string{"crown: 2/8 (25%), 12.0 samples/min, ETA 30s", "crown: 2/8 certified"},
		},
		{
			name: "total 0 prints only the summary",
			calls: []call{
				{at: 0, op: "start", stage: "clean", n: 0},
				{at: time.Hour, op: "add", n: 5},
				{at: time.Hour, op: "done", sum: "clean: 97/100 correct"},
			},
			want: []string{"clean: 97/100 correct"},
		},
		{
			// Without the reset the rate would count from 0 s (11 samples
			// in 230 s) and the interval would have passed at once.
			name: "a new stage resets count, rate and interval",
			calls: []call{
				{at: 0, op: "start", stage: "pgd", n: 10},
				{at: 100 * time.Second, op: "add", n: 10},
				{at: 100 * time.Second, op: "done", sum: "pgd done"},
				{at: 200 * time.Second, op: "start", stage: "ibp", n: 10},
				{at: 205 * time.Second, op: "add", n: 1},
				{at: 230 * time.Second, op: "add", n: 0},
				{at: 231 * time.Second, op: "done", sum: "ibp done"},
			},
			// pgd: 10 in 100 s = 6/min, 0 left. ibp: 1 in 30 s = 2/min, 9 left -> 270 s.
			want: []string{
				"pgd: 10/10 (100%), 6.0 samples/min, ETA 0s",
				"pgd done",
				"ibp: 1/10 (10%), 2.0 samples/min, ETA 4m30s",
				"ibp done",
			},
		},
		{
			name: "nothing done yet: no rate, no ETA",
			calls: []call{
				{at: 0, op: "start", stage: "bab", n: 4},
				{at: time.Minute, op: "add", n: 0},
				{at: time.Minute, op: "done", sum: ""},
			},
			want: []string{"bab: 0/4 (0%)"},
		},
		{
			// 1 in 2 h = 0.5/h; 2 left -> 4 h.
			name: "slow stage in samples per hour",
			calls: []call{
				{at: 0, op: "start", stage: "milp", n: 3},
				{at: 2 * time.Hour, op: "add", n: 1},
			},
			want: []string{"milp: 1/3 (33%), 0.50 samples/h, ETA 4h0m0s"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)
			clock := &fakeClock{t: t0}
			var buf bytes.Buffer
			l := NewLines(&buf, 10*time.Second, clock.now)
			for _, c := range tc.calls {
				clock.set(t0.Add(c.at))
				switch c.op {
				case "start":
					l.Start(c.stage, c.n)
				case "add":
					l.Add(c.n)
				case "done":
					l.Done(c.sum)
				}
			}
			got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if buf.Len() == 0 {
				got = nil
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestLinesDefaults: a non-positive interval means DefaultInterval, a nil clock
// the real one and a nil writer io.Discard (no panic).
func TestLinesDefaults(t *testing.T) {
	l := NewLines(nil, 0, nil)
	if l.interval != DefaultInterval {
		t.Errorf("interval %v, want %v", l.interval, DefaultInterval)
	}
	l.Start("x", 3)
	l.Add(5)
	l.Done("x done")

	clock := &fakeClock{t: time.Unix(0, 0)}
	var buf bytes.Buffer
	l = NewLines(&buf, -time.Second, clock.now)
	l.Start("pgd", 10)
	clock.set(time.Unix(9, 0))
	l.Add(1)
	if buf.Len() != 0 {
		t.Errorf("line before the default 10 s interval: %q", buf.String())
	}
	clock.set(time.Unix(10, 0))
	l.Add(1)
	// 2 in 10 s = 12/min, 8 left -> 40 s.
	if want := "pgd: 2/10 (20%), 12.0 samples/min, ETA 40s\n"; buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

func TestFormatRate(t *testing.T) {
	cases := []struct {
		rate float64
		want string
	}{
		{4.1, "4.1 samples/s"},
		{1, "1.0 samples/s"},
		{1234.56, "1234.6 samples/s"},
		{0.5, "30.0 samples/min"},
		{1.0 / 60, "1.0 samples/min"},
		{1.0 / 7200, "0.50 samples/h"},
	}
	for _, tc := range cases {
		if got := formatRate(tc.rate); got != tc.want {
			t.Errorf("formatRate(%g) = %q, want %q", tc.rate, got, tc.want)
		}
	}
}

func TestLine(t *testing.T) {
	cases := []struct {
		done, total int
		elapsed     time.Duration
		want        string
	}{
		{320, 1000, 78 * time.Second, "s: 320/1000 (32%), 4.1 samples/s, ETA 2m46s"},
		{999, 1000, 999 * time.Second, "s: 999/1000 (99%), 1.0 samples/s, ETA 1s"},
		{12, 10, 6 * time.Second, "s: 12/10 (120%), 2.0 samples/s, ETA 0s"},
		{0, 10, time.Second, "s: 0/10 (0%)"},
		{3, 10, 0, "s: 3/10 (30%)"},
	}
	for _, tc := range cases {
		if got := line("s", tc.done, tc.total, tc.elapsed); got != tc.want {
			t.Errorf("line(%d, %d, %v) = %q, want %q", tc.done, tc.total, tc.elapsed, got, tc.want)
		}
	}
}

var lineRE = regexp.MustCompile(`^pgd: (\d+)/(\d+) \(\d+%\)(, .* samples/(s|min|h), ETA \S+)?$`)

// TestLinesConcurrentAdd: Add from many goroutines sums exactly, and lines come
// out whole with counts that never go down. The clock moves 1 s per reading and
// the interval is 1 s, so nearly every Add prints.
func TestLinesConcurrentAdd(t *testing.T) {
	const goroutines, adds, n = 16, 250, 3
	const total = goroutines * adds * n
	clock := &fakeClock{t: time.Unix(0, 0), step: time.Second}
	var buf bytes.Buffer
	l := NewLines(&buf, time.Second, clock.now)
	l.Start("pgd", total)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range adds {
				l.Add(n)
			}
		})
	}
	wg.Wait()
	l.Add(0)
	l.Done("pgd done")

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) < 2 || lines[len(lines)-1] != "pgd done" {
		t.Fatalf("want progress lines then the summary, got %d lines ending %q", len(lines), lines[len(lines)-1])
	}
	prev := -1
	for i, s := range lines[:len(lines)-1] {
		m := lineRE.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("line %d malformed: %q", i, s)
		}
		done, _ := strconv.Atoi(m[1])
		if done < prev || done%n != 0 || m[2] != strconv.Itoa(total) {
			t.Fatalf("line %d: %q after count %d", i, s, prev)
		}
		prev = done
	}
	if want := fmt.Sprintf("pgd: %d/%d (100%%)", total, total); !strings.HasPrefix(lines[len(lines)-2], want) {
		t.Errorf("last progress line %q, want prefix %q", lines[len(lines)-2], want)
	}
}
