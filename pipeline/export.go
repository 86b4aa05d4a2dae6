package pipeline

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteCSV writes one row per sample and radius (a sweep has a row per sample at
// each radius, radius by radius), for spreadsheets and data frames: radius, index,
// label, predicted, correct; per method certified (true/false) and margin (empty
// when none was proven); per attack whether it found an adversarial example (empty
// where it did not run); the methods that refuted the sample and those whose
// certificate an attack falsified (';'-separated); the stages that gave no answer,
// as stage:reason (';'-separated); and, when smoothing ran, its prediction,
// abstention and certified L2 radius.
func (r *Report) WriteCSV(w io.Writer) error {
	head := []string{"radius", "index", "label", "predicted", "correct"}
	for _, m := range r.Methods {
		head = append(head, "certified."+m, "margin."+m)
	}
	for _, a := range r.Attacks {
		head = append(head, "attack."+a)
	}
	head = append(head, "refuted", "falsified", "unknown")
	if r.Smoothing != nil {
		head = append(head, "smoothing.prediction", "smoothing.abstain", "smoothing.radius")
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(head); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	for _, run := range r.Runs() {
		if err := r.writeCSVRows(cw, run); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	return nil
}

// writeCSVRows writes the rows of one radius.
func (r *Report) writeCSVRows(cw *csv.Writer, run RadiusRun) error {
	radius := strconv.FormatFloat(run.Radius, 'g', -1, 64)
	for i := range run.Samples {
		s := &run.Samples[i]
		row := []string{radius, strconv.Itoa(s.Index), strconv.Itoa(s.Label), strconv.Itoa(s.Predicted), strconv.FormatBool(s.Correct())}
		for _, m := range r.Methods {
			margin := ""
			if v, ok := s.Margins[m]; ok {
				margin = strconv.FormatFloat(v, 'g', -1, 64)
			}
			row = append(row, strconv.FormatBool(s.Certified[m]), margin)
		}
		for _, a := range r.Attacks {
			cell := ""
			if v, ok := s.Attacks[a]; ok {
				cell = strconv.FormatBool(v)
			}
			row = append(row, cell)
		}
		var unknown []string
		for _, st := range r.stages() {
			if why := s.Unknown[st]; why != "" {
				unknown = append(unknown, st+":"+why)
			}
		}
		row = append(row, strings.Join(s.Refuted, ";"), strings.Join(s.Falsified, ";"), strings.Join(unknown, ";"))
		if r.Smoothing != nil {
			if sm := s.Smoothing; sm != nil {
				row = append(row, strconv.Itoa(sm.Prediction), strconv.FormatBool(sm.Abstain), strconv.FormatFloat(sm.Radius, 'g', -1, 64))
			} else {
				row = append(row, "", "", "")
			}
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("csv: %w", err)
		}
	}
	return nil
}

// stages is the report's stages in table order: methods, then attacks.
func (r *Report) stages() []string {
	return append(append([]string(nil), r.Methods...), r.Attacks...)
}

// WriteMarkdown writes the report as Markdown, for papers and issue trackers: a
// line with the threat model, the summary table (the terminal summary's rows; for
// a sweep, the summary by radius) and the warnings as a list. Falsified
// certificates are marked in words.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Model `%s`, %d samples of `%s`, %s %s, domain [%g, %g], seed %d.\n\n",
		r.Model, r.Summary.N, r.Data, r.Norm, radiiText(r.Runs()), r.Domain[0], r.Domain[1], r.Seed)
	if len(r.Sweep) > 0 {
		head, rows := r.sweepRows(false)
		cells := make([]string, len(head))
		for i, h := range head {
			cells[i] = mdCell(fmt.Sprint(h))
		}
		fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(cells, " | "), strings.Repeat(" ---: |", len(head)))
		for _, row := range rows {
			for i := range row {
				row[i] = mdCell(row[i])
			}
			fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
		}
	} else {
		b.WriteString("| metric | value |\n| --- | ---: |\n")
		for _, row := range r.summaryRows(false) {
			fmt.Fprintf(&b, "| %s | %s |\n", mdCell(row[0]), mdCell(row[1]))
		}
	}
	if len(r.Summary.SmoothingCurve) > 0 {
		b.WriteString("\n| L2 radius | smoothing certified accuracy |\n| ---: | ---: |\n")
		for _, p := range r.Summary.SmoothingCurve {
			fmt.Fprintf(&b, "| %g | %.2f%% |\n", p.Radius, 100*p.Accuracy)
		}
	}
	if len(r.Summary.Warnings) > 0 {
		b.WriteString("\nWarnings:\n\n")
		for _, msg := range r.Summary.Warnings {
			fmt.Fprintf(&b, "- %s\n", mdCell(msg))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdCell escapes the characters that would break a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
