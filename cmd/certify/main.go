// Command certify measures, for a trained classifier, clean accuracy, empirical
// robust accuracy (attacks) and certified robust accuracy (bounds, LP, smoothing),
// per sample, in one run:
//
//	certify --radius 0.25 model.onnx
//
// Progress goes to stderr, tables to stdout, the full per-sample report to --json.
// Exit status: 0 success, 2 bad usage, 1 any other error, including a falsified
// certificate (a method certified a sample that an attack then broke).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/pipeline"
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

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError marks errors in the command line (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
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
	methods, attacks []string
	domain           pipeline.Domain
	perSample, quiet bool
	soundFP          bool
}

const usageHead = `usage: certify [flags] MODEL.onnx

Evaluates the classifier MODEL.onnx on the first --count samples of --data: clean
accuracy, then each certification method and attack within the --norm ball of
--radius around every sample, clipped to --domain. Tables go to stdout, progress to
stderr, the per-sample report to --json.

Without --data and --labels, ` + defaultData + ` and
` + defaultLabels + ` are looked for in the working directory and its
parents, then beside the executable.

Samples are fed to the model in its input shape. If the data's per-sample shape
differs but holds as many values, it is reshaped only when that is unambiguous: the
shapes differ by size-1 dimensions only, or one side is flat and the other a
single-channel image ([784] for [1,28,28]).

Certification methods (--methods):
  ibp          interval bound propagation (cheapest, loosest)
  crown        CROWN, backward linear relaxation (tighter, slower)
  alpha-crown  CROWN with optimised ReLU slopes (tightest, slowest)
They bound the network over a box. With --norm linf the box is the region itself;
with --norm l2 it is the smallest box containing the L2 ball (every coordinate
within --radius): still sound, since the box holds the ball, but much looser, as
the box is far larger than the ball. --sound-fp also bounds float64 rounding.
A sample counts as certified only if it is classified correctly.

Exit status: 0 success, 2 bad usage, 1 other errors, including falsified
certificates (a method certified a sample that an attack broke: a soundness bug).

flags:
`

// newFlags defines the flags on a fresh set, bound to o.
func newFlags(o *options, domain, methodList, attackList, norm *string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("certify", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard) // errors are reported by runContext
	fs.StringVar(&o.data, "data", "", "samples, .npy [N, ...sample shape] (default "+defaultData+")")
	fs.StringVar(&o.labels, "labels", "", "labels, .npy [N] of class indices (default "+defaultLabels+")")
	fs.IntVarP(&o.count, "count", "n", 100, "evaluate the first `n` samples (capped at the data size)")
	fs.Float64Var(&o.radius, "radius", 0.1, "perturbation radius `r` >= 0")
	fs.StringVar(norm, "norm", string(pipeline.LInf), "perturbation norm: linf or l2")
	fs.Int64Var(&o.seed, "seed", 1, "seed of every random choice")
	fs.StringVar(&o.jsonPath, "json", "", "write the report as JSON to `file` (- for stdout, instead of the tables)")
	fs.StringVar(methodList, "methods", none, "certification methods, comma separated, or none; valid: "+strings.Join(stageNames(methods()), ", "))
	fs.StringVar(attackList, "attacks", none, "attacks, comma separated, or none; valid: "+strings.Join(stageNames(attacks()), ", "))
	fs.StringVar(domain, "domain", "0,1", "data domain `lo,hi`: every input value lies in it")
	fs.BoolVar(&o.soundFP, "sound-fp", false, "bound methods: widen every bound by float64 rounding error, so certificates also hold for the float evaluation of the network")
	fs.BoolVar(&o.perSample, "per-sample", false, "print the per-sample table however many samples (always for n <= 20)")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no progress on stderr")
	return fs
}

// parseArgs parses the command line into options. It returns pflag.ErrHelp for
// -h/--help and a usageError for anything wrong.
func parseArgs(args []string, stdout io.Writer) (options, error) {
	var o options
	var domain, methodList, attackList, norm string
	fs := newFlags(&o, &domain, &methodList, &attackList, &norm)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(stdout, usageHead+fs.FlagUsages())
			return o, err
		}
		return o, usageError{err.Error()}
	}
	switch fs.NArg() {
	case 0:
		return o, usagef("missing MODEL.onnx")
	case 1:
		o.model = fs.Arg(0)
	default:
		return o, usagef("one model expected, got %d arguments: %s", fs.NArg(), strings.Join(fs.Args(), " "))
	}
	if o.count <= 0 {
		return o, usagef("--count %d: want at least 1", o.count)
	}
	if math.IsNaN(o.radius) || math.IsInf(o.radius, 0) || o.radius < 0 {
		return o, usagef("--radius %g: want a finite value >= 0", o.radius)
	}
	var err error
	if o.norm, err = pipeline.ParseNorm(norm); err != nil {
		return o, usagef("--norm: %v", err)
	}
	if o.domain, err = parseDomain(domain); err != nil {
		return o, usagef("--domain %q: %v", domain, err)
	}
	if (o.data == "") != (o.labels == "") {
		return o, usagef("--data and --labels go together: give both or neither")
	}
	if o.methods, err = parseStages("method", methodList, methods()); err != nil {
		return o, usagef("--methods: %v", err)
	}
	if o.attacks, err = parseStages("attack", attackList, attacks()); err != nil {
		return o, usagef("--attacks: %v", err)
	}
	return o, nil
}

// parseDomain parses "lo,hi" with finite lo < hi.
func parseDomain(s string) (pipeline.Domain, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 2 {
		return pipeline.Domain{}, fmt.Errorf("want two numbers lo,hi")
	}
	var v [2]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return pipeline.Domain{}, fmt.Errorf("%q is not a number", p)
		}
		v[i] = f
	}
	d := pipeline.Domain{Lo: v[0], Hi: v[1]}
	return d, d.Validate()
}

func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stdout)
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "certify: %v\nRun 'certify --help' for usage.\n", err)
		return exitUsage
	}
	if err := evaluate(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "certify: %v\n", err)
		return exitError
	}
	return exitOK
}

// evaluate loads the model and data, runs the pipeline and writes the results.
func evaluate(ctx context.Context, o options, stdout, stderr io.Writer) error {
	logf := func(format string, args ...any) {
		if !o.quiet {
			fmt.Fprintf(stderr, format+"\n", args...)
		}
	}

	raw, err := os.ReadFile(o.model)
	if err != nil {
		return fmt.Errorf("load model: %w", err)
	}
	sum := sha256.Sum256(raw)
	g, err := nets.DecodeONNX(raw, o.model)
	if err != nil {
		return err // "load MODEL: ..."
	}
	inShape, err := g.InputShape()
	if err != nil {
		return fmt.Errorf("model %s: %w", o.model, err)
	}

	if o.data == "" {
		if o.data, err = findDefault(defaultData); err != nil {
			return err
		}
		if o.labels, err = findDefault(defaultLabels); err != nil {
			return err
		}
	}
	x, err := readData(o.data)
	if err != nil {
		return err
	}
	labels, err := readLabels(o.labels, x.Shape[0])
	if err != nil {
		return err
	}
	rows := x.Shape[0]
	n := o.count
	if n > rows {
		logf("note: --count %d exceeds the %d samples in %s; using %d", n, rows, o.data, rows)
		n = rows
	}
	sample, err := conformShape(x.Shape[1:], inShape)
	if err != nil {
		return fmt.Errorf("data %s has shape %s, model %s takes input %s: %v",
			o.data, fmtShape(x.Shape), o.model, fmtShape(append([]int{-1}, inShape...)), err)
	}
	per := x.Len() / rows
	x = nets.FromData(x.Data[:n*per], append([]int{n}, sample...)...)
	if err := checkDomain(o.data, x, o.domain.Lo, o.domain.Hi); err != nil {
		return err
	}

	// One sample through the model: its number of classes, and an early, clear
	// error if it cannot run on this data at all.
	probe, err := g.Logits(x.Row(0))
	if err != nil {
		return fmt.Errorf("model %s on data %s (samples of shape %s): %w", o.model, o.data, fmtShape(sample), err)
	}
	if probe.Rank() != 2 || probe.Shape[0] != 1 || probe.Shape[1] < 2 {
		return fmt.Errorf("model %s: output shape %s for one sample; want [1, classes] with at least 2 classes", o.model, fmtShape(probe.Shape))
	}
	classes := probe.Shape[1]
	if err := checkClasses(o.labels, labels, classes); err != nil {
		return err
	}
	logf("model %s: input %s, %d classes, sha256 %s", o.model, fmtShape(append([]int{-1}, inShape...)), classes, hex.EncodeToString(sum[:])[:12])
	logf("data %s: %s, using the first %d; labels %s", o.data, fmtShape(append([]int{rows}, sample...)), n, o.labels)

	so := stageOptions{Radius: o.radius, Norm: o.norm, Domain: o.domain, Seed: o.seed, SoundFP: o.soundFP}
	cfg := pipeline.Config{
		Model: g, X: x, Labels: labels[:n],
		Radius: o.radius, Norm: o.norm, Domain: o.domain, Seed: o.seed,
		ModelPath: o.model, ModelSHA256: hex.EncodeToString(sum[:]),
		DataPath: o.data, LabelsPath: o.labels,
	}
	known := methods()
	for _, name := range o.methods {
		cfg.Methods = append(cfg.Methods, known[name](so))
	}
	knownAttacks := attacks()
	for _, name := range o.attacks {
		cfg.Attacks = append(cfg.Attacks, knownAttacks[name](so))
	}
	if !o.quiet {
		cfg.Progress = stderr
	}
	rep, err := pipeline.Run(ctx, cfg)
	if err != nil {
		return err
	}

	if o.jsonPath == "-" {
		if err := writeJSON(stdout, rep); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else {
		fmt.Fprintf(stdout, "model %s, %d samples of %s, %s radius %g, domain [%g,%g], seed %d\n",
			o.model, n, o.data, o.norm, o.radius, o.domain.Lo, o.domain.Hi, o.seed)
		if err := rep.WriteTables(stdout, o.perSample); err != nil {
			return err
		}
		if o.jsonPath != "" {
			if err := writeJSONFile(o.jsonPath, rep); err != nil {
				return err
			}
			logf("report written to %s", o.jsonPath)
		}
	}
	if f := rep.Summary.FalsifiedCertificates; f != nil && *f > 0 {
		return fmt.Errorf("%d falsified certificates: a certification method proved samples robust that an attack then broke; it is unsound (see samples[].falsified in the report)", *f)
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

func writeJSONFile(path string, rep *pipeline.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := writeJSON(f, rep); err != nil {
		f.Close()
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}
