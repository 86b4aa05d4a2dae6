// Command zoo evaluates every member of the defense zoo on the same test images:
// clean accuracy, accuracy under FGSM, PGD, PGD on the C&W margin loss, the Square
// attack (members that may mask gradients) and the member's adaptive attack
// (defenses.Adaptive), the per-image worst case, and certified accuracy by IBP,
// CROWN and LP (plain graphs) or randomized smoothing (the noise-trained network).
//
//	zoo --count 1000 --out-md testdata/zoo.md --out-json testdata/zoo.json
//
// A member whose file does not exist is skipped with a note (an error with
// --strict). Progress and timings go to stderr; the files hold no timings, so the
// same seed gives the same files. Exit status: 0 success, 2 bad usage, 1 any other
// error (a member that failed to load or evaluate: the files are still written).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certify-dev/certify/defenses"
	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/smoothing"
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
	dir, data, labels string
	dataName          string // data as named in the report
	outMD, outJSON    string
	count             int
	members           []Member
	strict, quiet     bool
	settings          settings
	render            []string // --render: JSON row files to merge
}

const usageHead = `usage: zoo [flags]

Evaluates the members of the defense zoo (model files under --dir) on the first
--count images of --data: clean accuracy, accuracy under FGSM, PGD, PGD-CW (PGD on
the C&W margin loss), Square (black box, for members that may mask gradients) and
the member's adaptive attack (BPDA/EOT/detector-aware, when the model names one),
the worst case over them per image, and certified accuracy (IBP, CROWN, LP for
plain graphs; randomized smoothing for the noise-trained network, L2 rows).
Writes a Markdown table (--out-md) and a JSON list of rows (--out-json). A member
whose file is missing is skipped with a note, or is an error with --strict.

`

func newFlags(o *options, s *settings, members, eps, l2eps *string) *pflag.FlagSet {
	f := pflag.NewFlagSet("zoo", pflag.ContinueOnError)
	f.SortFlags = false
	f.SetOutput(io.Discard)
	f.StringVar(&o.dir, "dir", "testdata", "folder of the member files (and of the default data)")
	f.StringVar(&o.data, "data", "", "test images, .npy [N,1,28,28] in [0,1] (default DIR/mnist-test-1k.npy)")
	f.StringVar(&o.labels, "labels", "", "their labels, .npy [N] (default DIR/mnist-test-1k-labels.npy)")
	f.IntVarP(&o.count, "count", "n", 1000, "evaluate the first `n` images (capped at the data size)")
	f.StringVar(&o.outMD, "out-md", "", "Markdown table (default DIR/zoo.md)")
	f.StringVar(&o.outJSON, "out-json", "", "JSON rows (default DIR/zoo.json)")
	f.StringVar(members, "members", "", "comma-separated member names to evaluate (default all)")
	f.Uint64Var(&s.Seed, "seed", 1, "seed of every random choice")
	f.StringVar(eps, "eps-list", "", "comma-separated L∞ radii replacing every L∞ member's (default 0.1,0.3)")
	f.StringVar(l2eps, "l2-eps-list", "", "comma-separated L2 radii replacing every L2 member's (default 0.25,0.5,0.75)")
	f.IntVar(&s.PGDSteps, "pgd-steps", 40, "steps of PGD and PGD-CW (step 2.5ε/steps)")
	f.IntVar(&s.AdaptiveSteps, "adaptive-steps", 50, "steps of the adaptive PGD (step 2.5ε/steps)")
	f.IntVar(&s.AdaptiveRestarts, "adaptive-restarts", 1, "random restarts of the adaptive PGD")
	f.IntVar(&s.SquareQueries, "square-queries", 500, "Square attack queries per image (0: no Square)")
	f.IntVar(&s.LPCount, "lp-count", 100, "LP on the first `n` images (0: no LP)")
	f.IntVar(&s.SmoothCount, "smoothing-count", 200, "randomized smoothing on the first `n` images (0: none)")
	f.Float64Var(&s.Sigma, "sigma", 0.25, "smoothing noise level σ (the noise-trained member's)")
	f.IntVar(&s.SmoothN, "smoothing-n", 10000, "smoothing: noise samples estimating the top class's probability")
	f.IntVar(&s.SmoothN0, "smoothing-n0", smoothing.DefaultN0, "smoothing: noise samples selecting the top class")
	f.Float64Var(&s.SmoothAlpha, "smoothing-alpha", smoothing.DefaultAlpha, "smoothing: failure probability α of each certificate")
	f.BoolVar(&o.strict, "strict", false, "a missing member file or a member that fails is an error (default: skipped with a note)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress on stderr")
	f.StringSliceVar(&o.render, "render", nil, "evaluate nothing: merge these --out-json files of earlier runs (same flags, other --members) into --out-json and --out-md")
	return f
}

func parseArgs(args []string, stdout io.Writer) (options, error) {
	var o options
	var members, eps, l2eps string
	f := newFlags(&o, &o.settings, &members, &eps, &l2eps)
	if err := f.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(stdout, usageHead+"Members:\n"+memberList()+"\nflags:\n"+f.FlagUsages())
			return o, err
		}
		return o, cli.UsageError{Msg: err.Error()}
	}
	if f.NArg() > 0 {
		return o, cli.Usagef("unexpected arguments: %s (zoo takes only flags)", strings.Join(f.Args(), " "))
	}
	s := &o.settings
	switch {
	case o.count < 1:
		return o, cli.Usagef("--count %d: want at least 1", o.count)
	case s.PGDSteps < 1 || s.AdaptiveSteps < 1 || s.AdaptiveRestarts < 1:
		return o, cli.Usagef("--pgd-steps, --adaptive-steps and --adaptive-restarts must be at least 1")
	case s.SquareQueries < 0 || s.LPCount < 0 || s.SmoothCount < 0:
		return o, cli.Usagef("--square-queries, --lp-count and --smoothing-count must be >= 0")
	case !(s.Sigma > 0) || math.IsInf(s.Sigma, 0):
		return o, cli.Usagef("--sigma %g: want a finite σ > 0", s.Sigma)
	case s.SmoothN < 1 || s.SmoothN0 < 1:
		return o, cli.Usagef("--smoothing-n and --smoothing-n0 must be at least 1")
	case !(s.SmoothAlpha > 0 && s.SmoothAlpha < 1):
		return o, cli.Usagef("--smoothing-alpha %g: want 0 < α < 1", s.SmoothAlpha)
	}
	var err error
	if o.members, err = selectMembers(zoo(), members); err != nil {
		return o, cli.UsageError{Msg: err.Error()}
	}
	for _, fl := range []struct {
		name, value, norm string
	}{{"--eps-list", eps, "linf"}, {"--l2-eps-list", l2eps, "l2"}} {
		if fl.value == "" {
			continue
		}
		list, err := parseEpsList(fl.value)
		if err != nil {
			return o, cli.Usagef("%s %q: %v", fl.name, fl.value, err)
		}
		for i := range o.members {
			if o.members[i].Norm == fl.norm {
				o.members[i].Epsilons = list
			}
		}
	}
	if o.data == "" {
		o.data = filepath.Join(o.dir, "mnist-test-1k.npy")
	}
	if o.labels == "" {
		o.labels = filepath.Join(o.dir, "mnist-test-1k-labels.npy")
	}
	if o.outMD == "" {
		o.outMD = filepath.Join(o.dir, "zoo.md")
	}
	if o.outJSON == "" {
		o.outJSON = filepath.Join(o.dir, "zoo.json")
	}
	o.dataName = filepath.Base(o.data)
	return o, nil
}

// memberList is the zoo for the usage text.
func memberList() string {
	var b strings.Builder
	for _, m := range zoo() {
		fmt.Fprintf(&b, "  %-20s %s\n", m.Defense, m.File)
	}
	return b.String()
}

// selectMembers returns the members named in the comma-separated list, in zoo
// order (all for an empty list).
func selectMembers(all []Member, list string) ([]Member, error) {
	if strings.TrimSpace(list) == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, fmt.Errorf("--members %q: empty name", list)
		}
		if !slices.ContainsFunc(all, func(m Member) bool { return m.Defense == name }) {
			names := make([]string, len(all))
			for i, m := range all {
				names[i] = m.Defense
			}
			return nil, fmt.Errorf("--members: unknown member %q (valid: %s)", name, strings.Join(names, ", "))
		}
		want[name] = true
	}
	var out []Member
	for _, m := range all {
		if want[m.Defense] {
			out = append(out, m)
		}
	}
	return out, nil
}

// parseEpsList parses comma-separated radii: finite, > 0, no duplicates.
func parseEpsList(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			return nil, fmt.Errorf("radius %g: want a finite value > 0", v)
		}
		if slices.Contains(out, v) {
			return nil, fmt.Errorf("radius %g given twice", v)
		}
		out = append(out, v)
	}
	return out, nil
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
		fmt.Fprintf(stderr, "zoo: %v\nRun 'zoo --help' for usage.\n", err)
		return cli.ExitUsage
	}
	o.settings.Logf = func(format string, args ...any) {
		if !o.quiet {
			fmt.Fprintf(stderr, format+"\n", args...)
		}
	}
	if len(o.render) > 0 {
		if err := renderZoo(o); err != nil {
			fmt.Fprintf(stderr, "zoo: %v\n", err)
			return cli.ExitError
		}
		return cli.ExitOK
	}
	failed, err := evaluateZoo(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "zoo: %v\n", err)
		return cli.ExitError
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "zoo: %d member(s) failed (see the notes in %s)\n", failed, o.outMD)
		return cli.ExitError
	}
	return cli.ExitOK
}

// evaluateZoo evaluates every selected member and writes the files. It returns
// the number of members that failed (skipped with their error in the notes).
func evaluateZoo(ctx context.Context, o options, stderr io.Writer) (int, error) {
	logf := o.settings.Logf
	x, err := cli.ReadData(o.data)
	if err != nil {
		return 0, err
	}
	labels, err := cli.ReadLabels(o.labels, x.Shape[0])
	if err != nil {
		return 0, err
	}
	if err := cli.CheckDomain(o.data, x, 0, 1); err != nil {
		return 0, err
	}
	n := min(o.count, x.Shape[0])
	per := x.Len() / x.Shape[0]
	x = nets.FromData(x.Data[:n*per], append([]int{n}, x.Shape[1:]...)...)
	labels = labels[:n]
	o.count = n

	total := time.Now()
	var rows []Row
	failed := 0
	for _, m := range o.members {
		start := time.Now()
		mrows, err := evaluateMember(ctx, m, o.dir, x, labels, o.settings)
		var missing *missingError
		switch {
		case errors.As(err, &missing):
			if o.strict {
				return 0, fmt.Errorf("%s: %w (--strict)", m.Defense, err)
			}
			fmt.Fprintf(stderr, "zoo: %s: skipped: %v\n", m.Defense, err)
			mrows = skippedRows(m, missing.note())
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case err != nil:
			if o.strict {
				return 0, fmt.Errorf("%s: %w", m.Defense, err)
			}
			failed++
			fmt.Fprintf(stderr, "zoo: %s: FAILED: %v\n", m.Defense, err)
			mrows = skippedRows(m, "failed: "+err.Error())
		default:
			logf("zoo: %s done [%.1fs]", m.Defense, time.Since(start).Seconds())
		}
		rows = append(rows, mrows...)
	}
	logf("zoo: %d member(s), %d row(s) [%.1fs]", len(o.members), len(rows), time.Since(total).Seconds())
	if err := writeFile(o.outJSON, func(w io.Writer) error { return writeJSON(w, rows) }); err != nil {
		return 0, err
	}
	if err := writeFile(o.outMD, func(w io.Writer) error { return writeMarkdown(w, settingsHeader(o), rows) }); err != nil {
		return 0, err
	}
	return failed, nil
}

// renderZoo merges the rows of earlier runs (--render), each member's from the
// last file that evaluated it, in zoo order, and writes them as an evaluation
// would: so the zoo can be evaluated in parts (on several machines, or as members
// become available) and still give one table.
func renderZoo(o options) error {
	byMember := map[string][]Row{}
	for _, path := range o.render {
		raw, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("--render: %w", err)
		}
		var rows []Row
		if err := json.Unmarshal(raw, &rows); err != nil {
			return fmt.Errorf("--render %s: not a zoo JSON file: %w", path, err)
		}
		ran := map[string][]Row{}
		for _, r := range rows {
			if r.N > 0 {
				ran[r.Defense] = append(ran[r.Defense], r)
			}
		}
		for name, rs := range ran {
			byMember[name] = rs
		}
	}
	var rows []Row
	for _, m := range o.members {
		rs, ok := byMember[m.Defense]
		if !ok {
			rs = skippedRows(m, "skipped: not evaluated")
		}
		rows = append(rows, rs...)
	}
	if err := writeFile(o.outJSON, func(w io.Writer) error { return writeJSON(w, rows) }); err != nil {
		return err
	}
	return writeFile(o.outMD, func(w io.Writer) error { return writeMarkdown(w, settingsHeader(o), rows) })
}

// missingError is a member whose model file does not exist.
type missingError struct{ dir, file string }

func (e *missingError) Error() string {
	return fmt.Sprintf("model file %s does not exist", filepath.Join(e.dir, e.file))
}

// note is the error as the output files say it: the file relative to --dir, so
// that the files do not depend on where the zoo lives.
func (e *missingError) note() string { return fmt.Sprintf("skipped: no file %s", e.file) }

// evaluateMember loads the member's model (m.File in dir) and evaluates it at each
// of its radii.
func evaluateMember(ctx context.Context, m Member, dir string, x *nets.Tensor, labels []int, s settings) ([]Row, error) {
	path := filepath.Join(dir, m.File)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, &missingError{dir: dir, file: m.File}
	}
	start := time.Now()
	model, err := defenses.Load(path)
	if err != nil {
		return nil, err
	}
	var capped string
	if m.MaxImages > 0 && m.MaxImages < len(labels) {
		per := x.Len() / x.Shape[0]
		x = nets.FromData(x.Data[:m.MaxImages*per], append([]int{m.MaxImages}, x.Shape[1:]...)...)
		labels = labels[:m.MaxImages]
		capped = fmt.Sprintf("first %d images only (each forward pass is an optimisation)", m.MaxImages)
	}
	if m.AdaptiveSteps > 0 {
		s.AdaptiveSteps = m.AdaptiveSteps
	}
	if m.AdaptiveRestarts > 0 {
		s.AdaptiveRestarts = m.AdaptiveRestarts
	}
	e, err := newMemberEval(m, model, x, labels, s)
	if err != nil {
		return nil, err
	}
	s.Logf("zoo: %s (%s): clean %.1f%% on %d images [%.1fs]", m.Defense, m.File, 100*fraction(e.correct), len(labels), time.Since(start).Seconds())
	var rows []Row
	for _, eps := range m.Epsilons {
		r, err := e.row(ctx, eps)
		if err != nil {
			return nil, err
		}
		if capped != "" {
			r.Notes = strings.TrimPrefix(r.Notes+"; "+capped, "; ")
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// skippedRows are the rows of a member that was not evaluated: no results, the
// reason in the notes.
func skippedRows(m Member, note string) []Row {
	var rows []Row
	for _, eps := range m.Epsilons {
		rows = append(rows, Row{Defense: m.Defense, Model: m.File, Norm: m.Norm, Epsilon: eps,
			Attacks: map[string]float64{}, Certified: map[string]float64{}, Notes: note})
	}
	return rows
}

// writeFile writes path through a temporary file in the same folder, so a failed
// run does not leave half a file.
func writeFile(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".zoo-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
