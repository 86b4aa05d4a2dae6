package pipeline

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// PerSampleMax is the largest run for which WriteTables shows the per-sample table
// unless asked to.
const PerSampleMax = 20

// TableOptions say how WriteTablesWith renders a report.
type TableOptions struct {
	// PerSample shows the per-sample table however many samples (it is always
	// shown for at most PerSampleMax).
	PerSample bool
	// Color paints the rows of falsified certificates, and the summary's count of
	// them, red with ANSI escapes (for terminals), and the warnings yellow. Without
	// it they are marked in words only: the FALSIFIED column, "UNSOUND METHOD",
	// "warning:".
	Color bool
}

// ANSI escapes of TableOptions.Color.
const (
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiReset  = "\x1b[0m"
)

// WriteTables renders the report for a terminal: the per-sample table when perSample
// is set or the run has at most PerSampleMax samples, then the summary table. It is
// WriteTablesWith without colour.
func (r *Report) WriteTables(w io.Writer, perSample bool) error {
	return r.WriteTablesWith(w, TableOptions{PerSample: perSample})
}

// WriteTablesWith renders the report: the per-sample table (when o.PerSample is set
// or the run has at most PerSampleMax samples; otherwise, if some certificates were
// falsified, the table of those samples alone, so that they are never hidden), the
// summary table, the certified accuracy curve of randomized smoothing when it ran,
// then the warnings, one line each.
//
// A sweep over several radii shows, per radius, the samples tables as above (with
// the radius as heading), then one summary table with a row per radius.
func (r *Report) WriteTablesWith(w io.Writer, o TableOptions) error {
	if len(r.Sweep) > 0 {
		return r.writeSweepTables(w, o)
	}
	if err := r.writeSampleTables(w, o, ""); err != nil {
		return err
	}
	if err := r.writeSummaryTable(w, o.Color); err != nil {
		return err
	}
	return r.writeCurveAndWarnings(w, o)
}

// writeSampleTables writes the per-sample table, or that of the falsified samples
// alone (see WriteTablesWith), under heading when there is one.
func (r *Report) writeSampleTables(w io.Writer, o TableOptions, heading string) error {
	var falsified []Sample
	for _, s := range r.Samples {
		if len(s.Falsified) > 0 {
			falsified = append(falsified, s)
		}
	}
	switch {
	case o.PerSample || len(r.Samples) <= PerSampleMax:
		if heading != "" {
			fmt.Fprintf(w, "%s:\n", heading)
		}
		return r.writeSampleTable(w, r.Samples, o.Color)
	case len(falsified) > 0:
		if heading != "" {
			heading += ", "
		}
		fmt.Fprintf(w, "%sfalsified certificates, %d samples:\n", heading, len(falsified))
		return r.writeSampleTable(w, falsified, o.Color)
	}
	return nil
}

// writeCurveAndWarnings ends the tables: the smoothing curve, then the warnings.
func (r *Report) writeCurveAndWarnings(w io.Writer, o TableOptions) error {
	if err := r.writeSmoothingCurve(w); err != nil {
		return err
	}
	for _, msg := range r.Summary.Warnings {
		line := "warning: " + msg
		if o.Color {
			line = ansiYellow + line + ansiReset
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

// WriteSampleTable renders one row per sample: index, label, prediction, whether it
// is correct, then one column per method ("yes"/"no" and the margin), per attack
// ("found" when it found an adversarial example, "failed" otherwise, "-" when it did
// not run on the sample: misclassified, or an audit attack on an uncertified
// sample) and for smoothing, and, when some certificate was falsified, a FALSIFIED
// column naming the unsound methods.
func (r *Report) WriteSampleTable(w io.Writer) error {
	return r.writeSampleTable(w, r.Samples, false)
}

func (r *Report) writeSampleTable(w io.Writer, samples []Sample, color bool) error {
	header := []any{"index", "label", "predicted", "correct"}
	for _, m := range r.tableMethods() {
		header = append(header, m)
	}
	for _, a := range r.Attacks {
		header = append(header, a)
	}
	smoothing := false
	for i := range samples {
		smoothing = smoothing || samples[i].Smoothing != nil
	}
	if smoothing {
		header = append(header, "smoothing")
	}
	falsified := false
	for i := range samples {
		falsified = falsified || len(samples[i].Falsified) > 0
	}
	if falsified {
		header = append(header, "FALSIFIED")
	}

	t := newTable(w)
	t.Header(upper(header)...)
	for i := range samples {
		s := &samples[i]
		row := []string{strconv.Itoa(s.Index), strconv.Itoa(s.Label), strconv.Itoa(s.Predicted), yesNo(s.Correct())}
		for _, m := range r.tableMethods() {
			row = append(row, methodCell(s, m))
		}
		for _, a := range r.Attacks {
			cell := "-"
			if found, ran := s.Attacks[a]; ran {
				cell = "failed"
				if found {
					cell = "found"
				}
				if why := s.Unknown[a]; why != "" {
					cell = "unknown (" + why + ")"
				}
			}
			row = append(row, cell)
		}
		if smoothing {
			row = append(row, smoothingCell(s.Smoothing))
		}
		if falsified {
			row = append(row, strings.Join(s.Falsified, ","))
		}
		if color && len(s.Falsified) > 0 {
			for j := range row {
				row[j] = ansiRed + row[j] + ansiReset
			}
		}
		if err := t.Append(row); err != nil {
			return fmt.Errorf("per-sample table: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("per-sample table: %w", err)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// methodCell is "yes 0.3100" / "no -0.1200" (certified, margin), "no" without a
// finite margin, "unknown (timeout)" (with the margin proven, if any) when the
// method gave no answer, "-" when the method did not run on the sample.
func methodCell(s *Sample, m string) string {
	ok, ran := s.Certified[m]
	if !ran || !s.Correct() {
		return "-"
	}
	if why := s.Unknown[m]; why != "" {
		if margin, has := s.Margins[m]; has {
			return fmt.Sprintf("unknown (%s) %.4f", why, margin)
		}
		return "unknown (" + why + ")"
	}
	if margin, has := s.Margins[m]; has {
		return fmt.Sprintf("%s %.4f", yesNo(ok), margin)
	}
	return yesNo(ok)
}

func smoothingCell(sm *Smoothing) string {
	switch {
	case sm == nil:
		return "-"
	case sm.Abstain:
		return "abstain"
	}
	return fmt.Sprintf("%d r=%.3f", sm.Prediction, sm.Radius)
}

// WriteSummaryTable renders the summary as metric/value rows: the sample count,
// clean, certified (per method) and empirical accuracy with counts, adversarial
// examples found per attack, falsified certificates, and the seconds per stage.
func (r *Report) WriteSummaryTable(w io.Writer) error {
	return r.writeSummaryTable(w, false)
}

// summaryRows are the summary's metric/value rows (see WriteSummaryTable); color
// paints the falsified-certificate row red.
func (r *Report) summaryRows(color bool) [][]string {
	s := &r.Summary
	n := len(r.Samples)
	count := func(f func(*Sample) bool) int { return countTrue(r.Samples, f) }
	frac := func(c int) string {
		if n == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f%% (%d/%d)", 100*float64(c)/float64(n), c, n)
	}
	rows := [][]string{
		{"samples", strconv.Itoa(s.N)},
		{"clean accuracy", frac(count((*Sample).Correct))},
	}
	for _, m := range r.Methods {
		rows = append(rows, []string{"certified accuracy: " + m, frac(count(func(x *Sample) bool { return x.Certified[m] }))})
	}
	for _, m := range r.Methods {
		if c := count(func(x *Sample) bool { return slices.Contains(x.Refuted, m) }); c > 0 {
			rows = append(rows, []string{"counterexample found: " + m, strconv.Itoa(c)})
		}
	}
	for _, a := range r.Attacks {
		rows = append(rows, []string{"adversarial found: " + a, strconv.Itoa(count(func(x *Sample) bool { return x.Attacks[a] }))})
	}
	if s.EmpiricalAccuracy != nil {
		rows = append(rows, []string{"empirical accuracy", frac(count(func(x *Sample) bool {
			if !x.Correct() {
				return false
			}
			for _, a := range r.Attacks {
				if x.Attacks[a] {
					return false
				}
			}
			return true
		}))})
	}
	if s.FalsifiedCertificates != nil {
		v := strconv.Itoa(*s.FalsifiedCertificates)
		row := []string{"falsified certificates", v}
		if *s.FalsifiedCertificates > 0 {
			row[1] += "  UNSOUND METHOD"
			if color {
				row = []string{ansiRed + row[0] + ansiReset, ansiRed + row[1] + ansiReset}
			}
		}
		rows = append(rows, row)
	}
	rows = append(rows, r.smoothingSummaryRows()...)
	stages := append(append([]string{cleanStage}, r.Methods...), r.Attacks...)
	for _, st := range stages {
		if c := count(func(x *Sample) bool { return x.Unknown[st] != "" }); c > 0 {
			rows = append(rows, []string{"unknown: " + st, fmt.Sprintf("%d (%s)", c, unknownReasons(r.Samples, st))})
		}
	}
	for _, st := range stages {
		if sec, ok := s.Seconds[st]; ok {
			rows = append(rows, []string{"seconds: " + st, strconv.FormatFloat(sec, 'f', 3, 64)})
		}
	}

	return rows
}

func (r *Report) writeSummaryTable(w io.Writer, color bool) error {
	rows := r.summaryRows(color)
	t := newTable(w)
	t.Header("METRIC", "VALUE")
	for _, row := range rows {
		if err := t.Append(row); err != nil {
			return fmt.Errorf("summary table: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("summary table: %w", err)
	}
	return nil
}

// newTable is a tablewriter table whose headers are printed as given: its automatic
// title-casing turns "alpha-crown" into "ALPHA - CROWN".
func newTable(w io.Writer) *tablewriter.Table {
	return tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
}

// upper upper-cases table headers, as tablewriter's auto-format would, keeping the
// method names' hyphens.
func upper(cells []any) []any {
	out := make([]any, len(cells))
	for i, c := range cells {
		out[i] = strings.ToUpper(fmt.Sprint(c))
	}
	return out
}

// unknownReasons lists the reasons stage gave no answer, with counts, most
// frequent first: "3 timeout, 1 deadline".
func unknownReasons(samples []Sample, stage string) string {
	counts := map[string]int{}
	for i := range samples {
		if why := samples[i].Unknown[stage]; why != "" {
			counts[why]++
		}
	}
	reasons := make([]string, 0, len(counts))
	for why := range counts {
		reasons = append(reasons, why)
	}
	slices.SortFunc(reasons, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	for i, why := range reasons {
		reasons[i] = fmt.Sprintf("%d %s", counts[why], why)
	}
	return strings.Join(reasons, ", ")
}

// writeSweepTables renders a sweep: per radius the samples tables, then the
// summary by radius, the smoothing curve and the warnings.
func (r *Report) writeSweepTables(w io.Writer, o TableOptions) error {
	for _, run := range r.Sweep {
		if err := r.at(run).writeSampleTables(w, o, fmt.Sprintf("radius %g", run.Radius)); err != nil {
			return err
		}
	}
	head, rows := r.sweepRows(o.Color)
	t := newTable(w)
	t.Header(upper(head)...)
	for _, row := range rows {
		if err := t.Append(row); err != nil {
			return fmt.Errorf("summary by radius: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("summary by radius: %w", err)
	}
	return r.writeCurveAndWarnings(w, o)
}

// sweepRows is the summary by radius: a row per run of the sweep with its radius,
// clean accuracy, empirical accuracy (when attacks ran), certified accuracy per
// method, falsified certificates (when both ran) and the samples some stage left
// unknown (when any). color paints a row with falsified certificates red.
func (r *Report) sweepRows(color bool) ([]any, [][]string) {
	runs := r.Runs()
	head := []any{"radius", "clean"}
	attacks := len(r.Attacks) > 0
	if attacks {
		head = append(head, "empirical")
	}
	for _, m := range r.Methods {
		head = append(head, m)
	}
	audit := len(r.Methods) > 0 && attacks
	if audit {
		head = append(head, "falsified")
	}
	unknown := false
	for _, run := range runs {
		unknown = unknown || countTrue(run.Samples, func(s *Sample) bool { return len(s.Unknown) > 0 }) > 0
	}
	if unknown {
		head = append(head, "unknown")
	}
	pct := func(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }
	var rows [][]string
	for _, run := range runs {
		s := run.Summary
		row := []string{strconv.FormatFloat(run.Radius, 'g', -1, 64), pct(s.CleanAccuracy)}
		if attacks {
			row = append(row, "-")
			if s.EmpiricalAccuracy != nil {
				row[len(row)-1] = pct(*s.EmpiricalAccuracy)
			}
		}
		for _, m := range r.Methods {
			row = append(row, pct(s.CertifiedAccuracy[m]))
		}
		bad := false
		if audit {
			f := 0
			if s.FalsifiedCertificates != nil {
				f = *s.FalsifiedCertificates
			}
			row = append(row, strconv.Itoa(f))
			bad = f > 0
		}
		if unknown {
			row = append(row, strconv.Itoa(countTrue(run.Samples, func(s *Sample) bool { return len(s.Unknown) > 0 })))
		}
		if bad && color {
			for i := range row {
				row[i] = ansiRed + row[i] + ansiReset
			}
		}
		rows = append(rows, row)
	}
	return head, rows
}
