package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"time"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/pipeline"
)

// recordRun writes into the report what replaying it needs: the tool's version,
// the command line, every parameter, the start time and the data files' SHA-256.
func recordRun(rep *pipeline.Report, o options, started time.Time) error {
	rep.Tool = toolVersion()
	rep.Command = append([]string{"certify"}, o.args...)
	rep.Parameters = o.params
	rep.Time = started.UTC().Format(time.RFC3339)
	var err error
	if rep.DataSHA256, err = cli.FileSHA256(rep.Data); err != nil {
		return err
	}
	rep.LabelsSHA256, err = cli.FileSHA256(rep.Labels)
	return err
}

// toolVersion is "certify" with the module version and VCS revision the binary
// was built from, when the build recorded them.
func toolVersion() string {
	v := "certify"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v += " " + info.Main.Version
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " rev " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				v += " (modified)"
			}
		}
	}
	return v
}

// isOutputFlag tells the flags that write files or shape the terminal output;
// replay leaves them out (it must not overwrite the original run's files) and
// writes its own JSON.
func isOutputFlag(name string) bool {
	return slices.Contains([]string{"json", "csv", "markdown", "html", "curve-csv", "plot", "per-sample", "quiet", "vnnlib-result", "help"}, name)
}

// runReplay is `certify replay REPORT.json`: it re-runs the evaluation the report
// records, with the same parameters, and reports every difference from it, timings
// aside. Exit 0 when the new report is the same, 1 when it differs or cannot run.
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer, known methodSet) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "certify: usage: certify replay REPORT.json")
		return cli.ExitUsage
	}
	orig, err := readReport(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "certify: replay: %v\n", err)
		return cli.ExitError
	}
	if len(orig.Parameters) == 0 || orig.Model == "" {
		fmt.Fprintf(stderr, "certify: replay: %s records no parameters (written by an older certify?)\n", args[0])
		return cli.ExitError
	}
	var diffs []string
	for _, f := range []struct{ what, path, want string }{
		{"model", orig.Model, orig.ModelSHA256}, {"data", orig.Data, orig.DataSHA256}, {"labels", orig.Labels, orig.LabelsSHA256},
	} {
		got, err := cli.FileSHA256(f.path)
		if err != nil {
			fmt.Fprintf(stderr, "certify: replay: %v\n", err)
			return cli.ExitError
		}
		if got != f.want {
			diffs = append(diffs, fmt.Sprintf("%s %s: sha256 %s, the report's %s", f.what, f.path, got, f.want))
		}
	}
	tmp, err := os.MkdirTemp("", "certify-replay-")
	if err != nil {
		fmt.Fprintf(stderr, "certify: replay: %v\n", err)
		return cli.ExitError
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "report.json")
	// The flags whose recorded value is not today's default (flags that only
	// make sense with others, like smoothing's, must not be given on their own).
	var o options
	var s1, s2, s3, s4, s5 string
	fs := newFlags(&o, known, &s1, &s2, &s3, &s4, &s5)
	var rerun []string
	for _, name := range sortedKeys(orig.Parameters) {
		fl := fs.Lookup(name)
		switch {
		case isOutputFlag(name):
		case fl == nil:
			fmt.Fprintf(stderr, "certify: replay: the report's parameter --%s is not a flag of this certify\n", name)
			return cli.ExitError
		case orig.Parameters[name] != fl.DefValue:
			rerun = append(rerun, "--"+name+"="+orig.Parameters[name])
		}
	}
	rerun = append(rerun, "--quiet", "--json="+out, orig.Model)
	fmt.Fprintf(stderr, "replaying %s: certify %v\n", args[0], rerun)
	var errs bytes.Buffer
	// The report says which shard it is, if any (--shard is among its
	// parameters): a scheduler's index in this process's environment is not the
	// run's.
	noEnv := func(string) string { return "" }
	if code := runWithEnv(ctx, rerun, io.Discard, &errs, known, noEnv); code != cli.ExitOK && code != exitFalsified {
		fmt.Fprintf(stderr, "certify: replay: the run failed (exit %d): %s", code, errs.String())
		return cli.ExitError
	}
	if sh := orig.Shard; sh != nil { // a shard writes its files with the shard in their names
		out = shard{index: sh.Index, count: sh.Count}.outputPath(out)
	}
	again, err := readReport(out)
	if err != nil {
		fmt.Fprintf(stderr, "certify: replay: %v\n", err)
		return cli.ExitError
	}
	if orig.Tool != again.Tool {
		fmt.Fprintf(stderr, "note: the report was written by %q, replayed with %q\n", orig.Tool, again.Tool)
	}
	diffs = append(diffs, reportDiffs(orig, again)...)
	if len(diffs) == 0 {
		fmt.Fprintf(stdout, "replay of %s: the same report (timings aside), %d samples\n", args[0], len(orig.Samples))
		return cli.ExitOK
	}
	fmt.Fprintf(stdout, "replay of %s: %d differences\n", args[0], len(diffs))
	for _, d := range diffs {
		fmt.Fprintln(stdout, "  "+d)
	}
	return cli.ExitError
}

func readReport(path string) (*pipeline.Report, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r pipeline.Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: not a certify report: %w", path, err)
	}
	return &r, nil
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// reportDiffs lists how b differs from a, ignoring what a replay changes by
// construction: timings, the start time, the command line, the tool's version
// (noted apart) and the output flags.
func reportDiffs(a, b *pipeline.Report) []string {
	norm := func(r *pipeline.Report) pipeline.Report {
		c := *r
		c.Time, c.Command, c.Tool = "", nil, ""
		c.Parameters = map[string]string{}
		for k, v := range r.Parameters {
			if !isOutputFlag(k) {
				c.Parameters[k] = v
			}
		}
		c.Summary.Seconds = nil
		c.Samples = nil
		c.Sweep = slices.Clone(r.Sweep)
		for i := range c.Sweep {
			c.Sweep[i].Samples, c.Sweep[i].Summary.Seconds = nil, nil
		}
		return c
	}
	var diffs []string
	if x, y := norm(a), norm(b); !reflect.DeepEqual(x, y) {
		xs, _ := json.Marshal(x)
		ys, _ := json.Marshal(y)
		diffs = append(diffs, fmt.Sprintf("header or summary: %s\n    now: %s", xs, ys))
	}
	ra, rb := a.Runs(), b.Runs()
	if len(ra) != len(rb) {
		return append(diffs, fmt.Sprintf("%d radii, now %d", len(ra), len(rb)))
	}
	for r := range ra {
		at := ""
		if len(a.Sweep) > 0 {
			at = fmt.Sprintf("radius %g: ", ra[r].Radius)
		}
		sa, sb := ra[r].Samples, rb[r].Samples
		if len(sa) != len(sb) {
			diffs = append(diffs, fmt.Sprintf("%s%d samples, now %d", at, len(sa), len(sb)))
			continue
		}
		for i := range sa {
			if !reflect.DeepEqual(sa[i], sb[i]) {
				xs, _ := json.Marshal(sa[i])
				ys, _ := json.Marshal(sb[i])
				diffs = append(diffs, fmt.Sprintf("%ssample %d: %s\n    now: %s", at, sa[i].Index, xs, ys))
			}
		}
	}
	return diffs
}
