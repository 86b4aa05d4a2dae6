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
				Refuted: []string{"crown"}, Smoothing: &Smoothing{Prediction: 0, Abstain: true}},
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
		{"index", "label", "predicted", "correct", "certified.ibp", "margin.ibp", "certified.crown", "margin.crown",
			"attack.pgd", "attack.square", "refuted", "falsified", "smoothing.prediction", "smoothing.abstain", "smoothing.radius"},
		{"0", "1", "1", "true", "false", "-0.5", "true", "0.25", "true", "false", "", "crown", "1", "false", "0.75"},
		{"4", "2", "0", "false", "false", "", "false", "", "", "", "crown", "", "0", "true", "0"},
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
