package pipeline

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certify-dev/certify/nets"
)

// slowMethod certifies exactly, but samples whose index is in slow wait for their
// context to end first (and return its error), as an exploding method would.
type slowMethod struct {
	exactMethod
	slow map[int]bool
}

func (s slowMethod) Certify(ctx context.Context, model nets.Classifier, q Query) (Certificate, error) {
	if s.slow[q.Index] {
		<-ctx.Done()
		return Certificate{}, ctx.Err()
	}
	return s.exactMethod.Certify(ctx, model, q)
}

// patientMethod waits for its context to end, then answers unknown "timeout"
// without an error, as bab does when its time runs out (keeping what it
// decided).
type patientMethod struct{ exactMethod }

func (p patientMethod) Certify(ctx context.Context, _ nets.Classifier, _ Query) (Certificate, error) {
	<-ctx.Done()
	return Certificate{Unknown: "timeout"}, nil
}

// budgetMethod reports a budget guard's unknown on the samples in over.
type budgetMethod struct {
	exactMethod
	over map[int]bool
}

func (b budgetMethod) Certify(ctx context.Context, model nets.Classifier, q Query) (Certificate, error) {
	if b.over[q.Index] {
		return Certificate{Unknown: "lp size"}, nil
	}
	return b.exactMethod.Certify(ctx, model, q)
}

// Samples a method cannot finish in --timeout, or that a budget guard stops, are
// unknown for that method (not certified, not an error), counted in the summary;
// every other sample gets the same answer as without limits.
func TestSampleTimeoutAndBudget(t *testing.T) {
	m, x, y := setup(5)
	base := Config{Model: m, X: x, Labels: y, Radius: 0.05, Norm: LInf, Domain: Domain{0, 1}}
	cfg := base
	cfg.Methods = []Method{exactMethod{"exact"}}
	want, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var correct []int
	for _, s := range want.Samples {
		if s.Correct() {
			correct = append(correct, s.Index)
		}
	}
	slow := map[int]bool{correct[0]: true, correct[3]: true}
	over := map[int]bool{correct[1]: true}
	cfg = base
	cfg.SampleTimeout = 20 * time.Millisecond
	cfg.Methods = []Method{slowMethod{exactMethod{"exact"}, slow}, budgetMethod{exactMethod{"lp"}, over}}
	start := time.Now()
	got, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %v: the timeout did not stop the slow samples", el)
	}
	for i, s := range got.Samples {
		w := want.Samples[i]
		wantUnknown := map[string]string{}
		if slow[s.Index] {
			wantUnknown["exact"] = "timeout"
		}
		if over[s.Index] {
			wantUnknown["lp"] = "lp size"
		}
		if len(wantUnknown) == 0 {
			wantUnknown = nil
		}
		if !reflect.DeepEqual(s.Unknown, wantUnknown) {
			t.Errorf("sample %d: unknown %v, want %v", s.Index, s.Unknown, wantUnknown)
		}
		if wantCert := w.Certified["exact"] && !slow[s.Index]; s.Certified["exact"] != wantCert {
			t.Errorf("sample %d: exact certified %v, want %v", s.Index, s.Certified["exact"], wantCert)
		}
		if wantCert := w.Certified["exact"] && !over[s.Index]; s.Certified["lp"] != wantCert {
			t.Errorf("sample %d: lp certified %v, want %v", s.Index, s.Certified["lp"], wantCert)
		}
	}
	if u := got.Summary.Unknown; u["exact"] != 2 || u["lp"] != 1 || len(u) != 2 {
		t.Errorf("summary unknown %v, want exact 2, lp 1", u)
	}
}

// An overall deadline stops the run where it is: what is left is unknown
// ("deadline") for every stage, the report is complete, and no error is returned;
// the caller's own cancellation is still an error.
func TestDeadline(t *testing.T) {
	m, x, y := setup(6)
	every := map[int]bool{}
	for i := range y {
		every[i] = true
	}
	cfg := Config{Model: m, X: x, Labels: y, Radius: 0.05, Norm: LInf, Domain: Domain{0, 1}, Workers: 2,
		Methods:  []Method{slowMethod{exactMethod{"stuck"}, every}, patientMethod{exactMethod{"patient"}}, exactMethod{"exact"}},
		Attacks:  []Attack{cornerAttack{"corner", 0.05, Domain{0, 1}}},
		Deadline: time.Now().Add(50 * time.Millisecond)}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("a run past its deadline: %v; want a report", err)
	}
	correct := 0
	for _, s := range rep.Samples {
		if !s.Correct() {
			if len(s.Unknown) != 0 {
				t.Errorf("misclassified sample %d: unknown %v", s.Index, s.Unknown)
			}
			continue
		}
		correct++
		want := map[string]string{"stuck": "deadline", "patient": "deadline", "exact": "deadline", "corner": "deadline"}
		if !reflect.DeepEqual(s.Unknown, want) {
			t.Errorf("sample %d: unknown %v, want %v", s.Index, s.Unknown, want)
		}
		if s.Certified["exact"] || s.Attacks["corner"] {
			t.Errorf("sample %d: answers after the deadline", s.Index)
		}
		if len(s.Margins) != 0 {
			t.Errorf("sample %d: margins %v proven after the deadline", s.Index, s.Margins)
		}
	}
	if u := rep.Summary.Unknown; u["stuck"] != correct || u["exact"] != correct || u["corner"] != correct {
		t.Errorf("summary unknown %v, want %d each", u, correct)
	}
	if len(rep.Methods) != 3 || len(rep.Attacks) != 1 {
		t.Errorf("stages %v %v: every stage is listed", rep.Methods, rep.Attacks)
	}
	var b strings.Builder
	if err := rep.WriteTables(&b, true); err != nil {
		t.Fatal(err)
	}
	if c := strings.Count(b.String(), "unknown (deadline)"); c != 4*correct {
		t.Errorf("the per-sample table shows %d unknown cells, want %d:\n%s", c, 4*correct, b.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	cfg.Deadline = time.Time{}
	if _, err := Run(ctx, cfg); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the caller's context ended: %v, want its error", err)
	}
}

// A sweep is, radius by radius, the single runs at each radius; the report's own
// samples and summary are the first radius's.
func TestRunSweep(t *testing.T) {
	m, x, y := setup(7)
	at := func(r float64) (Config, error) {
		return Config{Model: m, X: x, Labels: y, Norm: LInf, Domain: Domain{0, 1},
			Methods: []Method{exactMethod{"exact"}}, Attacks: []Attack{cornerAttack{"corner", r, Domain{0, 1}}}}, nil
	}
	radii := []float64{0.1, 0.01, 0.05}
	rep, err := RunSweep(context.Background(), radii, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Sweep) != 3 || rep.Radius != 0.1 {
		t.Fatalf("%d radii, radius %g", len(rep.Sweep), rep.Radius)
	}
	prev := -1.0
	for i, r := range radii {
		cfg, _ := at(r)
		cfg.Radius = r
		one, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		run := rep.Sweep[i]
		one.Summary.Seconds, run.Summary.Seconds = nil, nil
		if run.Radius != r || !reflect.DeepEqual(run.Samples, one.Samples) || !reflect.DeepEqual(run.Summary, one.Summary) {
			t.Errorf("radius %g: the sweep's entry differs from the single run", r)
		}
		if r == 0.01 {
			prev = run.Summary.CertifiedAccuracy["exact"]
		}
	}
	if c := rep.Sweep[2].Summary.CertifiedAccuracy["exact"]; prev < c || c < rep.Sweep[0].Summary.CertifiedAccuracy["exact"] {
		t.Errorf("certified accuracy not decreasing with the radius: %v", rep.Sweep)
	}
	if !reflect.DeepEqual(rep.Samples, rep.Sweep[0].Samples) {
		t.Error("the report's samples are not the first radius's")
	}
	single, err := RunSweep(context.Background(), []float64{0.05}, at)
	if err != nil || single.Sweep != nil || single.Radius != 0.05 {
		t.Errorf("one radius: sweep %v, radius %g, %v; want a plain run", single.Sweep, single.Radius, err)
	}
	for _, bad := range [][]float64{nil, {0.1, 0.1}, {-1}} {
		if _, err := RunSweep(context.Background(), bad, at); err == nil {
			t.Errorf("radii %v: no error", bad)
		}
	}
}
