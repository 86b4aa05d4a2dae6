package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/certify-dev/certify/internal/cli"
)

// TestMain lets the shard test run this test binary as the certify command: with
// CERTIFY_RUN_MAIN=1 it is certify.
func TestMain(m *testing.M) {
	if os.Getenv("CERTIFY_RUN_MAIN") == "1" {
		os.Exit(runContext(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestResolveShard(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flag   string
		shards int
		env    map[string]string
		want   string // "K/N from", or the error
	}{
		{"none", "", 0, nil, "0/1 "},
		{"flag", "2/5", 0, nil, "2/5 --shard"},
		{"flag beats env", "1/2", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, "1/2 --shard"},
		{"flag and agreeing shards", "1/2", 2, nil, "1/2 --shard"},
		{"slurm", "", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, "3/4 SLURM_ARRAY_TASK_ID"},
		{"slurm from 1", "", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}, "3/4 SLURM_ARRAY_TASK_ID"},
		{"slurm with step", "", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_COUNT": "4"}, "is not one of 4 consecutive tasks"},
		{"slurm without count", "", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "1"}, "SLURM_ARRAY_TASK_COUNT is not"},
		{"slurm not a number", "", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"}, `SLURM_ARRAY_TASK_ID="x": not an integer`},
		{"slurm and other shards", "", 3, map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4"}, "--shards 3, but SLURM_ARRAY_TASK_ID says 4"},
		{"kubernetes", "", 3, map[string]string{"JOB_COMPLETION_INDEX": "2"}, "2/3 JOB_COMPLETION_INDEX"},
		{"kubernetes without shards", "", 0, map[string]string{"JOB_COMPLETION_INDEX": "2"}, "give --shards N"},
		{"kubernetes out of range", "", 2, map[string]string{"JOB_COMPLETION_INDEX": "2"}, "want 0 <= index < --shards 2"},
		{"shards alone", "", 4, nil, "without a shard index"},
		{"shards 1 alone", "", 1, nil, "0/1 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := resolveShard(tc.flag, tc.shards, func(k string) string { return tc.env[k] })
			got := fmt.Sprintf("%s %s", s, s.from)
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestShardOutputPath(t *testing.T) {
	s := shard{index: 2, count: 8}
	for in, want := range map[string]string{"out.json": "out.2-of-8.json", "dir/r.csv": "dir/r.2-of-8.csv", "noext": "noext.2-of-8", "-": "-", "": ""} {
		if got := s.outputPath(in); got != want {
			t.Errorf("outputPath(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (shard{count: 1}).outputPath("out.json"); got != "out.json" {
		t.Errorf("unsharded: %q", got)
	}
}

func TestParseRadii(t *testing.T) {
	for in, want := range map[string]string{
		"0.1":                 "[0.1]",
		"0.01,0.02, 0.05":     "[0.01 0.02 0.05]",
		"0:0.3:0.1":           "[0 0.1 0.2 0.3]",
		"0:0.25:0.1":          "[0 0.1 0.2]",
		"0.5,0:0.02:0.01":     "[0.5 0 0.01 0.02]",
		"0.1:0.1:1":           "[0.1]",
		"0,0.001:0.003:0.001": "[0 0.001 0.002 0.003]",
	} {
		got, err := parseRadii(in)
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("parseRadii(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}

// timings matches what differs between two runs of the same evaluation by
// construction: the start time and the seconds per stage.
var timings = regexp.MustCompile(`"time": "[^"]*"|"seconds": \{[^}]*\}`)

// Three shards run as three processes, each finding its shard a different way
// (--shard, a Slurm array task's environment, a Kubernetes Indexed Job's with
// --shards), with one command line otherwise; certify merge joins their reports
// into the unsharded run's report, byte for byte apart from timings, whatever the
// number of cores of each process. The run sweeps two radii with bound methods,
// white- and black-box attacks and the audit, so every part of the report is
// exercised.
func TestShardedRunMerges(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 5 processes")
	}
	model, data, labels := shippedFiles(t)
	args := []string{"-n", "80", "--radius", "0.02,0.06", "--methods", "ibp,crown", "--attacks", "pgd,square",
		"--queries", "200", "--audit-effort", "2", "--data", data, "--labels", labels, "--json", "out.json", "--quiet", model}
	command := func(dir string, env []string, extra ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], append(extra, args...)...)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "CERTIFY_RUN_MAIN=1"), env...)
		return cmd
	}
	whole, parts := t.TempDir(), t.TempDir()
	// The whole run on one core, the shards on 3 and 2: the cores change nothing.
	if out, err := command(whole, []string{"GOMAXPROCS=1"}).CombinedOutput(); err != nil {
		t.Fatalf("unsharded run: %v\n%s", err, out)
	}
	shards := []*exec.Cmd{
		command(parts, []string{"GOMAXPROCS=3"}, "--shard", "0/3"),
		command(parts, []string{"SLURM_ARRAY_TASK_ID=2", "SLURM_ARRAY_TASK_COUNT=3", "SLURM_ARRAY_TASK_MIN=1"}),
		command(parts, []string{"JOB_COMPLETION_INDEX=2"}, "--shards", "3"),
	}
	outs := make([]bytes.Buffer, len(shards))
	for i, c := range shards {
		c.Stdout, c.Stderr = &outs[i], &outs[i]
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range shards {
		if err := c.Wait(); err != nil {
			t.Fatalf("shard %d: %v\n%s", i, err, outs[i].String())
		}
	}
	var files []string
	for k := 2; k >= 0; k-- { // any order
		files = append(files, filepath.Join(parts, fmt.Sprintf("out.%d-of-3.json", k)))
	}
	merged := filepath.Join(parts, "merged.json")
	code, stdout, stderr := runCmd(append([]string{"merge", "--json", merged}, files...)...)
	if code != cli.ExitOK {
		t.Fatalf("merge: exit %d\n%s%s", code, stdout, stderr)
	}
	want, err := os.ReadFile(filepath.Join(whole, "out.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(merged)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(want, []byte(`"sweep"`)) || !bytes.Contains(want, []byte(`"square": true`)) {
		t.Fatalf("the run lacks a sweep or a successful attack, so the test shows little:\n%s", want)
	}
	w, g := timings.ReplaceAll(want, nil), timings.ReplaceAll(got, nil)
	if !bytes.Equal(w, g) {
		wl, gl := strings.Split(string(w), "\n"), strings.Split(string(g), "\n")
		for i := range min(len(wl), len(gl)) {
			if wl[i] != gl[i] {
				t.Fatalf("merged report differs from the unsharded run's at line %d:\n got %s\nwant %s", i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("merged report has %d lines, the unsharded run's %d", len(gl), len(wl))
	}
}

// Merge refuses parts that are not the shards of one run, and joins those that are.
func TestMergeErrors(t *testing.T) {
	f := newFixture(t, 40) // blocks of 32: shard 0 of 2 has 32 samples, shard 1 has 8
	dir := t.TempDir()
	runs := 0
	run := func(extra ...string) string { // returns the report's path
		t.Helper()
		runs++
		out := filepath.Join(dir, fmt.Sprintf("r%d.json", runs))
		args := append(append([]string{"--data", f.data, "--labels", f.labels, "--json", out, "--quiet", "--attacks", "fgsm"}, extra...), f.model)
		if code, _, stderr := runCmd(args...); code != cli.ExitOK {
			t.Fatalf("%q: exit %d\n%s", args, code, stderr)
		}
		if len(extra) > 1 && extra[0] == "--shard" {
			k, n, _ := strings.Cut(extra[1], "/")
			out = filepath.Join(dir, fmt.Sprintf("r%d.%s-of-%s.json", runs, k, n))
		}
		return out
	}
	s0 := run("--shard", "0/2")
	s1 := run("--shard", "1/2")
	other := run("--shard", "1/2", "--seed", "7")
	whole := run("--seed", "1")
	s0of3 := run("--shard", "0/3")
	s1of3 := run("--shard", "1/3")
	s2of3 := run("--shard", "2/3") // empty
	// The shards of a job array run one command line (so one --json path); here
	// each run wrote its own, so the command lines differ: make them the same.
	for _, p := range []string{s0, s1, other, s0of3, s1of3, s2of3} {
		r, err := readReport(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range r.Command {
			if strings.HasSuffix(a, ".json") {
				r.Command[i] = "out.json"
			}
		}
		r.Parameters["json"] = "out.json"
		if err := writeJSONFile(p, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{[]string{s0}, "shards [1] of 2 are missing"},
		{[]string{s0, s0}, "shard 0 of 2 given twice"},
		{[]string{s0, other}, `report 2 is not a shard of the same run as report 1: parameter "seed" ("7"; report 1 "1") differs`},
		{[]string{s1, s0, s0of3}, "report 3 is shard 0 of 3"},
		{[]string{s0, whole}, "not the report of a shard"},
		{[]string{s0, s0of3}, "report 2 is shard 0 of 3"},
		{[]string{s0, filepath.Join(dir, "missing.json")}, "missing.json"},
	} {
		code, stdout, stderr := runCmd(append([]string{"merge"}, tc.files...)...)
		if code != cli.ExitError || !strings.Contains(stderr, tc.want) {
			t.Errorf("merge %v: exit %d, stderr %q, stdout %q; want exit 1 and %q", tc.files, code, stderr, stdout, tc.want)
		}
	}
	if code, _, stderr := runCmd("merge"); code != cli.ExitUsage || !strings.Contains(stderr, "no shard reports") {
		t.Errorf("merge without files: exit %d, %q", code, stderr)
	}
	// The two shards merge into the whole run (whose command line differs: it
	// spells out --seed 1 and has its own --json path).
	merged := filepath.Join(dir, "merged.json")
	if code, _, stderr := runCmd("merge", "--quiet", "--json", merged, s1, s0); code != cli.ExitOK {
		t.Fatalf("merge: exit %d\n%s", code, stderr)
	}
	want, err := readReport(whole)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readReport(merged)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(resultsOnly(*want), resultsOnly(*got)) {
		t.Errorf("merged shards differ from the whole run:\n got %+v\nwant %+v", resultsOnly(*got), resultsOnly(*want))
	}
	// Three shards, the last one empty, merge into the same.
	if code, _, stderr := runCmd("merge", "--quiet", "--json", merged, s2of3, s0of3, s1of3); code != cli.ExitOK {
		t.Fatalf("merge: exit %d\n%s", code, stderr)
	}
	if got, err = readReport(merged); err != nil {
		t.Fatal(err)
	}
	if empty, err := readReport(s2of3); err != nil || len(empty.Samples) != 0 {
		t.Fatalf("shard 2 of 3: %v, %d samples, want none", err, len(empty.Samples))
	}
	if !reflect.DeepEqual(resultsOnly(*want), resultsOnly(*got)) {
		t.Errorf("merged 3 shards differ from the whole run")
	}
}

// Ranges that would never end, or end past the limit, are refused at once.
func TestParseRadiiLimits(t *testing.T) {
	for in, want := range map[string]string{
		"0.5:0.5:1e-300":            "[0.5]",
		"0.5:0.6:1e-300":            "more than 200 radii",
		"1:1.000000000000001:1e-17": "[1]",
		"0:1:0.001":                 "more than 200 radii",
		"0:0.199:0.001":             "",
	} {
		got, err := parseRadii(in)
		switch {
		case want == "" && (err != nil || len(got) != 200):
			t.Errorf("parseRadii(%q): %d radii, %v; want 200", in, len(got), err)
		case want != "" && strings.HasPrefix(want, "["):
			if err != nil || fmt.Sprint(got) != want {
				t.Errorf("parseRadii(%q) = %v, %v; want %s", in, got, err, want)
			}
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("parseRadii(%q): %v, %v; want error %q", in, got, err, want)
		}
	}
}

// FuzzParseRadii: any --radius value either fails cleanly or gives at most
// maxRadii distinct finite radii >= 0, quickly.
func FuzzParseRadii(f *testing.F) {
	for _, s := range []string{"0.1", "0.01,0.02", "0:0.3:0.1", "0.5:0.5:1e-300", "1e308:1e308:1e-308", "0:1e308:1e-300", ",", "::", "-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseRadii(s)
		if err != nil {
			return
		}
		if len(got) == 0 || len(got) > maxRadii {
			t.Fatalf("%q: %d radii", s, len(got))
		}
		seen := map[float64]bool{}
		for _, r := range got {
			if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 || seen[r] {
				t.Fatalf("%q: radius %g in %v", s, r, got)
			}
			seen[r] = true
		}
	})
}

// FuzzParseShard: any --shard value either fails cleanly or names a shard
// 0 <= K < N.
func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"0/1", "3/8", "8/8", "-1/2", "1/0", "x/y", "1/2/3", " 1 / 2 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sh, err := parseShard(s)
		if err == nil && (sh.count < 1 || sh.index < 0 || sh.index >= sh.count) {
			t.Fatalf("%q: shard %d of %d", s, sh.index, sh.count)
		}
	})
}
