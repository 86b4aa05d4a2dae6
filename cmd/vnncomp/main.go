// Command vnncomp runs verify.Decide on the VNN-COMP benchmark instances listed in
// answers.csv and compares with the published answers:
//
//	go run ./cmd/vnncomp --timeout 60s [--family acasxu] [DIR]
//
// It prints one row per family: instances, answered sat and unsat by us, wrong
// answers (a sat where the published answer is unsat or the reverse: must be 0),
// errors, our total time, and the number solved by the published tool that solved
// most of the family. Exit status 3 when any answer is wrong, 1 on errors reading
// the benchmark list, 2 on bad usage.
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// instance is one row of answers.csv.
type instance struct {
	family, onnx, vnnlib, answer string
	tools                        []string // tool@year that solved it
}

// tally is one family's row of the table.
type tally struct {
	n, sat, unsat, wrong, errs, timeouts int
	time                                 time.Duration
	tools                                map[string]int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("vnncomp", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 60*time.Second, "time limit per instance")
	family := fs.String("family", "", "run only these families, comma separated")
	seed := fs.Uint64("seed", 1, "seed of the random search")
	verbose := fs.BoolP("verbose", "v", false, "one line per instance on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	dir := "/work/shared/benchmarks/vnncomp"
	switch fs.NArg() {
	case 0:
	case 1:
		dir = fs.Arg(0)
	default:
		fmt.Fprintln(stderr, "vnncomp: at most one argument, the benchmark folder")
		return 2
	}
	insts, err := readAnswers(filepath.Join(dir, "answers.csv"))
	if err != nil {
		fmt.Fprintf(stderr, "vnncomp: %v\n", err)
		return 1
	}
	want := map[string]bool{}
	for _, f := range strings.Split(*family, ",") {
		if f != "" {
			want[f] = true
		}
	}
	tallies := map[string]*tally{}
	var order []string
	models := map[string]*nets.Graph{}
	for _, in := range insts {
		if len(want) > 0 && !want[in.family] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		t := tallies[in.family]
		if t == nil {
			t = &tally{tools: map[string]int{}}
			tallies[in.family] = t
			order = append(order, in.family)
		}
		t.n++
		for _, tool := range in.tools {
			t.tools[tool]++
		}
		start := time.Now()
		dec, err := decide(ctx, dir, in, models, *timeout, *seed)
		elapsed := time.Since(start)
		t.time += elapsed
		verdict := dec.Outcome.String()
		switch {
		case err != nil:
			t.errs++
			verdict = "error: " + err.Error()
		case dec.Outcome == verify.OutcomeSat:
			t.sat++
		case dec.Outcome == verify.OutcomeUnsat:
			t.unsat++
		case dec.Outcome == verify.OutcomeTimeout:
			t.timeouts++
		}
		wrong := err == nil && (dec.Outcome == verify.OutcomeSat && in.answer == "unsat" || dec.Outcome == verify.OutcomeUnsat && in.answer == "sat")
		if wrong {
			t.wrong++
			fmt.Fprintf(stderr, "WRONG: %s %s: %s, published %s\n", in.onnx, in.vnnlib, dec.Outcome, in.answer)
		}
		if *verbose {
			fmt.Fprintf(stderr, "%s %s: %s (published %s) %.2fs\n", in.onnx, in.vnnlib, verdict, in.answer, elapsed.Seconds())
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "family\tinstances\tsat\tunsat\tsolved\twrong\ttimeout\terrors\ttime s\tbest published tool\tits solved\t\n")
	var tot tally
	for _, f := range order {
		t := tallies[f]
		best, bestN := bestTool(t.tools)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%s\t%d\t\n", f, t.n, t.sat, t.unsat, t.sat+t.unsat, t.wrong, t.timeouts, t.errs, t.time.Seconds(), best, bestN)
		tot.n, tot.sat, tot.unsat, tot.wrong, tot.timeouts, tot.errs, tot.time = tot.n+t.n, tot.sat+t.sat, tot.unsat+t.unsat, tot.wrong+t.wrong, tot.timeouts+t.timeouts, tot.errs+t.errs, tot.time+t.time
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t\t\t\n", tot.n, tot.sat, tot.unsat, tot.sat+tot.unsat, tot.wrong, tot.timeouts, tot.errs, tot.time.Seconds())
	tw.Flush()
	fmt.Fprintf(stdout, "per-instance timeout %v\n", *timeout)
	if tot.wrong > 0 {
		return 3
	}
	return 0
}

// decide loads (once) the model and decides the instance within timeout.
func decide(ctx context.Context, dir string, in instance, models map[string]*nets.Graph, timeout time.Duration, seed uint64) (verify.Decision, error) {
	g := models[in.onnx]
	if g == nil {
		var err error
		if g, err = nets.ReadONNX(filepath.Join(dir, in.onnx)); err != nil {
			return verify.Decision{}, err
		}
		models[in.onnx] = g
	}
	p, err := verify.ReadVNNLIB(filepath.Join(dir, in.vnnlib))
	if err != nil {
		return verify.Decision{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return verify.Decide(ctx, g, p, verify.DecideOptions{Seed: seed})
}

// bestTool is the tool@year that solved most instances of a family.
func bestTool(tools map[string]int) (string, int) {
	names := make([]string, 0, len(tools))
	for k := range tools {
		names = append(names, k)
	}
	sort.Strings(names)
	best, n := "-", 0
	for _, k := range names {
		if tools[k] > n {
			best, n = k, tools[k]
		}
	}
	return best, n
}

// readAnswers reads answers.csv (family, onnx, vnnlib, timeout_s, answer,
// tools_sat, tools_unsat, …).
func readAnswers(path string) ([]instance, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) == 0 || len(rows[0]) < 7 || rows[0][0] != "family" || rows[0][4] != "answer" {
		return nil, fmt.Errorf("%s: not the expected header (family,onnx,vnnlib,timeout_s,answer,tools_sat,tools_unsat,…)", path)
	}
	var out []instance
	for i, r := range rows[1:] {
		if len(r) < 7 {
			return nil, fmt.Errorf("%s:%d: %d columns, want at least 7", path, i+2, len(r))
		}
		in := instance{family: r[0], onnx: r[1], vnnlib: r[2], answer: r[4]}
		in.tools = append(strings.Fields(r[5]), strings.Fields(r[6])...)
		out = append(out, in)
	}
	return out, nil
}
