package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// writeJSON writes the rows as an indented JSON list. Maps are written with sorted
// keys, so the same rows give the same bytes.
func writeJSON(w io.Writer, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	b, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// tableColumns are the result columns of the Markdown table: a header and how a
// row fills it.
var tableColumns = []struct {
	head string
	cell func(r Row) string
}{
	{"clean", func(r Row) string {
		if r.Clean == nil {
			return "—"
		}
		return pct(*r.Clean)
	}},
	{"FGSM", attackCell(attackFGSM)},
	{"PGD", attackCell(attackPGD)},
	{"PGD-CW", attackCell(attackPGDCW)},
	{"Square", attackCell(attackSquare)},
	{"adaptive", func(r Row) string {
		v, ok := r.Attacks[attackAdaptive]
		if !ok {
			return "—"
		}
		return fmt.Sprintf("%s (%s)", pct(v), r.Adaptive)
	}},
	{"worst", attackCell(attackAll)},
	{"IBP", certCell(methodIBP)},
	{"CROWN", certCell(methodCROWN)},
	{"LP", certCell(methodLP)},
	{"smoothing", certCell(methodSmoothing)},
}

func attackCell(key string) func(Row) string {
	return func(r Row) string {
		v, ok := r.Attacks[key]
		if !ok {
			return "—"
		}
		if rej, ok := r.Rejected[key]; ok && rej > 0 {
			return fmt.Sprintf("%s (rej. %s)", pct(v), pct(rej))
		}
		return pct(v)
	}
}

func certCell(method string) func(Row) string {
	return func(r Row) string {
		v, ok := r.Certified[method]
		if !ok {
			return "—"
		}
		if n, ok := r.CertifiedN[method]; ok {
			return fmt.Sprintf("%s (%d)", pct(v), n)
		}
		return pct(v)
	}
}

// pct prints an accuracy as a percentage with one decimal.
func pct(v float64) string { return fmt.Sprintf("%.1f", 100*v) }

// writeMarkdown writes the header paragraph (the settings) and one table line per
// member and radius.
func writeMarkdown(w io.Writer, header string, rows []Row) error {
	var b bytes.Buffer
	b.WriteString("# Defense zoo\n\n")
	b.WriteString(header)
	b.WriteString("\n\n| defense | model | ε |")
	sep := "| --- | --- | --- |"
	for _, c := range tableColumns {
		b.WriteString(" " + c.head + " |")
		sep += " ---: |"
	}
	b.WriteString(" notes |\n" + sep + " --- |\n")
	for k := 0; k < len(rows); k++ {
		r := rows[k]
		norm := "L∞"
		if r.Norm == "l2" {
			norm = "L2"
		}
		radii := fmt.Sprintf("%g", r.Epsilon)
		// A member that was not evaluated gets one line for all its radii.
		for r.Clean == nil && k+1 < len(rows) && rows[k+1].Clean == nil && rows[k+1].Defense == r.Defense && rows[k+1].Notes == r.Notes {
			k++
			radii += fmt.Sprintf(", %g", rows[k].Epsilon)
		}
		fmt.Fprintf(&b, "| %s | %s | %s %s |", mdEscape(r.Defense), mdEscape(r.Model), norm, radii)
		for _, c := range tableColumns {
			b.WriteString(" " + c.cell(r) + " |")
		}
		notes := r.Notes
		if rej, ok := r.Rejected["clean"]; ok {
			notes = join(fmt.Sprintf("rejects %s%% of clean images", pct(rej)), notes)
		}
		fmt.Fprintf(&b, " %s |\n", mdEscape(notes))
	}
	_, err := w.Write(b.Bytes())
	return err
}

func join(a, b string) string {
	if b == "" {
		return a
	}
	return a + "; " + b
}

// mdEscape keeps a cell in its column: pipes escaped, newlines flattened.
func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// settingsHeader is the paragraph above the table: what was run, with which
// parameters, so that the table can be reproduced and read.
func settingsHeader(o options) string {
	s := o.settings
	var b strings.Builder
	fmt.Fprintf(&b, "Every member on the first %d images of %s (seed %d). ", o.count, o.dataName, s.Seed)
	b.WriteString("Accuracies in %; an image counts under an attack when it is classified correctly and the attack's point, " +
		"re-checked to lie in the ε ball and in [0,1] and classified by the defended model itself, is not misclassified; " +
		"a detector's rejected point is not a success (its rejection rate is shown as \"rej.\"). ")
	fmt.Fprintf(&b, "FGSM: one step of ε. PGD: %d steps of α = 2.5ε/%d from one uniform random start, cross-entropy; "+
		"PGD-CW: the same on the margin loss max_{j≠y} z_j − z_y (Carlini & Wagner). ", s.PGDSteps, s.PGDSteps)
	if s.SquareQueries > 0 {
		fmt.Fprintf(&b, "Square (black box, members that may mask gradients): %d queries per image, p_init 0.05. ", s.SquareQueries)
	}
	fmt.Fprintf(&b, "Adaptive (members that name an adaptive target: BPDA, EOT, detector-aware): PGD with %d steps of α = 2.5ε/%d "+
		"and %d random restart(s) on the target's model and loss, every step run and the highest-loss misclassified point kept (no early stop, "+
		"which would stop on a detector's rejected point or a random model's lucky draw), then the target's second stage if it has one "+
		"(the squeeze detector: BPDA on the squeezed branch, then the plain branch made to agree with it); Defense-GAN: 20 steps on its first 100 images "+
		"(each forward pass is 100 descent steps from 5 starts), the stochastic model: 20 steps of 20 EOT draws. "+
		"Random models (rotation, stochastic) are judged on 5 fresh draws, independent of the attack's: a point is broken when most are fooled. ",
		s.AdaptiveSteps, s.AdaptiveSteps, s.AdaptiveRestarts)
	b.WriteString("Worst: per image, robust to every attack of its row. Attacks needing gradients are absent (—) on models without them. ")
	b.WriteString("Certified (plain ReLU graphs, L∞): IBP and CROWN (package bounds) on all images, counting only correctly classified ones; ")
	fmt.Fprintf(&b, "LP (package verify, triangle relaxation on α-CROWN bounds) on networks without convolutions, on the first %d images (the count in parentheses). ", s.LPCount)
	fmt.Fprintf(&b, "Smoothing: CERTIFY (Cohen et al. 2019) of the smoothed classifier at σ = %g, n0 = %d, n = %d, α = %g, on the first %d images: "+
		"certified L2 radius ≥ ε with the label.", s.Sigma, s.SmoothN0, s.SmoothN, s.SmoothAlpha, s.SmoothCount)
	return b.String()
}
