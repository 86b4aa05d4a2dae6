package pipeline

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteCSV writes one row per sample, for spreadsheets and data frames: index,
// label, predicted, correct; per method certified (true/false) and margin (empty
// when none was proven); per attack whether it found an adversarial example (empty
// where it did not run); the methods that refuted the sample and those whose
// certificate an attack falsified (';'-separated); and, when smoothing ran, its
// prediction, abstention and certified L2 radius.
func (r *Report) WriteCSV(w io.Writer) error {
	head := []string{"index", "label", "predicted", "correct"}
	for _, m := range r.Methods {
		head = append(head, "certified."+m, "margin."+m)
	}
	for _, a := range r.Attacks {
		head = append(head, "attack."+a)
	}
	head = append(head, "refuted", "falsified")
	if r.Smoothing != nil {
		head = append(head, "smoothing.prediction", "smoothing.abstain", "smoothing.radius")
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(head); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	for i := range r.Samples {
		s := &r.Samples[i]
		row := []string{strconv.Itoa(s.Index), strconv.Itoa(s.Label), strconv.Itoa(s.Predicted), strconv.FormatBool(s.Correct())}
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
		row = append(row, strings.Join(s.Refuted, ";"), strings.Join(s.Falsified, ";"))
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
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	return nil
}

// WriteMarkdown writes the report as Markdown, for papers and issue trackers: a
// line with the threat model, the summary table (the terminal summary's rows) and
// the warnings as a list. Falsified certificates are marked in words.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Model `%s`, %d samples of `%s`, %s radius %g, domain [%g, %g], seed %d.\n\n",
		r.Model, r.Summary.N, r.Data, r.Norm, r.Radius, r.Domain[0], r.Domain[1], r.Seed)
	b.WriteString("| metric | value |\n| --- | ---: |\n")
	for _, row := range r.summaryRows(false) {
		fmt.Fprintf(&b, "| %s | %s |\n", mdCell(row[0]), mdCell(row[1]))
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
