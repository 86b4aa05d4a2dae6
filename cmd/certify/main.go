// Command certify measures, for a trained classifier, clean accuracy, empirical
// robust accuracy (attacks) and certified robust accuracy (bounds, LP, smoothing),
// per sample, in one run:
//
//	certify --radius 0.25 model.onnx
//
// Progress goes to stderr, tables to stdout, the full per-sample report to --json.
// Exit status: 0 success, 3 falsified certificates (a method certified a sample
// that an attack then broke: a soundness bug), 2 bad usage, 1 any other error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/internal/progress"
	"github.com/certify-dev/certify/pipeline"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := runContext(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command, callable in-process by tests; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// exitFalsified is the exit code of a run with falsified certificates (the others
// are cli.ExitOK, cli.ExitError and cli.ExitUsage).
const exitFalsified = 3

// falsifiedError ends a run that found falsified certificates (exit 3), after the
// report was written.
type falsifiedError struct{ n int }

func (e falsifiedError) Error() string {
	return fmt.Sprintf("%d falsified certificates: a certification method proved samples robust that an attack then broke; it is unsound (see samples[].falsified in the report)", e.n)
}

// options are the parsed command line.
type options struct {
	model            string
	data, labels     string // "" when not given: the defaults are looked for
	count            int
	radius           float64
	norm             pipeline.Norm
	seed             int64
	jsonPath         string
	csvPath, mdPath  string // --csv, --markdown
	methods, attacks []string
	domain           pipeline.Domain
	perSample, quiet bool
	soundFP          bool
	attackOpts       attacks.Options // Surrogate is loaded by evaluate
	surrogate        string
	auditEffort      int
	vnn              vnnOptions       // --vnnlib mode (vnnlib.go)
	smoothing        smoothingOptions // --methods smoothing (smoothing.go)
	limits           limitOptions     // resource limits (limits.go)
	// params is every flag's value as parsed, defaults included (the report's
	// parameters, from which replay rebuilds the command).
	params map[string]string
	args   []string // the command line, for the report
}

// usageHead is the help text above the flags.
func usageHead() string {
	return `usage: certify [flags] MODEL.onnx|DEFENSE.json
       certify replay REPORT.json   (re-run a --json report and compare)

Evaluates the classifier MODEL.onnx on the first --count samples of --data: clean
accuracy, then each certification method and attack within the --norm ball of
--radius around every sample, clipped to --domain. Tables go to stdout, progress to
stderr, the per-sample report to --json.

MODEL may be a defense wrapper spec (a .json file naming base ONNX models and a
wrapper kind: input transformations, detectors, ensembles, see package defenses);
bound-propagation methods need a plain ONNX network, attacks and smoothing take
either.

Without --data and --labels, ` + cli.DefaultData + ` and
` + cli.DefaultLabels + ` are looked for in the working directory and its
parents, then beside the executable.

Samples are fed to the model in its input shape. If the data's per-sample shape
differs but holds as many values, it is reshaped only when that is unambiguous: the
shapes differ by size-1 dimensions only, or one side is flat and the other a
single-channel image ([784] for [1,28,28]).

Certification methods (--methods):
  ibp          interval bound propagation (cheapest, loosest)
  crown        CROWN, backward linear relaxation (tighter, slower)
  alpha-crown  CROWN with optimised ReLU slopes
  lp           LP over the triangle ReLU relaxation, bounds from alpha-crown (~0.5 s/sample on the MLP)
  lp-all       lp with every layer's bounds tightened by LP first (slow)
  bab          complete: PGD, then branch and bound over ReLU splits bounded by beta-CROWN (verified, falsified, or unknown after --timeout per sample)
  smoothing    randomized smoothing: certifies the smoothed classifier, in L2 (below)
They bound the network over a box. With --norm linf the box is the region itself;
with --norm l2 it is the smallest box containing the L2 ball (every coordinate
within --radius): still sound, since the box holds the ball, but much looser, as
the box is far larger than the ball. --sound-fp also bounds float64 rounding.
A sample counts as certified only if it is classified correctly.

` + smoothingHelp() + `
Attacks (--attacks) search the same region for a misclassified input; a sample is
empirically robust if it is classified correctly and every attack failed. "default"
is the strong suite: ` + strings.Join(attacks.DefaultSuite(), ", ") + ` (square with 5000 queries, pgd
with 5 restarts). --pgd-steps, --pgd-step, --restarts and --queries override the
knobs of every attack that has them (0 keeps the literature defaults). The attacks,
with the norms they support:
` + attackHelp() + `
The audit: a sample certified by a method and broken by an attack is a falsified
certificate, a bug in that method: listed in samples[].falsified, shown in the
tables (red on a terminal) and counted in summary.falsified_certificates, and the
exit status is 3. --audit-effort K > 1 also runs, on every certified sample,
audit-pgd (PGD with K times the steps and restarts) and audit-square (Square with
K times the queries). The attacks' sanity checks (zero or masked gradients,
randomness, probabilities instead of logits) go to summary.warnings.

Exit status: 0 success, 3 falsified certificates (a method certified a sample that
an attack broke: a soundness bug), 2 bad usage, 1 other errors.

flags:
`
}

// newFlags defines the flags on a fresh set, bound to o.
func newFlags(o *options, known methodSet, domain, methodList, attackList, norm *string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("certify", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard) // errors are reported by runContext
	fs.StringVar(&o.data, "data", "", "samples, .npy [N, ...sample shape] (default "+cli.DefaultData+")")
	fs.StringVar(&o.labels, "labels", "", "labels, .npy [N] of class indices (default "+cli.DefaultLabels+")")
	fs.IntVarP(&o.count, "count", "n", 100, "evaluate the first `n` samples (capped at the data size)")
	fs.Float64Var(&o.radius, "radius", 0.1, "perturbation radius `r` >= 0")
	fs.StringVar(norm, "norm", string(pipeline.LInf), "perturbation norm: linf or l2")
	fs.Int64Var(&o.seed, "seed", 1, "seed of every random choice")
	fs.StringVar(&o.jsonPath, "json", "", "write the report as JSON to `file` (- for stdout, instead of the tables)")
	fs.StringVar(&o.csvPath, "csv", "", "write one row per sample as CSV to `file`")
	fs.StringVar(&o.mdPath, "markdown", "", "write the summary as a Markdown table to `file`")
	fs.StringVar(methodList, "methods", none, "certification methods, comma separated, or none; valid: "+strings.Join(stageNames(known), ", "))
	fs.StringVar(attackList, "attacks", none, "attacks, comma separated, default (the strong suite) or none; valid: "+strings.Join(stageNames(attackNames()), ", "))
	fs.IntVar(&o.attackOpts.Steps, "pgd-steps", 0, "iterations of pgd and the other iterative attacks (0: each attack's default, pgd 40)")
	fs.Float64Var(&o.attackOpts.Step, "pgd-step", 0, "step size of pgd, bim and mifgsm, in input units (0: default, pgd 0.01 for linf)")
	fs.IntVar(&o.attackOpts.Restarts, "restarts", 0, "random restarts of pgd, apgd-ce, apgd-dlr, apgd-t (0: default, 1; pgd of the default suite 5)")
	fs.IntVar(&o.attackOpts.Queries, "queries", 0, "queries per sample of the black-box attacks (0: default, square 5000, others 10000)")
	fs.StringVar(&o.surrogate, "surrogate", "", "transfer attack: the `FILE.onnx` model its examples are crafted on")
	fs.IntVar(&o.auditEffort, "audit-effort", 1, "`K` > 1: also attack every certified sample with K× the pgd steps and restarts (audit-pgd) and K× the square queries (audit-square)")
	fs.StringVar(domain, "domain", "0,1", "data domain `lo,hi`: every input value lies in it")
	fs.BoolVar(&o.soundFP, "sound-fp", false, "bound methods: widen every bound by float64 rounding error, so certificates also hold for the float evaluation of the network")
	fs.BoolVar(&o.perSample, "per-sample", false, "print the per-sample table however many samples (always for n <= 20)")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no progress on stderr")
	addVNNFlags(fs, &o.vnn)
	addSmoothingFlags(fs, &o.smoothing)
	addLimitFlags(fs, &o.limits)
	return fs
}

// parseArgs parses the command line into options. It returns pflag.ErrHelp for
// -h/--help and a usageError for anything wrong.
func parseArgs(args []string, stdout io.Writer, known methodSet) (options, error) {
	var o options
	var domain, methodList, attackList, norm string
	fs := newFlags(&o, known, &domain, &methodList, &attackList, &norm)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(stdout, usageHead()+fs.FlagUsages())
			return o, err
		}
		return o, cli.UsageError{Msg: err.Error()}
	}
	o.params = map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) { o.params[f.Name] = f.Value.String() })
	switch fs.NArg() {
	case 0:
		return o, cli.Usagef("missing MODEL.onnx (or a defense wrapper spec DEFENSE.json)")
	case 1:
		o.model = fs.Arg(0)
	default:
		return o, cli.Usagef("one model expected, got %d arguments: %s", fs.NArg(), strings.Join(fs.Args(), " "))
	}
	if o.count <= 0 {
		return o, cli.Usagef("--count %d: want at least 1", o.count)
	}
	if math.IsNaN(o.radius) || math.IsInf(o.radius, 0) || o.radius < 0 {
		return o, cli.Usagef("--radius %g: want a finite value >= 0", o.radius)
	}
	var err error
	if o.norm, err = pipeline.ParseNorm(norm); err != nil {
		return o, cli.Usagef("--norm: %v", err)
	}
	if o.domain, err = parseDomain(domain); err != nil {
		return o, cli.Usagef("--domain %q: %v", domain, err)
	}
	if (o.data == "") != (o.labels == "") {
		return o, cli.Usagef("--data and --labels go together: give both or neither")
	}
	if o.methods, err = parseStages("method", methodList, known); err != nil {
		return o, cli.Usagef("--methods: %v", err)
	}
	if o.attacks, err = parseStages("attack", attackList, attackNames()); err != nil {
		return o, cli.Usagef("--attacks: %v", err)
	}
	if err := checkAttackFlags(o); err != nil {
		return o, err
	}
	if err := checkSmoothingFlags(o, fs); err != nil {
		return o, err
	}
	if o.vnn.timeout < 0 {
		return o, cli.Usagef("--timeout %v: want >= 0 (0: none)", o.vnn.timeout)
	}
	if err := checkLimitFlags(o.limits); err != nil {
		return o, err
	}
	return o, nil
}

// parseDomain parses "lo,hi" with finite lo < hi.
func parseDomain(s string) (pipeline.Domain, error) {
	lo, hi, err := cli.ParseDomain(s)
	if err != nil {
		return pipeline.Domain{}, err
	}
	d := pipeline.Domain{Lo: lo, Hi: hi}
	return d, d.Validate()
}

func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdout, stderr, methods())
}

// runWith is runContext with the certification methods known by name: methods(),
// or, in tests, that set plus fakes.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, known methodSet) int {
	if len(args) > 0 && args[0] == "replay" {
		return runReplay(ctx, args[1:], stdout, stderr, known)
	}
	o, err := parseArgs(args, stdout, known)
	if errors.Is(err, pflag.ErrHelp) {
		return cli.ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "certify: %v\nRun 'certify --help' for usage.\n", err)
		return cli.ExitUsage
	}
	o.args = args
	if o.vnn.property != "" {
		return runVNNLIB(ctx, o, stdout, stderr)
	}
	if err := evaluate(ctx, o, known, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "certify: %v\n", err)
		if errors.As(err, new(falsifiedError)) {
			return exitFalsified
		}
		return cli.ExitError
	}
	return cli.ExitOK
}

// evaluate loads the model and data, runs the pipeline and writes the results.
func evaluate(ctx context.Context, o options, known methodSet, stdout, stderr io.Writer) error {
	logf := func(format string, args ...any) {
		if !o.quiet {
			fmt.Fprintf(stderr, format+"\n", args...)
		}
	}
	in, err := cli.Load(cli.Source{Model: o.model, Data: o.data, Labels: o.labels, Count: o.count,
		Lo: o.domain.Lo, Hi: o.domain.Hi, Logf: logf})
	if err != nil {
		return err
	}
	o.data, o.labels = in.Data, in.LabelsPath
	n := in.X.Shape[0]

	so := stageOptions{Radius: o.radius, Norm: o.norm, Domain: o.domain, Seed: o.seed, SoundFP: o.soundFP, Timeout: o.vnn.timeout}
	so.Smoothing = o.smoothing
	so.Limits = o.limits
	if slices.Contains(o.methods, smoothingName) && o.norm != pipeline.L2 {
		logf("note: smoothing certifies L2 radii: certified.smoothing reads --radius %g as an L2 radius, not %s", o.radius, o.norm)
	}
	cfg := pipeline.Config{
		Model: in.Model, X: in.X, Labels: in.Labels,
		Radius: o.radius, Norm: o.norm, Domain: o.domain, Seed: o.seed,
		ModelPath: o.model, ModelSHA256: in.ModelSHA256,
		DataPath: o.data, LabelsPath: o.labels,
	}
	for _, name := range o.methods {
		cfg.Methods = append(cfg.Methods, known[name](so))
	}
	if cfg.Attacks, cfg.Audit, err = buildAttacks(o); err != nil {
		return err
	}
	if !o.quiet {
		cfg.Progress = progress.New(stderr)
	}
	started := time.Now()
	cfg.SampleTimeout = o.vnn.timeout
	if o.limits.totalTimeout > 0 {
		cfg.Deadline = started.Add(o.limits.totalTimeout)
	}
	rep, err := pipeline.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := recordRun(rep, o, started); err != nil {
		return err
	}
	if len(cfg.Attacks)+len(cfg.Audit) > 0 {
		if rep.Summary.Warnings, err = attackWarnings(rep, in.Model, in.X, in.Labels, append(cfg.Attacks, cfg.Audit...)); err != nil {
			return err
		}
	}
	rep.Summary.Warnings = append(rep.Summary.Warnings, smoothingWarnings(rep)...)

	if o.jsonPath == "-" {
		if err := writeJSON(stdout, rep); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else {
		fmt.Fprintf(stdout, "model %s, %d samples of %s, %s radius %g, domain [%g,%g], seed %d\n",
			o.model, n, o.data, o.norm, o.radius, o.domain.Lo, o.domain.Hi, o.seed)
		if err := rep.WriteTablesWith(stdout, pipeline.TableOptions{PerSample: o.perSample, Color: colorful(stdout)}); err != nil {
			return err
		}
		if o.jsonPath != "" {
			if err := writeJSONFile(o.jsonPath, rep); err != nil {
				return err
			}
			logf("report written to %s", o.jsonPath)
		}
	}
	for _, out := range []struct {
		path, what string
		write      func(io.Writer) error
	}{{o.csvPath, "per-sample CSV", rep.WriteCSV}, {o.mdPath, "Markdown summary", rep.WriteMarkdown}} {
		if out.path == "" {
			continue
		}
		if err := writeFileWith(out.path, out.what, out.write); err != nil {
			return err
		}
		logf("%s written to %s", out.what, out.path)
	}
	if err := writeSmoothingFiles(o.smoothing, rep, logf); err != nil {
		return err
	}
	if o.jsonPath == "-" {
		for _, w := range rep.Summary.Warnings {
			logf("warning: %s", w)
		}
	}
	if f := rep.Summary.FalsifiedCertificates; f != nil && *f > 0 {
		return falsifiedError{*f}
	}
	return nil
}

func writeJSON(w io.Writer, rep *pipeline.Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writeFileWith creates path and fills it with write; errors name what is written.
func writeFileWith(path, what string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s %s: %w", what, path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s %s: %w", what, path, err)
	}
	return nil
}

func writeJSONFile(path string, rep *pipeline.Report) error {
	return writeFileWith(path, "report", func(w io.Writer) error { return writeJSON(w, rep) })
}
