package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestRunTestFamily runs the tiny "test" family of the shared benchmarks: all
// five instances answered, none wrong.
func TestRunTestFamily(t *testing.T) {
	dir := os.Getenv("CERTIFY_VNNCOMP")
	if dir == "" {
		dir = "/work/shared/benchmarks/vnncomp"
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skip(err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--timeout", "10s", "--family", "test", dir}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	var row []string
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "test" {
			row = f
		}
	}
	// family instances sat unsat solved wrong timeout errors …
	if len(row) < 8 || row[1] != "5" || row[4] != "5" || row[5] != "0" || row[7] != "0" {
		t.Errorf("row %q in\n%s", row, out.String())
	}
}

// TestUsage: a bad flag or two folders is exit 2.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"--nope"}, {"a", "b"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
