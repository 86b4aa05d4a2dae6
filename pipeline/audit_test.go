package pipeline

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// recordingAttack is cornerAttack that remembers how many rows it was given.
type recordingAttack struct {
	cornerAttack
	rows *int
}

func (a recordingAttack) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	*a.rows += len(labels) // over the chunks
	return a.cornerAttack.Run(ctx, m, x, labels)
}

// The audit attacks run on the certified samples only — with an unsound method
// that certifies everything, on every correct sample — and their findings are
// falsified certificates like any attack's.
func TestAuditAttacksOnCertifiedOnly(t *testing.T) {
	m, x, y := setup(2)
	dom := Domain{0, 1}
	const r = 0.08
	run := func(methods []Method) (*Report, int) {
		t.Helper()
		rows := 0
		rep, err := Run(context.Background(), Config{
			Model: m, X: x, Labels: y, Radius: r, Norm: LInf, Domain: dom,
			Methods: methods,
			Attacks: []Attack{funcAttack{"none", func(x *nets.Tensor) (*nets.Tensor, error) { return x.Clone(), nil }}},
			Audit:   []Attack{recordingAttack{cornerAttack{"audit-corner", r, dom}, &rows}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return rep, rows
	}

	// A sound method: the audit sees exactly the certified samples and breaks none.
	rep, rows := run([]Method{exactMethod{"exact"}})
	cert := 0
	for _, s := range rep.Samples {
		_, ran := s.Attacks["audit-corner"]
		if ran != s.Certified["exact"] {
			t.Errorf("sample %d: certified %v, audit ran %v", s.Index, s.Certified["exact"], ran)
		}
		if s.Certified["exact"] {
			cert++
		}
		if s.Attacks["audit-corner"] {
			t.Errorf("sample %d: certified exactly, yet the audit broke it", s.Index)
		}
	}
	if rows != cert || cert == 0 {
		t.Errorf("audit ran on %d rows, %d certified", rows, cert)
	}
	if got := strings.Join(rep.Attacks, ","); got != "none,audit-corner" {
		t.Errorf("attacks %q", got)
	}
	if _, ok := rep.Summary.Seconds["audit-corner"]; !ok {
		t.Error("no seconds for the audit")
	}
	if f := rep.Summary.FalsifiedCertificates; f == nil || *f != 0 {
		t.Errorf("falsified %v, want 0", f)
	}

	// An unsound one: the regular attack finds nothing, the audit finds the bug.
	always := funcMethod{"always", func(Query) (Certificate, error) { return Certificate{Certified: true, Margin: 1}, nil }}
	rep, rows = run([]Method{always})
	correct, broken := 0, 0
	for _, s := range rep.Samples {
		if s.Correct() {
			correct++
		}
		if s.Attacks["audit-corner"] {
			broken++
			if len(s.Falsified) != 1 || s.Falsified[0] != "always" {
				t.Errorf("sample %d: falsified %v", s.Index, s.Falsified)
			}
		}
	}
	if rows != correct || broken == 0 {
		t.Fatalf("audit ran on %d rows (%d correct), broke %d", rows, correct, broken)
	}
	if f := rep.Summary.FalsifiedCertificates; f == nil || *f != broken {
		t.Errorf("falsified %v, want %d", f, broken)
	}
	if e := rep.Summary.EmpiricalAccuracy; e == nil || *e != float64(correct-broken)/float64(len(y)) {
		t.Errorf("empirical accuracy %v, want %d/%d: the audit counts", e, correct-broken, len(y))
	}

	// Names are checked across attacks and audit.
	_, err := Run(context.Background(), Config{Model: m, X: x, Labels: y, Radius: r, Norm: LInf, Domain: dom,
		Attacks: []Attack{cornerAttack{"a", r, dom}}, Audit: []Attack{cornerAttack{"a", r, dom}}})
	if err == nil || !strings.Contains(err.Error(), `"a": name already used`) {
		t.Errorf("duplicate audit name: %v", err)
	}
}

func falsifiedReport(n int) *Report {
	one := 1
	rep := &Report{Methods: []string{"ibp"}, Attacks: []string{"pgd"},
		Summary: Summary{N: n, FalsifiedCertificates: &one, Seconds: map[string]float64{},
			Warnings: []string{"gradient-masking: black-box attacks broke 1 of 30"}}}
	for i := 0; i < n; i++ {
		s := Sample{Index: i, Label: 1, Predicted: 1, Certified: map[string]bool{"ibp": i == 7}, Attacks: map[string]bool{"pgd": i == 7}}
		if i == 7 {
			s.Falsified = []string{"ibp"}
		}
		rep.Samples = append(rep.Samples, s)
	}
	return rep
}

// A large run shows the falsified samples even without the per-sample table; with
// Color they are red, and the warnings are printed.
func TestTablesFalsifiedAndWarnings(t *testing.T) {
	rep := falsifiedReport(30)
	var plain, color bytes.Buffer
	if err := rep.WriteTablesWith(&plain, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	out := plain.String()
	if strings.Contains(out, "\x1b[") {
		t.Errorf("escape codes without Color:\n%q", out)
	}
	if !strings.Contains(out, "falsified certificates, 1 samples:") || cells(rowOf(out, "7"))[len(cells(rowOf(out, "7")))-1] != "ibp" ||
		rowOf(out, "8") != "" {
		t.Errorf("want the table of sample 7 alone, FALSIFIED ibp:\n%s", out)
	}
	if !strings.Contains(out, "UNSOUND METHOD") || !strings.Contains(out, "warning: gradient-masking: black-box attacks broke 1 of 30\n") {
		t.Errorf("summary or warning missing:\n%s", out)
	}
	if err := rep.WriteTablesWith(&color, TableOptions{Color: true, PerSample: true}); err != nil {
		t.Fatal(err)
	}
	out = color.String()
	if !strings.Contains(rowOf(out, "\x1b[31m7\x1b[0m"), "\x1b[31mibp\x1b[0m") {
		t.Errorf("sample 7 not red:\n%s", out)
	}
	if r := rowOf(out, "8"); r == "" || strings.Contains(r, "\x1b[") {
		t.Errorf("sample 8 %q: want it plain", r)
	}
	if !strings.Contains(out, "\x1b[31mfalsified certificates\x1b[0m") || !strings.Contains(out, "\x1b[33mwarning: ") {
		t.Errorf("summary not red or warning not yellow:\n%s", out)
	}
}
