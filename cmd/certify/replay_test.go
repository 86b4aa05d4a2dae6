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
