package pipeline

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// PerSampleMax is the largest run for which WriteTables shows the per-sample table
// unless asked to.
const PerSampleMax = 20

// WriteTables renders the report for a terminal: the per-sample table when perSample
// is set or the run has at most PerSampleMax samples, then the summary table.
func (r *Report) WriteTables(w io.Writer, perSample bool) error {
	if perSample || len(r.Samples) <= PerSampleMax {
		if err := r.WriteSampleTable(w); err != nil {
			return err
		}
	}
	return r.WriteSummaryTable(w)
}

// WriteSampleTable renders one row per sample: index, label, prediction, whether it
// is correct, then one column per method ("yes"/"no" and the margin), per attack
// ("found" when it found an adversarial example, "failed" otherwise) and for
// smoothing. "-" marks a stage that did not run on the sample (misclassified).
func (r *Report) WriteSampleTable(w io.Writer) error {
	header := []any{"index", "label", "predicted", "correct"}
	for _, m := range r.Methods {
		header = append(header, m)
	}
	for _, a := range r.Attacks {
		header = append(header, a)
	}
	smoothing := false
	for i := range r.Samples {
		smoothing = smoothing || r.Samples[i].Smoothing != nil
	}
	if smoothing {
		header = append(header, "smoothing")
	}
	falsified := false
	for i := range r.Samples {
		falsified = falsified || len(r.Samples[i].Falsified) > 0
	}
	if falsified {
		header = append(header, "FALSIFIED")
	}

	t := newTable(w)
	t.Header(upper(header)...)
	for i := range r.Samples {
		s := &r.Samples[i]
		row := []string{strconv.Itoa(s.Index), strconv.Itoa(s.Label), strconv.Itoa(s.Predicted), yesNo(s.Correct())}
		for _, m := range r.Methods {
			row = append(row, methodCell(s, m))
		}
		for _, a := range r.Attacks {
			cell := "-"
			if found, ran := s.Attacks[a]; ran {
				cell = "failed"
				if found {
					cell = "found"
				}
			}
			row = append(row, cell)
		}
		if smoothing {
			row = append(row, smoothingCell(s.Smoothing))
		}
		if falsified {
			cell := ""
			for j, m := range s.Falsified {
				if j > 0 {
					cell += ","
				}
				cell += m
			}
			row = append(row, cell)
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
// finite margin, "-" when the method did not run on the sample.
func methodCell(s *Sample, m string) string {
	ok, ran := s.Certified[m]
	if !ran || !s.Correct() {
		return "-"
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
		if *s.FalsifiedCertificates > 0 {
			v += "  UNSOUND METHOD"
		}
		rows = append(rows, []string{"falsified certificates", v})
	}
	stages := append(append([]string{cleanStage}, r.Methods...), r.Attacks...)
	for _, st := range stages {
		if sec, ok := s.Seconds[st]; ok {
			rows = append(rows, []string{"seconds: " + st, strconv.FormatFloat(sec, 'f', 3, 64)})
		}
	}

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
