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
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/internal/progress"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/pipeline"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once, if the first is slow to end the run
	}()
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
	radius           float64   // the first of radii
	radii            []float64 // --radius: one, a list or ranges
	norm             pipeline.Norm
	seed             int64
	jsonPath         string
	csvPath, mdPath  string // --csv, --markdown
	plotPath         string // --plot
	htmlPath         string // --html
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
	shardFlag        string           // --shard K/N
	shards           int              // --shards N
	shard            shard            // the resolved shard (shard.go)
	// params is every flag's value as parsed, defaults included (the report's
	// parameters, from which replay rebuilds the command).
	params map[string]string
	args   []string // the command line, for the report
}

// usageHead is the help text above the flags.
func usageHead() string {
	return `usage: certify [flags] MODEL.onnx|DEFENSE.json
       certify replay REPORT.json   (re-run a --json report and compare)
       certify merge [--json OUT] [--csv F] [--markdown F] SHARD.json...
                                    (join the --json reports of a --shard run)

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
func newFlags(o *options, known methodSet, domain, methodList, attackList, norm, radius *string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("certify", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard) // errors are reported by runContext
	fs.StringVar(&o.data, "data", "", "samples, .npy [N, ...sample shape] (default "+cli.DefaultData+")")
	fs.StringVar(&o.labels, "labels", "", "labels, .npy [N] of class indices (default "+cli.DefaultLabels+")")
	fs.IntVarP(&o.count, "count", "n", 100, "evaluate the first `n` samples (capped at the data size)")
	fs.StringVar(radius, "radius", "0.1", "perturbation radius `r` >= 0; or several, one run each, in one report: 0.01,0.02,0.05 or lo:hi:step")
	fs.StringVar(norm, "norm", string(pipeline.LInf), "perturbation norm: linf or l2")
	fs.Int64Var(&o.seed, "seed", 1, "seed of every random choice")
	fs.StringVar(&o.jsonPath, "json", "", "write the report as JSON to `file` (- for stdout, instead of the tables)")
	fs.StringVar(&o.csvPath, "csv", "", "write one row per sample as CSV to `file`")
	fs.StringVar(&o.mdPath, "markdown", "", "write the summary as a Markdown table to `file`")
	fs.StringVar(&o.plotPath, "plot", "", "draw certified accuracy per method and empirical accuracy versus radius (and smoothing's curve) into `FILE.png`")
	fs.StringVar(&o.htmlPath, "html", "", "write a self-contained HTML report to `file`: summary, curves, and a gallery of samples with their adversarial examples and verdicts")
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
	fs.StringVar(&o.shardFlag, "shard", "", "evaluate shard `K/N` only (K from 0): blocks of 32 samples dealt round robin, block b to shard b mod N; merge the shards' --json reports with certify merge (default: from SLURM_ARRAY_TASK_ID/COUNT, or JOB_COMPLETION_INDEX with --shards)")
	fs.IntVar(&o.shards, "shards", 0, "number of shards `N`, with a Kubernetes Indexed Job's JOB_COMPLETION_INDEX as K")
	return fs
}

// parseArgs parses the command line into options. It returns pflag.ErrHelp for
// -h/--help and a usageError for anything wrong.
func parseArgs(args []string, stdout io.Writer, known methodSet) (options, error) {
	return parseArgsEnv(args, stdout, known, os.Getenv)
}

// parseArgsEnv is parseArgs reading the schedulers' shard index from getenv.
func parseArgsEnv(args []string, stdout io.Writer, known methodSet, getenv func(string) string) (options, error) {
	var o options
	var domain, methodList, attackList, norm, radius string
	fs := newFlags(&o, known, &domain, &methodList, &attackList, &norm, &radius)
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
	var err error
	if o.radii, err = parseRadii(radius); err != nil {
		return o, cli.Usagef("--radius %v", err)
	}
	o.radius = o.radii[0]
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
	if o.shard, err = resolveShard(o.shardFlag, o.shards, getenv); err != nil {
		return o, err
	}
	if o.shard.active() {
		o.params["shard"] = o.shard.String() // also when it came from the environment
		if o.vnn.property != "" {
			return o, cli.Usagef("--vnnlib decides one property: it cannot be sharded (shard %s from %s)", o.shard, o.shard.from)
		}
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
	return runWithEnv(ctx, args, stdout, stderr, known, os.Getenv)
}

// runWithEnv is runWith reading the schedulers' shard index from getenv.
func runWithEnv(ctx context.Context, args []string, stdout, stderr io.Writer, known methodSet, getenv func(string) string) int {
	if len(args) > 0 && args[0] == "replay" {
		return runReplay(ctx, args[1:], stdout, stderr, known)
	}
	if len(args) > 0 && args[0] == "merge" {
		return runMerge(args[1:], stdout, stderr, known)
	}
	o, err := parseArgsEnv(args, stdout, known, getenv)
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
	started := time.Now() // --total-timeout counts from here, loading included
	in, err := cli.Load(cli.Source{Model: o.model, Data: o.data, Labels: o.labels, Count: o.count,
		Lo: o.domain.Lo, Hi: o.domain.Hi, Logf: logf})
	if err != nil {
		return err
	}
	o.data, o.labels = in.Data, in.LabelsPath
	total := in.X.Shape[0]
	x, labels, indices, err := o.shard.take(in.X, in.Labels)
	if err != nil {
		return err
	}
	n := x.Shape[0]
	if o.shard.active() {
		logf("shard %s (from %s): %d of the %d samples", o.shard, o.shard.from, n, total)
	}
	if slices.Contains(o.methods, smoothingName) && o.norm != pipeline.L2 {
		logf("note: smoothing certifies L2 radii: certified.smoothing reads --radius %g as an L2 radius, not %s", o.radius, o.norm)
	}
	base := pipeline.Config{
		Model: in.Model, X: x, Labels: labels, Indices: indices,
		Norm: o.norm, Domain: o.domain, Seed: o.seed,
		ModelPath: o.model, ModelSHA256: in.ModelSHA256,
		DataPath: o.data, LabelsPath: o.labels,
		SampleTimeout: o.vnn.timeout,
	}
	if o.limits.totalTimeout > 0 {
		base.Deadline = started.Add(o.limits.totalTimeout)
	}
	if !o.quiet {
		base.Progress = progress.New(stderr)
	}
	// For the gallery: this run's HTML, or the merged one of its shards.
	base.KeepAdversarial = o.htmlPath != "" || o.shard.active()
	smoothingOpts := o.smoothing
	if len(o.radii) > 1 {
		smoothingOpts.cache = newSmoothingCache() // one CERTIFY per sample for all radii
	}
	ran := map[float64][]pipeline.Attack{} // per radius, for the sanity checks
	rep, err := pipeline.RunSweep(ctx, o.radii, func(r float64) (pipeline.Config, error) {
		cfg := base
		so := stageOptions{Radius: r, Norm: o.norm, Domain: o.domain, Seed: o.seed, SoundFP: o.soundFP, Timeout: o.vnn.timeout,
			Smoothing: smoothingOpts, Limits: o.limits}
		for _, name := range o.methods {
			cfg.Methods = append(cfg.Methods, known[name](so))
		}
		at := o
		at.radius = r
		var err error
		if cfg.Attacks, cfg.Audit, err = buildAttacks(at); err != nil {
			return cfg, err
		}
		ran[r] = append(append([]pipeline.Attack(nil), cfg.Attacks...), cfg.Audit...)
		return cfg, nil
	})
	if err != nil {
		return err
	}
	if err := recordRun(rep, o, started); err != nil {
		return err
	}
	o.shard.record(rep, total)
	if rep.Summary.Warnings, err = runWarnings(rep, in.Model, x, labels, ran); err != nil {
		return err
	}
	return writeOutputs(rep, o, galleryInputs(x, indices), stdout, logf)
}

// galleryInputs are the HTML gallery's pictures: the samples x, by index
// (indices[i] the index of row i; nil: 0..n-1).
func galleryInputs(x *nets.Tensor, indices []int) pipeline.HTMLOptions {
	o := pipeline.HTMLOptions{Inputs: map[int][]float64{}, Shape: x.Shape[1:]}
	n := x.Shape[0]
	for i := 0; i < n; i++ {
		ix := i
		if indices != nil {
			ix = indices[i]
		}
		o.Inputs[ix] = x.Row(i).Data
	}
	return o
}

// runWarnings are the report's warnings: the attacks' sanity checks of the model
// (once: they do not depend on the radius), the gradient-masking check at each
// radius (named by it in a sweep), unfinished attacks, and smoothing's.
func runWarnings(rep *pipeline.Report, model nets.Classifier, x *nets.Tensor, labels []int, ran map[float64][]pipeline.Attack) ([]string, error) {
	var warnings []string
	attacked := false
	for _, run := range rep.Runs() {
		attacked = attacked || len(ran[run.Radius]) > 0
	}
	if attacked && x.Shape[0] > 0 { // an empty shard: merge computes them
		ws, err := attacks.Sanity(model, x, labels)
		if err != nil {
			return nil, fmt.Errorf("sanity checks: %w", err)
		}
		for _, w := range ws {
			warnings = append(warnings, w.String())
		}
		for _, run := range rep.Runs() {
			ws, err := maskingWarnings(run.Samples, ran[run.Radius])
			if err != nil {
				return nil, err
			}
			for _, w := range ws {
				if len(rep.Sweep) > 0 {
					w = fmt.Sprintf("radius %g: %s", run.Radius, w)
				}
				warnings = append(warnings, w)
			}
		}
	}
	warnings = append(warnings, unfinishedAttackWarnings(rep)...)
	return append(warnings, smoothingWarnings(rep)...), nil
}

// unfinishedAttackWarnings says, per radius, how many correctly classified
// samples an attack gave no answer for (out of time): the empirical accuracy
// counts them as robust, which nobody showed.
func unfinishedAttackWarnings(rep *pipeline.Report) []string {
	var out []string
	for _, run := range rep.Runs() {
		n := 0
		for _, s := range run.Samples {
			for _, a := range rep.Attacks {
				if s.Correct() && s.Unknown[a] != "" {
					n++
					break
				}
			}
		}
		if n == 0 {
			continue
		}
		at := ""
		if len(rep.Sweep) > 0 {
			at = fmt.Sprintf("radius %g: ", run.Radius)
		}
		out = append(out, fmt.Sprintf("%s%d correctly classified samples have an attack that did not finish (see summary.unknown): the empirical accuracy counts them as robust, so it overstates what the attacks showed", at, n))
	}
	return out
}

// writeOutputs writes the report: the tables (or the JSON) to stdout and every
// file asked for (gallery has the HTML report's pictures). A shard writes its
// files with the shard in their names.
func writeOutputs(rep *pipeline.Report, o options, gallery pipeline.HTMLOptions, stdout io.Writer, logf func(string, ...any)) error {
	jsonPath := o.shard.outputPath(o.jsonPath)
	if jsonPath == "-" {
		if err := writeJSON(stdout, rep); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else {
		radius := strconv.FormatFloat(o.radius, 'g', -1, 64)
		if len(o.radii) > 1 {
			radius = "radii " + strings.Join(strings.Split(o.params["radius"], ","), ", ")
		} else {
			radius = "radius " + radius
		}
		shard := ""
		if o.shard.active() {
			shard = fmt.Sprintf(" (shard %s)", o.shard)
		}
		fmt.Fprintf(stdout, "model %s, %d samples%s of %s, %s %s, domain [%g,%g], seed %d\n",
			o.model, len(rep.Samples), shard, o.data, o.norm, radius, o.domain.Lo, o.domain.Hi, o.seed)
		if err := rep.WriteTablesWith(stdout, pipeline.TableOptions{PerSample: o.perSample, Color: colorful(stdout)}); err != nil {
			return err
		}
		if jsonPath != "" {
			if err := writeJSONFile(jsonPath, rep); err != nil {
				return err
			}
			logf("report written to %s", jsonPath)
		}
	}
	for _, out := range []struct {
		path, what string
		write      func(io.Writer) error
	}{
		{o.csvPath, "per-sample CSV", rep.WriteCSV},
		{o.mdPath, "Markdown summary", rep.WriteMarkdown},
		{o.plotPath, "accuracy-versus-radius plot", rep.WriteRadiusPNG},
		{o.htmlPath, "HTML report", func(w io.Writer) error { return rep.WriteHTML(w, gallery) }},
	} {
		path := o.shard.outputPath(out.path)
		if path == "" {
			continue
		}
		if err := writeFileWith(path, out.what, out.write); err != nil {
			return err
		}
		logf("%s written to %s", out.what, path)
	}
	sm := o.smoothing
	sm.CurveCSV = o.shard.outputPath(sm.CurveCSV)
	if err := writeSmoothingFiles(sm, rep, logf); err != nil {
		return err
	}
	if jsonPath == "-" {
		for _, w := range rep.Summary.Warnings {
			logf("warning: %s", w)
		}
	}
	if f := falsifiedCount(rep); f > 0 {
		return falsifiedError{f}
	}
	return nil
}

// falsifiedCount is the number of falsified certificates over every radius.
func falsifiedCount(rep *pipeline.Report) int {
	f := 0
	for _, run := range rep.Runs() {
		if c := run.Summary.FalsifiedCertificates; c != nil {
			f += *c
		}
	}
	return f
}

func writeJSON(w io.Writer, rep *pipeline.Report) error {
	b, err := json.MarshalIndent(rep.JSONView(), "", "  ")
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
