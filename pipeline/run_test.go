package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// setup returns a linear model with 3 classes on 2x3 inputs and 40 samples.
func setup(seed uint64) (*linear, *nets.Tensor, []int) {
	rng := rand.New(rand.NewPCG(seed, 0))
	m := newLinear(rng, 3, 6)
	x, y := testData(rng, m, 40, 2, 3)
	return m, x, y
}

// independentAccuracy counts correct predictions with its own forward pass.
func independentAccuracy(m *linear, x *nets.Tensor, labels []int) int {
	d := x.Len() / x.Shape[0]
	correct := 0
	for s, y := range labels {
		best, bestZ := -1, math.Inf(-1)
		for j := range m.W {
			z := m.B[j]
			for i := 0; i < d; i++ {
				z += m.W[j][i] * x.Data[s*d+i]
			}
			if z > bestZ {
				best, bestZ = j, z
			}
		}
		if best == y {
			correct++
		}
	}
	return correct
}

func TestRunClean(t *testing.T) {
	m, x, y := setup(1)
	rep, err := Run(context.Background(), Config{Model: m, X: x, Labels: y, Radius: 0.1, Norm: LInf, Domain: Domain{0, 1}, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := independentAccuracy(m, x, y)
	if want == 0 || want == len(y) {
		t.Fatalf("test data degenerate: %d/%d correct", want, len(y))
	}
	if got := rep.Summary.CleanAccuracy; got != float64(want)/float64(len(y)) {
		t.Errorf("clean accuracy %v, want %d/%d", got, want, len(y))
	}
	logits, _ := m.Logits(x)
	pred := logits.Argmax()
	for i, s := range rep.Samples {
		if s.Index != i || s.Label != y[i] || s.Predicted != pred[i] {
			t.Errorf("sample %d: got %+v, want index %d label %d predicted %d", i, s, i, y[i], pred[i])
		}
		if s.Certified != nil || s.Margins != nil || s.Attacks != nil || s.Falsified != nil {
			t.Errorf("sample %d: stage records without stages: %+v", i, s)
		}
	}
	sum := rep.Summary
	if sum.N != 40 || sum.EmpiricalAccuracy != nil || sum.CertifiedAccuracy != nil || sum.FalsifiedCertificates != nil {
		t.Errorf("summary of a clean-only run: %+v", sum)
	}
	if _, ok := sum.Seconds[cleanStage]; !ok || len(sum.Seconds) != 1 {
		t.Errorf("seconds %v, want only clean", sum.Seconds)
	}
}

// TestRunSound runs an exact certifier and the optimal attack on a linear model:
// together they decide every correct sample, so certified and attacked partition
// them and no certificate is falsified.
func TestRunSound(t *testing.T) {
	m, x, y := setup(2)
	dom := Domain{0, 1}
	const r = 0.08
	rep, err := Run(context.Background(), Config{
		Model: m, X: x, Labels: y, Radius: r, Norm: LInf, Domain: dom,
		Methods: []Method{exactMethod{"exact"}},
		Attacks: []Attack{cornerAttack{"corner", r, dom}},
	})
	if err != nil {
		t.Fatal(err)
	}
	correct, cert, attacked := 0, 0, 0
	for _, s := range rep.Samples {
		if !s.Correct() {
			if s.Certified["exact"] || len(s.Attacks) != 0 || len(s.Margins) != 0 {
				t.Errorf("misclassified sample %d has stage results %+v", s.Index, s)
			}
			continue
		}
		correct++
		c, a := s.Certified["exact"], s.Attacks["corner"]
		if c == a {
			t.Errorf("sample %d: certified %v, attacked %v: an exact method and the optimal attack must disagree", s.Index, c, a)
		}
		lo, hi := Region{Center: x.Row(s.Index), Norm: LInf, Radius: r, Domain: dom}.Box()
		want, _, _ := m.worst(lo.Data, hi.Data, s.Label)
		if got := s.Margins["exact"]; got != want {
			t.Errorf("sample %d: margin %v, want %v", s.Index, got, want)
		}
		if c {
			cert++
		}
		if a {
			attacked++
		}
	}
	if cert == 0 || attacked == 0 {
		t.Fatalf("test degenerate: %d certified, %d attacked of %d", cert, attacked, correct)
	}
	n := float64(len(y))
	sum := rep.Summary
	if got := sum.CertifiedAccuracy["exact"]; got != float64(cert)/n {
		t.Errorf("certified accuracy %v, want %d/%v", got, cert, n)
	}
	if sum.EmpiricalAccuracy == nil || *sum.EmpiricalAccuracy != float64(correct-attacked)/n {
		t.Errorf("empirical accuracy %v, want %d/%v", sum.EmpiricalAccuracy, correct-attacked, n)
	}
	if sum.FalsifiedCertificates == nil || *sum.FalsifiedCertificates != 0 {
		t.Errorf("falsified %v, want 0", sum.FalsifiedCertificates)
	}
	for _, k := range []string{"clean", "exact", "corner"} {
		if _, ok := sum.Seconds[k]; !ok {
			t.Errorf("no seconds for %s: %v", k, sum.Seconds)
		}
	}
}

// TestAuditFalsified: an unsound method that certifies everything is caught on
// exactly the samples the attack breaks.
func TestAuditFalsified(t *testing.T) {
	m, x, y := setup(2)
	dom := Domain{0, 1}
	const r = 0.08
	always := funcMethod{"always", func(Query) (Certificate, error) { return Certificate{Certified: true, Margin: 1}, nil }}
	rep, err := Run(context.Background(), Config{
		Model: m, X: x, Labels: y, Radius: r, Norm: LInf, Domain: dom,
		Methods: []Method{exactMethod{"exact"}, always},
		Attacks: []Attack{cornerAttack{"corner", r, dom}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, s := range rep.Samples {
		if s.Attacks["corner"] {
			want++
			if len(s.Falsified) != 1 || s.Falsified[0] != "always" {
				t.Errorf("sample %d: falsified %v, want [always]", s.Index, s.Falsified)
			}
		} else if s.Falsified != nil {
			t.Errorf("sample %d: falsified %v, want none", s.Index, s.Falsified)
		}
	}
	if want == 0 {
		t.Fatal("test degenerate: no sample attacked")
	}
	if got := rep.Summary.FalsifiedCertificates; got == nil || *got != want {
		t.Errorf("falsified certificates %v, want %d", got, want)
	}
	var buf bytes.Buffer
	if err := rep.WriteSummaryTable(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "UNSOUND") {
		t.Errorf("summary table does not flag falsified certificates:\n%s", buf.String())
	}
}

func zeroSeconds(rep *Report) {
	for k := range rep.Summary.Seconds {
		rep.Summary.Seconds[k] = 0
	}
}

// TestDeterministic: the same inputs give the same JSON but for seconds, whatever the
// number of workers and the order of the rows.
func TestDeterministic(t *testing.T) {
	m, x, y := setup(4)
	dom := Domain{0, 1}
	seeded := funcMethod{"seeded", func(q Query) (Certificate, error) {
		// A randomised method: its answer depends only on the sample's seed.
		rng := rand.New(rand.NewPCG(uint64(q.Seed), 0))
		return Certificate{Certified: rng.IntN(2) == 0, Margin: rng.Float64() - 0.5}, nil
	}}
	run := func(workers int, perm []int) []byte {
		n := len(y)
		per := x.Len() / n
		xp := nets.NewTensor(x.Shape...)
		yp := make([]int, n)
		for i, p := range perm {
			copy(xp.Data[i*per:(i+1)*per], x.Data[p*per:(p+1)*per])
			yp[i] = y[p]
		}
		rep, err := Run(context.Background(), Config{
			Model: m, X: xp, Labels: yp, Indices: perm, Radius: 0.05, Norm: LInf, Domain: dom, Seed: 9,
			Methods: []Method{exactMethod{"exact"}, seeded}, Attacks: []Attack{cornerAttack{"corner", 0.05, dom}},
			Workers: workers, ModelPath: "m.onnx", ModelSHA256: "abc",
		})
		if err != nil {
			t.Fatal(err)
		}
		zeroSeconds(rep)
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	id := make([]int, len(y))
	rev := make([]int, len(y))
	for i := range id {
		id[i] = i
		rev[i] = len(y) - 1 - i
	}
	a, b, c := run(1, id), run(4, id), run(3, rev)
	if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
		t.Errorf("reports differ:\n%s\n%s\n%s", a, b, c)
	}
}

// TestJSONFields checks the contract's field names and that not-run stages are
// absent, not zero.
func TestJSONFields(t *testing.T) {
	m, x, y := setup(5)
	dom := Domain{0, 1}
	decode := func(cfg Config) map[string]any {
		cfg.Model, cfg.X, cfg.Labels, cfg.Norm, cfg.Domain, cfg.Radius, cfg.Seed = m, x, y, LInf, dom, 0.1, 1
		cfg.ModelPath, cfg.ModelSHA256 = "model.onnx", "00ff"
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	clean := decode(Config{})
	for k, want := range map[string]any{"model": "model.onnx", "model_sha256": "00ff", "radius": 0.1, "norm": "linf", "seed": 1.0} {
		if clean[k] != want {
			t.Errorf("%s = %v, want %v", k, clean[k], want)
		}
	}
	samples := clean["samples"].([]any)
	s0 := samples[0].(map[string]any)
	for _, k := range []string{"index", "label", "predicted"} {
		if _, ok := s0[k]; !ok {
			t.Errorf("sample lacks %q: %v", k, s0)
		}
	}
	for _, k := range []string{"certified", "margins", "attacks", "smoothing", "falsified"} {
		if _, ok := s0[k]; ok {
			t.Errorf("clean-only sample has %q: %v", k, s0)
		}
	}
	sum := clean["summary"].(map[string]any)
	if sum["n"] != 40.0 || sum["clean_accuracy"] == nil || sum["seconds"].(map[string]any)["clean"] == nil {
		t.Errorf("summary %v lacks n, clean_accuracy or seconds.clean", sum)
	}
	for _, k := range []string{"empirical_accuracy", "certified_accuracy", "falsified_certificates"} {
		if _, ok := sum[k]; ok {
			t.Errorf("clean-only summary has %q: %v", k, sum)
		}
	}

	full := decode(Config{Methods: []Method{exactMethod{"ibp"}}, Attacks: []Attack{cornerAttack{"pgd", 0.1, dom}}})
	sum = full["summary"].(map[string]any)
	if sum["certified_accuracy"].(map[string]any)["ibp"] == nil || sum["empirical_accuracy"] == nil || sum["falsified_certificates"] != 0.0 {
		t.Errorf("full summary %v", sum)
	}
	for _, raw := range full["samples"].([]any) {
		s := raw.(map[string]any)
		if _, ok := s["certified"].(map[string]any)["ibp"]; !ok {
			t.Errorf("sample without certified.ibp: %v", s)
		}
		if s["label"] == s["predicted"] {
			if _, ok := s["attacks"].(map[string]any)["pgd"]; !ok {
				t.Errorf("correct sample without attacks.pgd: %v", s)
			}
			if _, ok := s["margins"].(map[string]any)["ibp"]; !ok {
				t.Errorf("correct sample without margins.ibp: %v", s)
			}
		}
	}
}

func TestRunErrors(t *testing.T) {
	m, x, y := setup(6)
	dom := Domain{0, 1}
	good := func() Config {
		return Config{Model: m, X: x, Labels: y, Radius: 0.1, Norm: LInf, Domain: dom}
	}
	nanModel := &linear{W: [][]float64{{math.NaN(), 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0}}, B: []float64{0, 0}}
	outside := funcAttack{"outside", func(x *nets.Tensor) (*nets.Tensor, error) {
		adv := x.Clone()
		// Element 1 of batch row 1, moved 0.5 inside the domain: beyond the radius.
		if adv.Data[7] > 0.5 {
			adv.Data[7] -= 0.5
		} else {
			adv.Data[7] += 0.5
		}
		return adv, nil
	}}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no model", func(c *Config) { c.Model = nil }, "no model"},
		{"labels", func(c *Config) { c.Labels = y[:3] }, "40 samples but 3 labels"},
		{"repeated index", func(c *Config) { c.Indices = make([]int, 40) }, "repeated"},
		{"negative radius", func(c *Config) { c.Radius = -1 }, "radius"},
		{"nan radius", func(c *Config) { c.Radius = math.NaN() }, "radius"},
		{"norm", func(c *Config) { c.Norm = "l1" }, "unknown norm"},
		{"domain", func(c *Config) { c.Domain = Domain{1, 0} }, "lo must be below hi"},
		{"duplicate name", func(c *Config) {
			c.Methods = []Method{exactMethod{"x"}}
			c.Attacks = []Attack{cornerAttack{name: "x"}}
		}, `"x": name already used`},
		{"clean name", func(c *Config) { c.Methods = []Method{exactMethod{"clean"}} }, "already used"},
		{"label range", func(c *Config) { c.Labels = append(append([]int(nil), y[:39]...), 3) }, "sample 39: label 3 is not a class of the model (0..2)"},
		{"nan logits", func(c *Config) { c.Model = nanModel }, "is NaN"},
		{"model error", func(c *Config) { c.X = nets.NewTensor(40, 5) }, "clean pass: linear: 5 features"},
		{"method error", func(c *Config) {
			c.Indices = make([]int, 40)
			for i := range c.Indices {
				c.Indices[i] = 100 + i
			}
			c.Labels = append([]int(nil), y...)
			logits, _ := m.Logits(x)
			c.Labels[12] = logits.Argmax()[12] // surely correct, so the method runs on it
			c.Methods = []Method{funcMethod{"bad", func(q Query) (Certificate, error) {
				if q.Index == 112 {
					return Certificate{}, errors.New("boom")
				}
				return Certificate{}, nil
			}}}
		}, "method bad: sample 112: boom"},
		{"nan margin", func(c *Config) {
			c.Methods = []Method{funcMethod{"nan", func(Query) (Certificate, error) { return Certificate{Margin: math.NaN()}, nil }}}
		}, "margin is NaN"},
		{"attack outside", func(c *Config) {
			logits, _ := m.Logits(x)
			c.Labels = logits.Argmax() // all correct: batch row 1 is sample 1
			c.Attacks = []Attack{outside}
		}, "attack outside: sample 1: returned a point outside the region: linf distance 0.5 exceeds the radius 0.1"},
		{"attack shape", func(c *Config) {
			c.Attacks = []Attack{funcAttack{"short", func(x *nets.Tensor) (*nets.Tensor, error) { return nets.NewTensor(1, 2, 3), nil }}}
		}, "attack short: returned shape [1 2 3]"},
		{"attack error", func(c *Config) {
			c.Attacks = []Attack{funcAttack{"err", func(*nets.Tensor) (*nets.Tensor, error) { return nil, errors.New("no gradients") }}}
		}, "attack err: no gradients"},
		{"l2 corner outside", func(c *Config) {
			c.Norm = L2
			c.Attacks = []Attack{cornerAttack{"corner", 0.1, dom}}
		}, "l2 distance"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.edit(&cfg)
			_, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	m, x, y := setup(7)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	stop := funcMethod{"stop", func(Query) (Certificate, error) {
		calls++ // Workers: 1, so no race
		cancel()
		return Certificate{}, nil
	}}
	_, err := Run(ctx, Config{Model: m, X: x, Labels: y, Norm: LInf, Domain: Domain{0, 1}, Methods: []Method{stop}, Workers: 1})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if calls > 2 {
		t.Errorf("method called %d times after cancellation", calls)
	}
}

func TestProgress(t *testing.T) {
	m, x, y := setup(8)
	var buf bytes.Buffer
	_, err := Run(context.Background(), Config{Model: m, X: x, Labels: y, Radius: 0.05, Norm: LInf, Domain: Domain{0, 1},
		Methods: []Method{exactMethod{"exact"}}, Progress: &lineProgress{w: &buf}})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	want := independentAccuracy(m, x, y)
	for _, s := range []string{"clean: " + strconv.Itoa(want) + "/40 correct", "exact: ", "certified"} {
		if !strings.Contains(out, s) {
			t.Errorf("progress lacks %q:\n%s", s, out)
		}
	}
}
