package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/pipeline"
	"github.com/spf13/pflag"
)

// runMerge is `certify merge SHARD.json...`: it joins the --json reports of the
// shards of a run (--shard K/N, or a scheduler's array index) into the report of
// the whole run, which equals the unsharded run's report timings aside, and
// writes it like certify does (tables, --json, --csv, --markdown). The warnings
// are recomputed from the model and all the samples, so the model and data files
// must be where the shards read them (their SHA-256 is checked). Exit 0, 3 when
// the merged run has falsified certificates, 2 bad usage, 1 other errors.
func runMerge(args []string, stdout, stderr io.Writer, known methodSet) int {
	var out options
	fs := pflag.NewFlagSet("certify merge", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&out.jsonPath, "json", "", "write the merged report as JSON to `file` (- for stdout, instead of the tables)")
	fs.StringVar(&out.csvPath, "csv", "", "write one row per sample as CSV to `file`")
	fs.StringVar(&out.mdPath, "markdown", "", "write the summary as a Markdown table to `file`")
	fs.StringVar(&out.smoothing.CurveCSV, "curve-csv", "", "smoothing: write the certified accuracy curve to `file` as CSV")
	fs.StringVar(&out.plotPath, "plot", "", "draw accuracy versus radius into `FILE.png`")
	fs.StringVar(&out.htmlPath, "html", "", "write the HTML report to `file` (its gallery has the adversarial examples the shards kept for it)")
	fs.BoolVar(&out.perSample, "per-sample", false, "print the per-sample table however many samples")
	fs.BoolVarP(&out.quiet, "quiet", "q", false, "no messages on stderr")
	usage := func(err error) int {
		fmt.Fprintf(stderr, "certify merge: %v\nusage: certify merge [flags] SHARD.json...\n%s", err, fs.FlagUsages())
		return cli.ExitUsage
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: certify merge [flags] SHARD.json...\n\nJoins the --json reports of the shards of a run into the report of the whole run.\n\nflags:\n%s", fs.FlagUsages())
			return cli.ExitOK
		}
		return usage(err)
	}
	if fs.NArg() == 0 {
		return usage(fmt.Errorf("no shard reports given"))
	}
	rep, o, gallery, err := mergeReports(fs.Args(), stdout, known)
	if err != nil {
		fmt.Fprintf(stderr, "certify merge: %v\n", err)
		return cli.ExitError
	}
	o.jsonPath, o.csvPath, o.mdPath, o.plotPath, o.htmlPath = out.jsonPath, out.csvPath, out.mdPath, out.plotPath, out.htmlPath
	o.perSample, o.quiet = out.perSample, out.quiet
	o.smoothing.CurveCSV = out.smoothing.CurveCSV
	o.shard = shard{count: 1}
	logf := func(format string, args ...any) {
		if !o.quiet {
			fmt.Fprintf(stderr, format+"\n", args...)
		}
	}
	logf("merged %d shards: %d samples", len(fs.Args()), len(rep.Samples))
	if err := writeOutputs(rep, o, gallery, stdout, logf); err != nil {
		fmt.Fprintf(stderr, "certify merge: %v\n", err)
		if errors.As(err, new(falsifiedError)) {
			return exitFalsified
		}
		return cli.ExitError
	}
	return cli.ExitOK
}

// mergeReports reads and merges the shard reports at paths, recomputes the
// warnings, and returns the merged report with the options of the run it records
// and its samples for the HTML gallery.
func mergeReports(paths []string, stdout io.Writer, known methodSet) (*pipeline.Report, options, pipeline.HTMLOptions, error) {
	var none pipeline.HTMLOptions
	parts := make([]*pipeline.Report, len(paths))
	for i, p := range paths {
		r, err := readReport(p)
		if err != nil {
			return nil, options{}, none, err
		}
		if r.Shard == nil {
			return nil, options{}, none, fmt.Errorf("%s: not the report of a shard (no \"shard\" field)", p)
		}
		if len(r.Parameters) == 0 {
			return nil, options{}, none, fmt.Errorf("%s: records no parameters (written by an older certify?)", p)
		}
		unshard(r)
		parts[i] = r
	}
	rep, err := pipeline.Merge(parts)
	if err != nil {
		return nil, options{}, none, err
	}
	// The run's options, from its parameters, as replay rebuilds them.
	args, err := paramArgs(rep.Parameters, known)
	if err != nil {
		return nil, options{}, none, err
	}
	o, err := parseArgsEnv(append(args, rep.Model), stdout, known, func(string) string { return "" })
	if err != nil {
		return nil, options{}, none, fmt.Errorf("the shards' parameters: %w", err)
	}
	o.args, o.data, o.labels = rep.Command[1:], rep.Data, rep.Labels
	in, err := recomputeWarnings(rep, o)
	if err != nil {
		return nil, options{}, none, err
	}
	return rep, o, galleryInputs(in.X, nil), nil
}

// unshard removes from a shard's report what says which shard it is besides
// Shard itself: --shard and --shards on its command line and in its parameters
// (set back to their defaults, as in the unsharded run's report).
func unshard(r *pipeline.Report) {
	var cmd []string
	for i := 0; i < len(r.Command); i++ {
		a := r.Command[i]
		if a == "--shard" || a == "--shards" {
			i++ // and its value
			continue
		}
		if strings.HasPrefix(a, "--shard=") || strings.HasPrefix(a, "--shards=") {
			continue
		}
		cmd = append(cmd, a)
	}
	r.Command = cmd
	if _, ok := r.Parameters["shard"]; ok {
		r.Parameters["shard"] = ""
	}
	if _, ok := r.Parameters["shards"]; ok {
		r.Parameters["shards"] = "0"
	}
}

// paramArgs turns a report's parameters back into flags: those whose value is not
// today's default, output flags left out.
func paramArgs(params map[string]string, known methodSet) ([]string, error) {
	var o options
	var s1, s2, s3, s4, s5 string
	fs := newFlags(&o, known, &s1, &s2, &s3, &s4, &s5)
	var args []string
	for _, name := range sortedKeys(params) {
		fl := fs.Lookup(name)
		switch {
		case isOutputFlag(name):
		case fl == nil:
			return nil, fmt.Errorf("the report's parameter --%s is not a flag of this certify", name)
		case params[name] != fl.DefValue:
			args = append(args, "--"+name+"="+params[name])
		}
	}
	return args, nil
}

// recomputeWarnings loads the run's model and samples (checking their SHA-256
// against the report) and recomputes the warnings from all of them, as the
// unsharded run does.
func recomputeWarnings(rep *pipeline.Report, o options) (*cli.Loaded, error) {
	in, err := cli.Load(cli.Source{Model: rep.Model, Data: rep.Data, Labels: rep.Labels, Count: o.count, Lo: o.domain.Lo, Hi: o.domain.Hi})
	if err != nil {
		return nil, fmt.Errorf("recomputing the warnings needs the run's files: %w", err)
	}
	if in.ModelSHA256 != rep.ModelSHA256 {
		return nil, fmt.Errorf("model %s has changed since the shards ran (sha256 %s, the reports' %s)", rep.Model, in.ModelSHA256, rep.ModelSHA256)
	}
	for _, f := range []struct{ path, want string }{{rep.Data, rep.DataSHA256}, {rep.Labels, rep.LabelsSHA256}} {
		got, err := cli.FileSHA256(f.path)
		if err != nil {
			return nil, err
		}
		if got != f.want {
			return nil, fmt.Errorf("%s has changed since the shards ran (sha256 %s, the reports' %s)", f.path, got, f.want)
		}
	}
	if in.X.Shape[0] != len(rep.Samples) {
		return nil, fmt.Errorf("the run's --count gives %d samples, the shards hold %d", in.X.Shape[0], len(rep.Samples))
	}
	ran := map[float64][]pipeline.Attack{}
	for _, run := range rep.Runs() {
		at := o
		at.radius = run.Radius
		suite, audit, err := buildAttacks(at)
		if err != nil {
			return nil, err
		}
		ran[run.Radius] = slices.Concat(suite, audit)
	}
	rep.Summary.Warnings, err = runWarnings(rep, in.Model, in.X, in.Labels, ran)
	return in, err
}
