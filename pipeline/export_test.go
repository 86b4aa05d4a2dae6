package pipeline

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
)

// exportReport is a small hand-made report: two methods, two attacks, smoothing,
// a refuted and a falsified sample, and a warning with a table-breaking '|'.
func exportReport() *Report {
	one := 1
	emp := 0.5
	return &Report{
		Model: "m.onnx", Data: "d.npy", Radius: 0.1, Norm: LInf, Domain: [2]float64{0, 1}, Seed: 3,
		Methods: []string{"ibp", "crown"}, Attacks: []string{"pgd", "square"},
		Smoothing: &SmoothingParams{Sigma: 0.25},
		Samples: []Sample{
			{Index: 0, Label: 1, Predicted: 1, Certified: map[string]bool{"ibp": false, "crown": true},
				Margins: map[string]float64{"ibp": -0.5, "crown": 0.25}, Attacks: map[string]bool{"pgd": true, "square": false},
				Falsified: []string{"crown"}, Smoothing: &Smoothing{Prediction: 1, Radius: 0.75}},
			{Index: 4, Label: 2, Predicted: 0, Certified: map[string]bool{"ibp": false, "crown": false},
				Refuted: []string{"crown"}, Smoothing: &Smoothing{Prediction: 0, Abstain: true},
				Unknown: map[string]string{"square": "deadline", "ibp": "timeout"}},
		},
		Summary: Summary{N: 2, CleanAccuracy: 0.5, EmpiricalAccuracy: &emp, FalsifiedCertificates: &one,
			Warnings: []string{"a | b"}},
	}
}

// The CSV has one row per sample with every field of the report's samples, in the
// header's order; cells where a stage did not run are empty.
func TestWriteCSV(t *testing.T) {
	var b bytes.Buffer
	if err := exportReport().WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"radius", "index", "label", "predicted", "correct", "certified.ibp", "margin.ibp", "certified.crown", "margin.crown",
			"attack.pgd", "attack.square", "refuted", "falsified", "unknown", "smoothing.prediction", "smoothing.abstain", "smoothing.radius"},
		{"0.1", "0", "1", "1", "true", "false", "-0.5", "true", "0.25", "true", "false", "", "crown", "", "1", "false", "0.75"},
		{"0.1", "4", "2", "0", "false", "false", "", "false", "", "", "", "crown", "", "ibp:timeout;square:deadline", "0", "true", "0"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d:\n%v", len(rows), len(want), rows)
	}
	for i := range want {
		if strings.Join(rows[i], ",") != strings.Join(want[i], ",") {
			t.Errorf("row %d:\n got %v\nwant %v", i, rows[i], want[i])
		}
	}
}

// The Markdown has the threat model, the summary's rows (the same as the terminal
// table's), and the warnings with '|' escaped.
func TestWriteMarkdown(t *testing.T) {
	r := exportReport()
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"Model `m.onnx`, 2 samples of `d.npy`, linf radius 0.1, domain [0, 1], seed 3.",
		"| metric | value |",
		"| clean accuracy | 50.00% (1/2) |",
		"| certified accuracy: crown | 50.00% (1/2) |",
		"| falsified certificates | 1  UNSOUND METHOD |",
		"- a \\| b",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if got, want := strings.Count(md, "\n| "), len(r.summaryRows(false))+2; got != want {
		t.Errorf("%d table lines, want %d (header, rule, one per summary row)", got, want)
	}
}

// sweepReport is exportReport swept over two radii, the second with one sample
// certified less.
func sweepReport() *Report {
	r := exportReport()
	r.Smoothing = nil
	for i := range r.Samples {
		r.Samples[i].Smoothing = nil
	}
	second := make([]Sample, len(r.Samples))
	copy(second, r.Samples)
	second[0].Certified = map[string]bool{"ibp": false, "crown": false}
	emp := 0.0
	zero := 0
	r.Sweep = []RadiusRun{
		{Radius: 0.1, Samples: r.Samples, Summary: r.Summary},
		{Radius: 0.3, Samples: second, Summary: Summary{N: 2, CleanAccuracy: 0.5, EmpiricalAccuracy: &emp,
			CertifiedAccuracy: map[string]float64{"ibp": 0, "crown": 0}, FalsifiedCertificates: &zero}},
	}
	r.Summary.CertifiedAccuracy = map[string]float64{"ibp": 0, "crown": 0.5}
	r.Sweep[0].Summary = r.Summary
	return r
}

// A sweep's CSV has a row per sample at each radius, radius by radius; its
// Markdown and terminal tables a row per radius with the summaries' values.
func TestSweepExports(t *testing.T) {
	r := sweepReport()
	var b bytes.Buffer
	if err := r.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, row := range rows[1:] {
		got = append(got, row[0]+"/"+row[1]+"/"+row[7])
	}
	if want := "0.1/0/true 0.1/4/false 0.3/0/false 0.3/4/false"; strings.Join(got, " ") != want {
		t.Errorf("radius/index/certified.crown = %v, want %s", got, want)
	}
	b.Reset()
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"linf radii 0.1, 0.3,",
		"| radius | clean | empirical | ibp | crown | falsified | unknown |",
		"| 0.1 | 50.00% | 50.00% | 0.00% | 50.00% | 1 | 1 |",
		"| 0.3 | 50.00% | 0.00% | 0.00% | 0.00% | 0 | 1 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	b.Reset()
	if err := r.WriteTables(&b, false); err != nil {
		t.Fatal(err)
	}
	tables := b.String()
	for _, want := range []string{"radius 0.1:", "radius 0.3:", "RADIUS", "EMPIRICAL", "FALSIFIED", "50.00%"} {
		if !strings.Contains(tables, want) {
			t.Errorf("tables lack %q:\n%s", want, tables)
		}
	}
}
