package pipeline

import (
	"bytes"
	"strings"
	"testing"
)

func tableReport() *Report {
	emp := 0.5
	zero := 0
	return &Report{
		Methods: []string{"ibp"}, Attacks: []string{"pgd"},
		Samples: []Sample{
			{Index: 3, Label: 7, Predicted: 7, Certified: map[string]bool{"ibp": true}, Margins: map[string]float64{"ibp": 0.31}, Attacks: map[string]bool{"pgd": false}},
			{Index: 5, Label: 2, Predicted: 2, Certified: map[string]bool{"ibp": false}, Margins: map[string]float64{"ibp": -1.25}, Attacks: map[string]bool{"pgd": true},
				Smoothing: &Smoothing{Prediction: 2, Radius: 0.43}},
			{Index: 9, Label: 1, Predicted: 4, Certified: map[string]bool{"ibp": false}},
		},
		Summary: Summary{N: 3, CleanAccuracy: 2.0 / 3, EmpiricalAccuracy: &emp,
			CertifiedAccuracy: map[string]float64{"ibp": 1.0 / 3}, FalsifiedCertificates: &zero,
			Seconds: map[string]float64{"clean": 0.0123, "ibp": 0.2, "pgd": 3.1}},
	}
}

// rowOf returns the table line whose first cell is key.
func rowOf(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.FieldsFunc(line, func(r rune) bool { return r == '│' || r == '|' })
		if len(f) > 0 && strings.TrimSpace(f[0]) == key {
			return line
		}
	}
	return ""
}

func cells(line string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == '│' || r == '|' }) {
		out = append(out, strings.TrimSpace(f))
	}
	return out
}

func TestSampleTable(t *testing.T) {
	var buf bytes.Buffer
	if err := tableReport().WriteSampleTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	want := map[string][]string{
		"3": {"3", "7", "7", "yes", "yes 0.3100", "failed", "-"},
		"5": {"5", "2", "2", "yes", "no -1.2500", "found", "2 r=0.430"},
		"9": {"9", "1", "4", "no", "-", "-", "-"},
	}
	for key, w := range want {
		got := cells(rowOf(out, key))
		if strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("row %s: %q, want %q\n%s", key, got, w, out)
		}
	}
	for _, h := range []string{"INDEX", "LABEL", "PREDICTED", "CORRECT", "IBP", "PGD", "SMOOTHING"} {
		if !strings.Contains(out, h) {
			t.Errorf("header lacks %s:\n%s", h, out)
		}
	}
}

func TestSummaryTable(t *testing.T) {
	var buf bytes.Buffer
	if err := tableReport().WriteSummaryTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	want := map[string]string{
		"samples":                 "3",
		"clean accuracy":          "66.67% (2/3)",
		"certified accuracy: ibp": "33.33% (1/3)",
		"adversarial found: pgd":  "1",
		"empirical accuracy":      "33.33% (1/3)",
		"falsified certificates":  "0",
		"seconds: clean":          "0.012",
		"seconds: pgd":            "3.100",
	}
	for key, w := range want {
		got := cells(rowOf(out, key))
		if len(got) != 2 || got[1] != w {
			t.Errorf("row %q: %q, want value %q\n%s", key, got, w, out)
		}
	}
}

func TestWriteTablesPerSample(t *testing.T) {
	rep := tableReport()
	var small, big, forced bytes.Buffer
	if err := rep.WriteTables(&small, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(small.String(), "PREDICTED") {
		t.Errorf("3 samples: no per-sample table\n%s", small.String())
	}
	for i := 0; i < PerSampleMax; i++ {
		rep.Samples = append(rep.Samples, Sample{Index: 100 + i})
	}
	if err := rep.WriteTables(&big, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(big.String(), "PREDICTED") || !strings.Contains(big.String(), "METRIC") {
		t.Errorf("%d samples: want only the summary\n%s", len(rep.Samples), big.String())
	}
	if err := rep.WriteTables(&forced, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(forced.String(), "PREDICTED") {
		t.Errorf("perSample: no per-sample table")
	}
}
