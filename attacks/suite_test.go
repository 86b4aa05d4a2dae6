package attacks

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func linf(eps float64) Budget { return Budget{Norm: LInf, Eps: eps, Lo: 0, Hi: 1} }

// Every registered attack builds under its own name and runs on a few samples of
// the shipped MLP with tiny options, returning points inside the budget.
func TestSuiteEveryAttackRuns(t *testing.T) {
	g, x, y := shippedMLP(t, 4)
	opts := Options{Steps: 3, Queries: 60, Restarts: 1, Surrogate: g}
	per := x.Len() / x.Shape[0]
	for _, name := range Names() {
		b := linf(0.1)
		if name == "cw" {
			b = Budget{Norm: L2, Eps: 1.5, Lo: 0, Hi: 1}
		}
		a, err := New(name, b, 7, opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if a.Name() != name {
			t.Errorf("New(%q).Name() = %q", name, a.Name())
		}
		if doc, norms, ok := Describe(name); !ok || doc == "" || !slices.Contains(norms, b.Norm) {
			t.Errorf("Describe(%q) = %q, %v, %v", name, doc, norms, ok)
		}
		r, err := a.Attack(context.Background(), g, x, y)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i := range y {
			if !b.Contains(r.Adv.Data[i*per:(i+1)*per], x.Data[i*per:(i+1)*per]) {
				t.Errorf("%s: row %d outside the budget", name, i)
			}
		}
		adv, err := a.Run(context.Background(), g, x, y)
		if err != nil || !slices.Equal(adv.Data, r.Adv.Data) {
			t.Errorf("%s: Run differs from Attack (err %v)", name, err)
		}
	}
}

// The options reach the attacks' fields, and zero keeps the literature defaults.
func TestSuiteOptions(t *testing.T) {
	b := linf(0.1)
	get := func(name string, o Options) Detailed {
		t.Helper()
		a, err := New(name, b, 3, o)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	p := get("pgd", Options{}).(PGD)
	if p.Steps != 40 || p.Step != 0.01 || p.Restarts != 1 || !p.RandomStart || p.Seed != 3 {
		t.Errorf("default pgd %+v: want 40 steps of 0.01, 1 restart, random start, seed 3", p)
	}
	p = get("pgd", Options{Steps: 7, Step: 0.02, Restarts: 3}).(PGD)
	if p.Steps != 7 || p.Step != 0.02 || p.Restarts != 3 {
		t.Errorf("pgd %+v: want 7 steps of 0.02, 3 restarts", p)
	}
	l2, err := New("pgd", Budget{Norm: L2, Eps: 2, Lo: 0, Hi: 1}, 3, Options{Steps: 10})
	if err != nil {
		t.Fatal(err)
	}
	if s := l2.(PGD).Step; s != 0.5 {
		t.Errorf("L2 pgd with 10 steps: step %g, want 2.5·2/10 = 0.5", s)
	}
	if m := get("mifgsm", Options{Steps: 20}).(MIFGSM); m.Steps != 20 || m.Step != 0.1/20 {
		t.Errorf("mifgsm %+v: want 20 steps of ε/20", m)
	}
	if a := get("apgd-ce", Options{Steps: 11, Restarts: 2}).(APGD); a.Iters != 11 || a.Restarts != 2 || a.Name() != "apgd-ce" {
		t.Errorf("apgd-ce %+v", a)
	}
	if a := get("apgd-dlr", Options{}).(APGD); a.Iters != 100 || a.Name() != "apgd-dlr" {
		t.Errorf("apgd-dlr %+v", a)
	}
	if a := get("apgd-t", Options{Steps: 9}).(APGDT); a.Iters != 9 || a.Targets != 9 {
		t.Errorf("apgd-t %+v", a)
	}
	if s := get("square", Options{}).(Square); s.Queries != 5000 {
		t.Errorf("square: %d queries, want 5000", s.Queries)
	}
	if s := get("square", Options{Queries: 123}).(Square); s.Queries != 123 {
		t.Errorf("square: %d queries, want 123", s.Queries)
	}
	for _, name := range []string{"nes", "spsa", "simba", "hopskipjump", "genetic"} {
		a := get(name, Options{Queries: 77})
		var q int
		switch v := a.(type) {
		case NES:
			q = v.Queries
		case SPSA:
			q = v.Queries
		case SimBA:
			q = v.Queries
		case HopSkipJump:
			q = v.Queries
		case Genetic:
			q = v.Queries
		}
		if q != 77 {
			t.Errorf("%s: %d queries, want 77", name, q)
		}
	}
	// DeepFool at L∞ is renamed from "deepfool-linf" to its registry name.
	df := get("deepfool", Options{Steps: 5})
	if n, ok := df.(Named); !ok || n.Inner.(DeepFool).MaxIter != 5 || n.Name() != "deepfool" {
		t.Errorf("deepfool: %#v", df)
	}
	aa := get("autoattack", Options{Steps: 6, Queries: 50}).(AutoAttack)
	var names []string
	for _, a := range aa.Attacks {
		names = append(names, a.Name())
	}
	if !slices.Equal(names, []string{"apgd-ce", "apgd-t", "square"}) || aa.Attacks[0].(APGD).Iters != 6 || aa.Attacks[2].(Square).Queries != 50 {
		t.Errorf("autoattack list %v (%+v)", names, aa.Attacks)
	}
}

func TestSuiteErrors(t *testing.T) {
	b := linf(0.1)
	for _, c := range []struct {
		name string
		b    Budget
		o    Options
		want string
	}{
		{"nope", b, Options{}, `unknown attack "nope"`},
		{"default", b, Options{}, "use NewSuite"},
		{"cw", b, Options{}, "norm linf not supported"},
		{"genetic", Budget{Norm: L2, Eps: 1, Hi: 1}, Options{}, "norm l2 not supported"},
		{"pgd", Budget{Norm: L1, Eps: 1, Hi: 1}, Options{}, "norm l1 not supported"},
		{"transfer", b, Options{}, "surrogate"},
		{"pgd", b, Options{Steps: -1}, "steps"},
		{"square", b, Options{Queries: -5}, "queries"},
		{"pgd", Budget{Norm: LInf, Eps: -1, Hi: 1}, Options{}, "radius"},
	} {
		_, err := New(c.name, c.b, 1, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q, %+v, %+v): error %v, want one containing %q", c.name, c.b, c.o, err, c.want)
		}
	}
	if _, err := NewSuite([]string{"pgd", "bogus"}, b, 1, Options{}); err == nil {
		t.Error("NewSuite with an unknown name: no error")
	}
	if _, err := NewSuite([]string{Default}, Budget{Norm: L1, Eps: 1, Hi: 1}, 1, Options{}); err == nil || !strings.Contains(err.Error(), "default suite") {
		t.Errorf("default suite at L1: error %v", err)
	}
}

func suiteNames(as []Detailed) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Name())
	}
	return out
}

func TestSuiteDefault(t *testing.T) {
	b := linf(0.1)
	s, err := NewSuite([]string{Default}, b, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := suiteNames(s); !slices.Equal(got, []string{"apgd-ce", "apgd-t", "square", "pgd"}) {
		t.Fatalf("default suite %v", got)
	}
	if p := s[3].(PGD); p.Restarts != 5 || p.Steps != 40 {
		t.Errorf("default suite's pgd: %d restarts, %d steps; want 5, 40", p.Restarts, p.Steps)
	}
	if q := s[2].(Square).Queries; q != 5000 {
		t.Errorf("default suite's square: %d queries", q)
	}
	s, err = NewSuite([]string{Default}, b, 1, Options{Restarts: 2})
	if err != nil || s[3].(PGD).Restarts != 2 {
		t.Errorf("--restarts 2 must reach the default suite's pgd: %v", err)
	}
	// A name listed twice is built once, at its first place.
	s, err = NewSuite([]string{"pgd", "fgsm", Default, "fgsm"}, b, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := suiteNames(s); !slices.Equal(got, []string{"pgd", "fgsm", "apgd-ce", "apgd-t", "square"}) {
		t.Errorf("suite %v", got)
	}
	if s[0].(PGD).Restarts != 1 {
		t.Errorf("pgd listed before default keeps 1 restart")
	}
}

func TestSuiteAudit(t *testing.T) {
	b := linf(0.1)
	if a, err := NewAudit(1, b, 1, Options{}); a != nil || err != nil {
		t.Errorf("effort 1: %v, %v; want no attack", a, err)
	}
	a, err := NewAudit(3, b, 1, Options{Steps: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := suiteNames(a); !slices.Equal(got, []string{"audit-pgd", "audit-square"}) {
		t.Fatalf("audit %v", got)
	}
	p := a[0].(Named).Inner.(PGD)
	if p.Steps != 30 || p.Restarts != 15 || p.Step != 0.01 || p.Seed == 1 {
		t.Errorf("audit pgd %+v: want 30 steps of 0.01, 15 restarts, a derived seed", p)
	}
	if s := a[1].(Named).Inner.(Square); s.Queries != 15000 || s.Seed != p.Seed {
		t.Errorf("audit square %+v: want 15000 queries", s)
	}
	if KindOf(a[0]) != WhiteBox || KindOf(a[1]) != BlackBox {
		t.Errorf("audit kinds %v %v", KindOf(a[0]), KindOf(a[1]))
	}
}

func TestSuiteKinds(t *testing.T) {
	g, _, _ := shippedMLP(t, 1)
	want := map[string]Kind{"fgsm": WhiteBox, "pgd": WhiteBox, "apgd-t": WhiteBox, "deepfool": WhiteBox, "ead": WhiteBox,
		"square": BlackBox, "nes": BlackBox, "genetic": BlackBox, "hopskipjump": BlackBox, "transfer": BlackBox,
		"autoattack": Ensemble}
	for name, k := range want {
		a, err := New(name, linf(0.1), 1, Options{Surrogate: g})
		if err != nil {
			t.Fatal(err)
		}
		if KindOf(a) != k {
			t.Errorf("KindOf(%s) = %v, want %v", name, KindOf(a), k)
		}
	}
}

// On the shipped MLP: more restarts of PGD break a superset of the rows (the first
// restart is the same run), and the transfer attack from the model itself is PGD
// run to the end on the model.
func TestSuiteStrengthShippedMLP(t *testing.T) {
	g, x, y := shippedMLP(t, 12)
	b := linf(0.04)
	ctx := context.Background()
	run := func(a Detailed) []bool {
		t.Helper()
		r, err := a.Attack(ctx, g, x, y)
		if err != nil {
			t.Fatal(err)
		}
		return r.Success
	}
	one, _ := New("pgd", b, 5, Options{Steps: 10})
	def, _ := NewSuite([]string{Default}, b, 5, Options{Steps: 10})
	s1, s5 := run(one), run(def[3])
	n1, n5 := 0, 0
	for i := range s1 {
		if s1[i] {
			n1++
			if !s5[i] {
				t.Errorf("row %d: broken by 1 restart but not by 5", i)
			}
		}
		if s5[i] {
			n5++
		}
	}
	t.Logf("pgd-10 at ε=%g: 1 restart broke %d/12, 5 restarts %d/12", b.Eps, n1, n5)

	tr, err := New("transfer", b, 5, Options{Steps: 10, Surrogate: g})
	if err != nil {
		t.Fatal(err)
	}
	self := newSuitePGD(b, 5, Options{Steps: 10}, 1)
	self.EarlyStop = false
	if st, sp := run(tr), run(self); !slices.Equal(st, sp) {
		t.Errorf("transfer from the model itself %v, PGD to the end %v: want equal", st, sp)
	}
}
