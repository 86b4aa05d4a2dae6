// Command attack runs one adversarial attack on a classifier and keeps what it
// found: the adversarial examples as .npy, a PNG grid of originals, perturbations
// and adversarial examples, and their statistics.
//
//	attack --attack pgd --radius 0.1 --out adv.npy --png grid.png model.onnx
//
// Progress goes to stderr, the statistics to stdout. Exit status: 0 success, 2 bad
// usage, 1 any other error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
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
	"github.com/olekukonko/tablewriter"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := runContext(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the parsed command line.
type options struct {
	model, attack     string
	data, labels      string
	count             int
	radius            float64
	norm              attacks.Norm
	lo, hi            float64
	seed              int64
	steps, restarts   int
	step              float64
	queries           int
	surrogate         string
	out, png          string
	pngRows, pngScale int
	quiet             bool
}

func usageHead() string {
	var b strings.Builder
	b.WriteString(`usage: attack [flags] MODEL.onnx|DEFENSE.json

Runs one attack (--attack) on the first --count samples of --data within the --norm
ball of --radius around each, clipped to --domain, and prints the clean accuracy, the
attack's success rate on the correctly classified samples, the robust accuracy, the
median distances (L∞, L2, L1) of the adversarial examples found and the queries
spent. Every adversarial example is re-checked: inside the budget and misclassified.

--out writes every sample's result ([n, ...model input], float64: the adversarial
example where one was found, else the sample itself); --png a grid of the first
--png-rows samples for image models ([1,H,W] or [3,H,W]): original, perturbation
(scaled per sample to the full range, grey = 0) and adversarial example.

Without --data and --labels, ` + cli.DefaultData + ` and
` + cli.DefaultLabels + ` are looked for in the working directory and its
parents, then beside the executable.

Attacks (--attack; the norms each supports):
`)
	for _, name := range attacks.Names() {
		doc, norms, _ := attacks.Describe(name)
		ns := make([]string, len(norms))
		for i, n := range norms {
			ns[i] = n.String()
		}
		fmt.Fprintf(&b, "  %-12s %s [%s]\n", name, doc, strings.Join(ns, ","))
	}
	b.WriteString("\nflags:\n")
	return b.String()
}

func newFlags(o *options, norm, domain *string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("attack", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.attack, "attack", "pgd", "the attack to run (see the list above)")
	fs.StringVar(&o.data, "data", "", "samples, .npy [N, ...sample shape] (default "+cli.DefaultData+")")
	fs.StringVar(&o.labels, "labels", "", "labels, .npy [N] of class indices (default "+cli.DefaultLabels+")")
	fs.IntVarP(&o.count, "count", "n", 100, "attack the first `n` samples (capped at the data size)")
	fs.Float64Var(&o.radius, "radius", 0.1, "perturbation radius `r` >= 0")
	fs.StringVar(norm, "norm", "linf", "perturbation norm: linf, l2 or l1")
	fs.StringVar(domain, "domain", "0,1", "data domain `lo,hi`: every input value lies in it")
	fs.Int64Var(&o.seed, "seed", 1, "seed of every random choice")
	fs.IntVar(&o.steps, "pgd-steps", 0, "iterations of the iterative attacks (0: each attack's default, PGD 40)")
	fs.Float64Var(&o.step, "pgd-step", 0, "step size of pgd, bim, mifgsm in input units (0: default, PGD 0.01 for linf)")
	fs.IntVar(&o.restarts, "restarts", 0, "random restarts of pgd, apgd-ce, apgd-dlr, apgd-t (0: the default, 1)")
	fs.IntVar(&o.queries, "queries", 0, "query budget per sample of the black-box attacks (0: default, square 5000, others 10000)")
	fs.StringVar(&o.surrogate, "surrogate", "", "transfer: the `FILE.onnx` model to craft the examples on")
	fs.StringVar(&o.out, "out", "", "write the results to `FILE.npy`")
	fs.StringVar(&o.png, "png", "", "write a grid of originals, perturbations and adversarial examples to `FILE.png`")
	fs.IntVar(&o.pngRows, "png-rows", 16, "samples in the --png grid (the first ones)")
	fs.IntVar(&o.pngScale, "png-scale", 2, "--png pixels per input pixel")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no progress on stderr")
	return fs
}

func parseArgs(args []string, stdout io.Writer) (options, error) {
	var o options
	var norm, domain string
	fs := newFlags(&o, &norm, &domain)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(stdout, usageHead()+fs.FlagUsages())
			return o, err
		}
		return o, cli.UsageError{Msg: err.Error()}
	}
	switch fs.NArg() {
	case 0:
		return o, cli.Usagef("missing MODEL.onnx (or a defense wrapper spec DEFENSE.json)")
	case 1:
		o.model = fs.Arg(0)
	default:
		return o, cli.Usagef("one model expected, got %d arguments: %s", fs.NArg(), strings.Join(fs.Args(), " "))
	}
	if !slices.Contains(attacks.Names(), o.attack) {
		return o, cli.Usagef("--attack: unknown attack %q (valid: %s)", o.attack, strings.Join(attacks.Names(), ", "))
	}
	if o.count <= 0 {
		return o, cli.Usagef("--count %d: want at least 1", o.count)
	}
	if math.IsNaN(o.radius) || math.IsInf(o.radius, 0) || o.radius < 0 {
		return o, cli.Usagef("--radius %g: want a finite value >= 0", o.radius)
	}
	var err error
	if o.norm, err = attacks.ParseNorm(norm); err != nil {
		return o, cli.Usagef("--norm: %v", err)
	}
	if o.lo, o.hi, err = cli.ParseDomain(domain); err != nil {
		return o, cli.Usagef("--domain %q: %v", domain, err)
	}
	if (o.data == "") != (o.labels == "") {
		return o, cli.Usagef("--data and --labels go together: give both or neither")
	}
	switch {
	case o.steps < 0, o.restarts < 0, o.queries < 0, o.step < 0 || math.IsNaN(o.step) || math.IsInf(o.step, 0):
		return o, cli.Usagef("--pgd-steps, --pgd-step, --restarts and --queries must be >= 0 (0: the attack's default)")
	case o.pngRows < 1 || o.pngScale < 1:
		return o, cli.Usagef("--png-rows and --png-scale must be >= 1")
	case (o.attack == "transfer") != (o.surrogate != ""):
		return o, cli.Usagef("--surrogate FILE.onnx goes with --attack transfer, and only with it")
	}
	if _, norms, _ := attacks.Describe(o.attack); !slices.Contains(norms, o.norm) {
		return o, cli.Usagef("--attack %s does not support --norm %v", o.attack, o.norm)
	}
	return o, nil
}

// run is the whole command, callable in-process by tests; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stdout)
	if errors.Is(err, pflag.ErrHelp) {
		return cli.ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "attack: %v\nRun 'attack --help' for usage.\n", err)
		return cli.ExitUsage
	}
	if err := attack(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "attack: %v\n", err)
		return cli.ExitError
	}
	return cli.ExitOK
}

// attack loads the model and data, runs the attack and writes the results.
func attack(ctx context.Context, o options, stdout, stderr io.Writer) error {
	logf := func(format string, args ...any) {
		if !o.quiet {
			fmt.Fprintf(stderr, format+"\n", args...)
		}
	}
	in, err := cli.Load(cli.Source{Model: o.model, Data: o.data, Labels: o.labels, Count: o.count, Lo: o.lo, Hi: o.hi, Logf: logf})
	if err != nil {
		return err
	}
	sample := in.X.Shape[1:]
	if o.png != "" {
		if _, _, _, err := imageShape(sample); err != nil {
			return fmt.Errorf("--png: %w", err)
		}
	}
	b := attacks.Budget{Norm: o.norm, Eps: o.radius, Lo: o.lo, Hi: o.hi}
	opts := attacks.Options{Steps: o.steps, Step: o.step, Restarts: o.restarts, Queries: o.queries}
	if o.surrogate != "" {
		if opts.Surrogate, err = nets.ReadONNX(o.surrogate); err != nil {
			return fmt.Errorf("surrogate: %w", err)
		}
	}
	a, err := attacks.New(o.attack, b, uint64(o.seed), opts)
	if err != nil {
		return err
	}
	n := in.X.Shape[0]

	z, err := in.Model.Logits(in.X)
	if err != nil {
		return fmt.Errorf("clean pass: %w", err)
	}
	pred := z.Argmax()
	var correct []int
	for i, p := range pred {
		if p == in.Labels[i] {
			correct = append(correct, i)
		}
	}
	logf("%s (%v): %d samples, %d classified correctly, %v radius %g", o.attack, attacks.KindOf(a), n, len(correct), o.norm, o.radius)

	start := time.Now()
	var pr progress.Display = progress.NewLines(io.Discard, 0, nil)
	if !o.quiet {
		pr = progress.New(stderr)
	}
	res, minimal, err := runChunks(ctx, a, in.Model, b, in.X, in.Labels, pr)
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()

	st := stats(res, minimal, in.X, correct, o.norm)
	fmt.Fprintf(stdout, "model %s, %d samples of %s, attack %s, %v radius %g, domain [%g,%g], seed %d\n",
		o.model, n, in.Data, o.attack, o.norm, o.radius, o.lo, o.hi, o.seed)
	if err := st.write(stdout, n, secs); err != nil {
		return err
	}
	if o.out != "" {
		if err := nets.WriteNPY(o.out, res.Adv, nets.NPYFloat64); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		logf("adversarial examples written to %s", o.out)
	}
	if o.png != "" {
		rows := min(o.pngRows, n)
		if err := writeGrid(o.png, in.X, res.Adv, rows, o.pngScale, o.lo, o.hi); err != nil {
			return fmt.Errorf("--png: %w", err)
		}
		logf("grid of the first %d samples written to %s", rows, o.png)
	}
	return nil
}

// chunk is how many samples runChunks attacks per call: the progress display
// counts chunks. Each sample draws its randomness from its index in the data file
// (attacks.WithRows), so the chunks change nothing in what is found.
const chunk = 32

// runChunks is runAttack on x chunk rows at a time, reporting progress, with the
// chunks' results joined in row order.
func runChunks(ctx context.Context, a attacks.Detailed, m nets.Classifier, b attacks.Budget, x *nets.Tensor, labels []int, pr progress.Display) (res, minimal *attacks.Result, err error) {
	n := x.Shape[0]
	per := x.Len() / n
	pr.Start(a.Name(), n)
	join := func(into **attacks.Result, r *attacks.Result) {
		if r == nil {
			return
		}
		if *into == nil {
			*into = &attacks.Result{Adv: nets.NewTensor(0)}
		}
		t := *into
		t.Adv.Data = append(t.Adv.Data, r.Adv.Data...)
		t.Success = append(t.Success, r.Success...)
		t.Dist = append(t.Dist, r.Dist...)
		t.Queries = append(t.Queries, r.Queries...)
	}
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		ids := make([]int, hi-lo)
		for i := range ids {
			ids[i] = lo + i
		}
		xs := nets.FromData(append([]float64(nil), x.Data[lo*per:hi*per]...), append([]int{hi - lo}, x.Shape[1:]...)...)
		r, mr, err := runAttack(attacks.WithRows(ctx, ids), a, m, b, xs, labels[lo:hi])
		if err != nil {
			return nil, nil, fmt.Errorf("samples %d..%d: %w", lo, hi-1, err)
		}
		join(&res, r)
		join(&minimal, mr)
		pr.Add(hi - lo)
	}
	res.Adv.Shape = append([]int(nil), x.Shape...)
	if minimal != nil {
		minimal.Adv.Shape = append([]int(nil), x.Shape...)
	}
	pr.Done(fmt.Sprintf("%s: %d samples attacked", a.Name(), n))
	return res, minimal, nil
}

// runAttack runs a on x. For a minimal-norm attack (DeepFool, C&W, EAD) it also
// returns the unbounded result (closest adversarial points at any distance); the
// result inside the budget is then derived from it, as the attack's own Attack does.
func runAttack(ctx context.Context, a attacks.Detailed, m nets.Classifier, b attacks.Budget, x *nets.Tensor, labels []int) (res, minimal *attacks.Result, err error) {
	inner := attacks.Attack(a)
	for {
		nm, ok := inner.(attacks.Named)
		if !ok {
			break
		}
		inner = nm.Inner
	}
	mn, ok := inner.(attacks.MinimalNorm)
	if !ok {
		res, err = a.Attack(ctx, m, x, labels)
		return res, nil, err
	}
	if minimal, err = mn.MinNorm(ctx, m, x, labels); err != nil {
		return nil, nil, err
	}
	adv := minimal.Adv.Clone()
	per := x.Len() / x.Shape[0]
	for i := range labels {
		row := adv.Data[i*per : (i+1)*per]
		if !b.Contains(row, x.Data[i*per:(i+1)*per]) {
			copy(row, x.Data[i*per:(i+1)*per])
		}
	}
	res, err = attacks.Check(m, b, x, adv, labels, minimal.Queries)
	return res, minimal, err
}

// summary is what the command prints.
type summary struct {
	correct, broken int
	// median distances of the broken samples in L∞, L2, L1.
	medInf, med2, med1 float64
	// queries over the correctly classified samples.
	qMedian, qMax int
	qMean         float64
	// minimal: the minimal-norm attack's unbounded result, when it has one.
	minimal   bool
	minFound  int
	minMedian float64
	norm      attacks.Norm
}

func stats(res, minimal *attacks.Result, x *nets.Tensor, correct []int, norm attacks.Norm) summary {
	s := summary{correct: len(correct), norm: norm, medInf: math.NaN(), med2: math.NaN(), med1: math.NaN(), minMedian: math.NaN()}
	per := x.Len() / x.Shape[0]
	var dInf, d2, d1 []float64
	var qs []int
	for _, i := range correct {
		qs = append(qs, res.Queries[i])
		if !res.Success[i] {
			continue
		}
		s.broken++
		a, o := res.Adv.Data[i*per:(i+1)*per], x.Data[i*per:(i+1)*per]
		dInf = append(dInf, attacks.Distance(attacks.LInf, a, o))
		d2 = append(d2, attacks.Distance(attacks.L2, a, o))
		d1 = append(d1, attacks.Distance(attacks.L1, a, o))
	}
	s.medInf, s.med2, s.med1 = median(dInf), median(d2), median(d1)
	if len(qs) > 0 {
		slices.Sort(qs)
		s.qMedian, s.qMax = qs[len(qs)/2], qs[len(qs)-1]
		if len(qs)%2 == 0 {
			s.qMedian = (qs[len(qs)/2-1] + qs[len(qs)/2]) / 2
		}
		sum := 0
		for _, q := range qs {
			sum += q
		}
		s.qMean = float64(sum) / float64(len(qs))
	}
	if minimal != nil {
		s.minimal = true
		var d []float64
		for _, i := range correct {
			if minimal.Success[i] {
				d = append(d, minimal.Dist[i])
			}
		}
		s.minFound, s.minMedian = len(d), median(d)
	}
	return s
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (s summary) write(w io.Writer, n int, secs float64) error {
	pct := func(a, b int) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f%% (%d/%d)", 100*float64(a)/float64(b), a, b)
	}
	f := func(v float64) string {
		if math.IsNaN(v) {
			return "-"
		}
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	rows := [][]string{
		{"samples", strconv.Itoa(n)},
		{"clean accuracy", pct(s.correct, n)},
		{"attack success (of the correct)", pct(s.broken, s.correct)},
		{"robust accuracy", pct(s.correct-s.broken, n)},
		{"median distance, linf / l2 / l1", f(s.medInf) + " / " + f(s.med2) + " / " + f(s.med1)},
		{"queries per sample, median / mean / max", fmt.Sprintf("%d / %.1f / %d", s.qMedian, s.qMean, s.qMax)},
	}
	if s.minimal {
		rows = append(rows, []string{"minimal " + s.norm.String() + " distance, any radius (median)",
			fmt.Sprintf("%s (%d of %d found)", f(s.minMedian), s.minFound, s.correct)})
	}
	rows = append(rows, []string{"seconds", strconv.FormatFloat(secs, 'f', 3, 64)})
	t := tablewriter.NewTable(w)
	t.Header("metric", "value")
	for _, r := range rows {
		if err := t.Append(r); err != nil {
			return err
		}
	}
	return t.Render()
}
