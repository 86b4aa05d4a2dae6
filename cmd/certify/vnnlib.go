package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/verify"
	"github.com/spf13/pflag"
)

// vnnOptions are the flags of the VNN-COMP mode: decide the property of a
// VNN-LIB file about the model instead of evaluating accuracy.
type vnnOptions struct {
	property string        // --vnnlib
	result   string        // --vnnlib-result
	timeout  time.Duration // --timeout
}

func addVNNFlags(fs *pflag.FlagSet, o *vnnOptions) {
	fs.StringVar(&o.property, "vnnlib", "", "VNN-COMP mode: decide the property `PROP.vnnlib` about the model; prints sat, unsat, unknown or timeout")
	fs.StringVar(&o.result, "vnnlib-result", "", "VNN-COMP mode: also write the result file (the answer, and for sat the counterexample) to `file`")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "time limit: in VNN-COMP mode of the whole property, model loading included; otherwise of each sample's work in every method and attack (bab's branch and bound included), a sample out of time being reported unknown (0: none)")
}

// runVNNLIB is the VNN-COMP mode: it prints the answer to stdout and writes the
// result file. Exit status 0 for any answer, 1 on errors (an unreadable model or
// property, one that does not fit the model, an op the bounds cannot handle).
func runVNNLIB(ctx context.Context, o options, stdout, stderr io.Writer) int {
	if o.vnn.timeout < 0 {
		fmt.Fprintf(stderr, "certify: --timeout %v: want >= 0\n", o.vnn.timeout)
		return cli.ExitUsage
	}
	if o.vnn.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.vnn.timeout)
		defer cancel()
	}
	dec, err := decideVNNLIB(ctx, o.model, o.vnn.property, o.seed)
	if err != nil {
		fmt.Fprintf(stderr, "certify: %v\n", err)
		return cli.ExitError
	}
	fmt.Fprintln(stdout, dec.Outcome)
	if o.vnn.result != "" {
		if err := os.WriteFile(o.vnn.result, []byte(vnnResult(dec)), 0o644); err != nil {
			fmt.Fprintf(stderr, "certify: %v\n", err)
			return cli.ExitError
		}
	}
	return cli.ExitOK
}

// decideVNNLIB loads the model and the property and decides it.
func decideVNNLIB(ctx context.Context, model, property string, seed int64) (verify.Decision, error) {
	g, err := nets.ReadONNX(model)
	if err != nil {
		return verify.Decision{}, err
	}
	p, err := verify.ReadVNNLIB(property)
	if err != nil {
		return verify.Decision{}, err
	}
	dec, err := verify.Decide(ctx, g, p, verify.DecideOptions{Seed: uint64(seed)})
	if err != nil {
		return verify.Decision{}, fmt.Errorf("%s on %s: %w", property, model, err)
	}
	return dec, nil
}

// vnnResult is the VNN-COMP result file: the answer on the first line, then for
// sat the counterexample as ((X_0 v) (X_1 v) … (Y_0 v) …), one pair a line.
func vnnResult(dec verify.Decision) string {
	var b strings.Builder
	b.WriteString(dec.Outcome.String() + "\n")
	if dec.Outcome != verify.OutcomeSat {
		return b.String()
	}
	var pairs []string
	for i, v := range dec.X {
		pairs = append(pairs, fmt.Sprintf("(X_%d %s)", i, strconv.FormatFloat(v, 'g', -1, 64)))
	}
	for i, v := range dec.Y {
		pairs = append(pairs, fmt.Sprintf("(Y_%d %s)", i, strconv.FormatFloat(v, 'g', -1, 64)))
	}
	b.WriteString("(" + strings.Join(pairs, "\n ") + ")\n")
	return b.String()
}
