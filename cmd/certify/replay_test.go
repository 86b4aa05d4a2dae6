package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/nets"
)

// A report records how to re-run it: the tool, the command line, every parameter
// with its default, the start time and the data files' SHA-256; `certify replay`
// re-runs it and finds the same report, and names what differs when the report or
// the data were changed.
func TestReplay(t *testing.T) {
	f := newFixture(t, 12)
	rep, _, _ := f.report(t, "-n", "12", "--radius", "0.1", "--seed", "7", "--methods", "ibp,crown", "--attacks", "fgsm,pgd")
	dataSum, err := cli.FileSHA256(f.data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rep.Tool, "certify") || len(rep.Command) < 2 || rep.Command[0] != "certify" ||
		rep.Parameters["seed"] != "7" || rep.Parameters["radius"] != "0.1" || rep.Parameters["restarts"] != "0" ||
		rep.DataSHA256 != dataSum || len(rep.LabelsSHA256) != 64 {
		t.Fatalf("run record: tool %q command %q parameters %v data %s labels %s", rep.Tool, rep.Command, rep.Parameters, rep.DataSHA256, rep.LabelsSHA256)
	}
	if _, err := time.Parse(time.RFC3339, rep.Time); err != nil {
		t.Fatalf("time %q: %v", rep.Time, err)
	}
	path := filepath.Join(f.dir, "rep.json")
	raw, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	// A scheduler's index in the replaying process's environment is not the
	// run's: the whole run is replayed.
	t.Setenv("SLURM_ARRAY_TASK_ID", "1")
	t.Setenv("SLURM_ARRAY_TASK_COUNT", "3")
	code, stdout, stderr := runCmd("replay", path)
	if code != 0 || !strings.Contains(stdout, "the same report (timings aside), 12 samples") {
		t.Fatalf("replay: exit %d\n%s%s", code, stdout, stderr)
	}

	// A changed result is found and named.
	rep.Samples[3].Predicted = (rep.Samples[3].Predicted + 1) % 3
	raw, _ = json.Marshal(rep)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCmd("replay", path)
	if code != 1 || !strings.Contains(stdout, "1 differences") || !strings.Contains(stdout, "sample 3:") {
		t.Fatalf("replay of a changed report: exit %d\n%s", code, stdout)
	}
	// So is a changed data file.
	rep.Samples[3].Predicted = (rep.Samples[3].Predicted + 2) % 3
	raw, _ = json.Marshal(rep)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	f.x.Data[0] = 1 - f.x.Data[0]
	f.writeNPY(t, filepath.Base(f.data), f.x, nets.NPYFloat32)
	code, stdout, _ = runCmd("replay", path)
	if code != 1 || !strings.Contains(stdout, "data "+f.data+": sha256") {
		t.Fatalf("replay with changed data: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := runCmd("replay"); code != 2 || !strings.Contains(stderr, "usage: certify replay") {
		t.Fatalf("replay without a report: exit %d %s", code, stderr)
	}
}

// Replay re-runs a shard of a sweep as recorded (the shard, every radius) and
// names a difference by radius and sample.
func TestReplaySweepShard(t *testing.T) {
	f := newFixture(t, 40)
	dir := t.TempDir()
	out := filepath.Join(dir, "r.json")
	args := []string{"--data", f.data, "--labels", f.labels, "--json", out, "--quiet", "-n", "40", "--radius", "0.05,0.1",
		"--methods", "ibp", "--attacks", "pgd", "--shard", "1/2", f.model}
	if code, _, stderr := runCmd(args...); code != cli.ExitOK {
		t.Fatalf("%q: exit %d\n%s", args, code, stderr)
	}
	path := filepath.Join(dir, "r.1-of-2.json")
	rep, err := readReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Shard == nil || rep.Shard.Index != 1 || rep.Shard.Count != 2 || rep.Shard.Samples != 40 || len(rep.Samples) != 8 || len(rep.Sweep) != 2 {
		t.Fatalf("shard %+v, %d samples, %d radii; want shard 1 of 2 of 40 with the 8 samples 32..39 at 2 radii", rep.Shard, len(rep.Samples), len(rep.Sweep))
	}
	if rep.Samples[0].Index != 32 || rep.Sweep[1].Radius != 0.1 {
		t.Fatalf("first sample %d, second radius %g", rep.Samples[0].Index, rep.Sweep[1].Radius)
	}
	code, stdout, stderr := runCmd("replay", path)
	if code != 0 || !strings.Contains(stdout, "the same report (timings aside), 8 samples") {
		t.Fatalf("replay: exit %d\n%s%s", code, stdout, stderr)
	}
	s := &rep.Sweep[1].Samples[2]
	s.Label = (s.Label + 1) % 3
	if err := writeJSONFile(path, rep); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCmd("replay", path)
	if code != 1 || !strings.Contains(stdout, "radius 0.1: sample 34:") {
		t.Fatalf("replay of a changed sweep: exit %d\n%s", code, stdout)
	}
}
