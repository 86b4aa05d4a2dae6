package attacks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/certify-dev/certify/nets"
)

// Options are the knobs a user may turn on the attacks of a suite, shared by name
// across them. The zero value of a field keeps every attack's literature default
// (see each attack's constructor), so Options{} is the published setting.
type Options struct {
	// Steps is the number of iterations of the iterative attacks: PGD, BIM,
	// MI-FGSM, APGD (all losses), APGD-T (per target), DeepFool (at most) and C&W
	// and EAD (per binary-search round). Defaults: 40 (PGD, Madry et al. 2018),
	// BIM's min(255ε+4, 1.25·255ε), 10 (MI-FGSM), 100 (APGD, APGD-T), 50 (DeepFool),
	// 1000 (C&W, EAD).
	Steps int
	// Step is the step size, in input units, of PGD, BIM and MI-FGSM. Defaults:
	// 0.01 (PGD L∞; 2.5ε/Steps for L2), 1/255 (BIM), ε/Steps (MI-FGSM).
	Step float64
	// Restarts is the number of random starts of PGD, APGD and APGD-T (per
	// target). Default 1, except 5 for the PGD of the default suite.
	Restarts int
	// Queries is the model-evaluation budget per sample of the black-box attacks:
	// Square (default 5000, Andriushchenko et al. 2020), NES, SPSA, SimBA,
	// HopSkipJump and the genetic attack (default 10 000).
	Queries int
	// Surrogate is the model the transfer attack crafts on (with PGD, with the
	// options above, run to the end); required by "transfer" only.
	Surrogate nets.Classifier
}

// validate rejects negative knobs.
func (o Options) validate() error {
	switch {
	case o.Steps < 0:
		return fmt.Errorf("%d steps: want ≥ 0 (0 = the attack's default)", o.Steps)
	case o.Step < 0 || o.Step != o.Step:
		return fmt.Errorf("step size %g: want ≥ 0 (0 = the attack's default)", o.Step)
	case o.Restarts < 0:
		return fmt.Errorf("%d restarts: want ≥ 0 (0 = the attack's default)", o.Restarts)
	case o.Queries < 0:
		return fmt.Errorf("%d queries: want ≥ 0 (0 = the attack's default)", o.Queries)
	}
	return nil
}

// Kind says what an attack sees of the model.
type Kind int

const (
	// WhiteBox attacks follow the model's input gradients.
	WhiteBox Kind = iota
	// BlackBox attacks see only the model's scores or decisions (transfer
	// included: it only queries the target).
	BlackBox
	// Ensemble mixes both (AutoAttack runs APGD and Square).
	Ensemble
)

func (k Kind) String() string {
	switch k {
	case WhiteBox:
		return "white-box"
	case BlackBox:
		return "black-box"
	case Ensemble:
		return "ensemble"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// KindOf classifies an attack of this package, looking through Named. Ensembles,
// and attacks of other packages, are Ensemble: what they see is not known, so no
// conclusion (such as SanityGradientMasking's) should be drawn from them.
func KindOf(a Attack) Kind {
	for {
		n, ok := a.(Named)
		if !ok {
			break
		}
		a = n.Inner
	}
	switch a.(type) {
	case FGSM, RFGSM, BIM, PGD, MIFGSM, APGD, APGDT, DeepFool, CW, EAD:
		return WhiteBox
	case Square, NES, SPSA, SimBA, HopSkipJump, Genetic, Transfer:
		return BlackBox
	}
	return Ensemble
}

// suiteEntry is one attack of the registry.
type suiteEntry struct {
	name  string
	norms []Norm
	doc   string
	build func(b Budget, seed uint64, o Options) (Detailed, error)
}

// Default is the name of the strong suite in NewSuite's lists.
const Default = "default"

// DefaultSuite lists the attacks Default stands for, in the order they run: the
// strong, parameter-free evaluation of Croce & Hein (ICML 2020) — APGD-CE, APGD-T,
// and the black-box Square attack with 5000 queries, which catches gradient
// masking — plus PGD with 5 random restarts (Madry et al. 2018), the attack most
// papers report.
func DefaultSuite() []string { return []string{"apgd-ce", "apgd-t", "square", "pgd"} }

// defaultSuitePGDRestarts is the number of restarts of the default suite's PGD.
const defaultSuitePGDRestarts = 5

var (
	normsLInfL2 = []Norm{LInf, L2}
	normsAll    = []Norm{LInf, L2, L1}
)

// registry lists every attack New knows, in the order Names returns them. A
// function, not a package variable, so nothing global can be mutated.
func registry() []suiteEntry {
	return []suiteEntry{
		{"fgsm", normsLInfL2, "fast gradient sign method, one step (Goodfellow et al. 2015)", func(b Budget, s uint64, o Options) (Detailed, error) {
			return NewFGSM(b, s), nil
		}},
		{"rfgsm", normsLInfL2, "random step then FGSM (Tramèr et al. 2018)", func(b Budget, s uint64, o Options) (Detailed, error) {
			return NewRFGSM(b, s), nil
		}},
		{"bim", normsLInfL2, "basic iterative method, I-FGSM (Kurakin et al. 2017)", func(b Budget, s uint64, o Options) (Detailed, error) {
			a := NewBIM(b, s)
			a.Steps = or(o.Steps, a.Steps)
			a.Step = orF(o.Step, a.Step)
			return a, nil
		}},
		{"pgd", normsLInfL2, "projected gradient descent, 40 steps of 0.01 from a random start (Madry et al. 2018)", func(b Budget, s uint64, o Options) (Detailed, error) {
			return newSuitePGD(b, s, o, 1), nil
		}},
		{"mifgsm", normsLInfL2, "momentum iterative FGSM, 10 steps of ε/10 (Dong et al. 2018)", func(b Budget, s uint64, o Options) (Detailed, error) {
			a := NewMIFGSM(b, s)
			if o.Steps > 0 {
				a.Steps, a.Step = o.Steps, b.Eps/float64(o.Steps)
			}
			a.Step = orF(o.Step, a.Step)
			return a, nil
		}},
		{"apgd-ce", normsLInfL2, "Auto-PGD on cross-entropy, 100 iterations (Croce & Hein 2020)", func(b Budget, s uint64, o Options) (Detailed, error) {
			return newSuiteAPGD(b, s, o, nets.CrossEntropy{}), nil
		}},
		{"apgd-dlr", normsLInfL2, "Auto-PGD on the DLR loss (Croce & Hein 2020)", func(b Budget, s uint64, o Options) (Detailed, error) {
			return newSuiteAPGD(b, s, o, DLR{}), nil
		}},
		{"apgd-t", normsLInfL2, "targeted Auto-PGD on the DLR loss, 9 targets (Croce & Hein 2020)", func(b Budget, s uint64, o Options) (Detailed, error) {
			return newSuiteAPGDT(b, s, o), nil
		}},
		{"autoattack", normsLInfL2, "APGD-CE, APGD-T, then Square (L∞), each on the samples still standing (Croce & Hein 2020)", func(b Budget, s uint64, o Options) (Detailed, error) {
			list := []Attack{newSuiteAPGD(b, s, o, nets.CrossEntropy{}), newSuiteAPGDT(b, s, o)}
			if b.Norm == LInf {
				list = append(list, newSuiteSquare(b, s, o))
			}
			return AutoAttack{Budget: b, Attacks: list, Seed: s}, nil
		}},
		{"deepfool", normsLInfL2, "minimal-perturbation DeepFool, 50 iterations (Moosavi-Dezfooli et al. 2016)", func(b Budget, s uint64, o Options) (Detailed, error) {
			a := NewDeepFool(b, s)
			a.MaxIter = or(o.Steps, a.MaxIter)
			return a, nil
		}},
		{"cw", []Norm{L2}, "Carlini & Wagner L2, binary search on c, 9×1000 Adam steps (2017)", func(b Budget, s uint64, o Options) (Detailed, error) {
			a := NewCW(b, s)
			a.Steps = or(o.Steps, a.Steps)
			return a, nil
		}},
		{"ead", normsAll, "elastic-net attack, binary search on c, 9×1000 ISTA steps (Chen et al. 2018)", func(b Budget, s uint64, o Options) (Detailed, error) {
			a := NewEAD(b, s)
			a.Steps = or(o.Steps, a.Steps)
			return a, nil
		}},
		{"square", normsLInfL2, "Square attack, random square updates, 5000 queries (Andriushchenko et al. 2020)", func(b Budget, s uint64, o Options) (Detailed, error) {
			return newSuiteSquare(b, s, o), nil
		}},
		{"nes", normsLInfL2, "natural evolution strategies gradient estimates, 10 000 queries (Ilyas et al. 2018)", func(b Budget, s uint64, o Options) (Detailed, error) {
			a := NewNES(b, s)
			a.Queries = or(o.Queries, a.Queries)
			return a, nil
		}},
		{"spsa", normsLInfL2, "SPSA gradient estimates, 10 000 queries (Uesato et al. 2018)", func(b Budget, s uint64, o Options) (Detailed, error) {
			a := NewSPSA(b, s)
			a.Queries = or(o.Queries, a.Queries)
			return a, nil
		}},
		{"simba", normsLInfL2, "simple black-box attack, pixel basis, 10 000 queries (Guo et al. 2019)", func(b Budget, s uint64, o Options) (Detailed, error) {
			a := NewSimBA(b, s)
			a.Queries = or(o.Queries, a.Queries)
			return a, nil
		}},
		{"hopskipjump", normsLInfL2, "decision-based HopSkipJump, 10 000 queries (Chen et al. 2020)", func(b Budget, s uint64, o Options) (Detailed, error) {
			a := NewHopSkipJump(b, s)
			a.Queries = or(o.Queries, a.Queries)
			return a, nil
		}},
		{"genetic", []Norm{LInf}, "GenAttack genetic search, 10 000 queries (Alzantot et al. 2019)", func(b Budget, s uint64, o Options) (Detailed, error) {
			a := NewGenetic(b, s)
			a.Queries = or(o.Queries, a.Queries)
			return a, nil
		}},
		{"transfer", normsLInfL2, "PGD examples crafted on a surrogate model (--surrogate), then tried on the target", func(b Budget, s uint64, o Options) (Detailed, error) {
			if o.Surrogate == nil {
				return nil, errors.New("transfer needs a surrogate model to craft on (--surrogate FILE.onnx)")
			}
			craft := newSuitePGD(b, s, o, 1)
			// Run to the end and keep the highest-loss point: points that only
			// just cross the surrogate's boundary rarely transfer (see Transfer).
			craft.EarlyStop = false
			return NewTransfer(b, o.Surrogate, craft), nil
		}},
	}
}

func or(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func orF(v, def float64) float64 {
	if v > 0 {
		return v
	}
	return def
}

// newSuitePGD is NewPGD with the options, restarts defaulting to restarts.
func newSuitePGD(b Budget, seed uint64, o Options, restarts int) PGD {
	a := NewPGD(b, seed)
	if o.Steps > 0 {
		a.Steps = o.Steps
		if b.Norm == L2 {
			a.Step = 2.5 * b.Eps / float64(a.Steps) // NewPGD's L2 rule, for the new count
		}
	}
	a.Step = orF(o.Step, a.Step)
	a.Restarts = or(o.Restarts, restarts)
	return a
}

func newSuiteAPGD(b Budget, seed uint64, o Options, loss nets.Loss) APGD {
	a := NewAPGD(b, seed)
	a.Loss = loss
	a.Iters = or(o.Steps, a.Iters)
	a.Restarts = or(o.Restarts, a.Restarts)
	return a
}

func newSuiteAPGDT(b Budget, seed uint64, o Options) APGDT {
	a := NewAPGDT(b, seed)
	a.Iters = or(o.Steps, a.Iters)
	a.Restarts = or(o.Restarts, a.Restarts)
	return a
}

func newSuiteSquare(b Budget, seed uint64, o Options) Square {
	a := NewSquare(b, seed)
	a.Queries = or(o.Queries, 5000)
	return a
}

// Names lists the attacks New builds, in a fixed order (cheap gradient attacks,
// iterative ones, minimal-norm ones, then black-box ones).
func Names() []string {
	reg := registry()
	out := make([]string, len(reg))
	for i, e := range reg {
		out[i] = e.name
	}
	return out
}

// Describe returns a one-line description of the attack name and the norms it
// supports; ok is false for an unknown name.
func Describe(name string) (doc string, norms []Norm, ok bool) {
	for _, e := range registry() {
		if e.name == name {
			return e.doc, slices.Clone(e.norms), true
		}
	}
	return "", nil, false
}

// New builds the attack called name (one of Names) with budget b, seed and the
// options; its Name() is name, so reports key it as the user typed it. The
// attack's literature defaults apply wherever an option is zero. It fails on an
// unknown name, an invalid budget or option, a norm the attack does not support,
// or a transfer attack without a surrogate.
func New(name string, b Budget, seed uint64, opts Options) (Detailed, error) {
	return build(name, b, seed, opts, false)
}

// build is New; inDefault builds name as a member of the default suite.
func build(name string, b Budget, seed uint64, opts Options, inDefault bool) (Detailed, error) {
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("attack %s: %w", name, err)
	}
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("attack %s: %w", name, err)
	}
	for _, e := range registry() {
		if e.name != name {
			continue
		}
		if !slices.Contains(e.norms, b.Norm) {
			return nil, fmt.Errorf("attack %s: norm %v not supported (it attacks %s)", name, b.Norm, joinNorms(e.norms))
		}
		var a Detailed
		var err error
		if name == "pgd" && inDefault {
			a = newSuitePGD(b, seed, opts, defaultSuitePGDRestarts)
		} else if a, err = e.build(b, seed, opts); err != nil {
			return nil, fmt.Errorf("attack %s: %w", name, err)
		}
		if a.Name() != name {
			a = Named{Inner: a, As: name}
		}
		return a, nil
	}
	if name == Default {
		return nil, fmt.Errorf("%q is a suite of attacks (%s), not one attack: use NewSuite", Default, strings.Join(DefaultSuite(), ", "))
	}
	return nil, fmt.Errorf("unknown attack %q (known: %s)", name, strings.Join(Names(), ", "))
}

func joinNorms(ns []Norm) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.String()
	}
	return strings.Join(s, ", ")
}

// NewSuite builds the attacks of a list of names, in order, where Default stands
// for DefaultSuite (its PGD with 5 restarts unless opts.Restarts says otherwise).
// A name listed twice, directly or through Default, is built once, at its first
// place (with Default's settings if Default came first).
func NewSuite(names []string, b Budget, seed uint64, opts Options) ([]Detailed, error) {
	var out []Detailed
	seen := map[string]bool{}
	add := func(name string, inDefault bool) error {
		if seen[name] {
			return nil
		}
		seen[name] = true
		a, err := build(name, b, seed, opts, inDefault)
		if err != nil {
			return err
		}
		out = append(out, a)
		return nil
	}
	for _, name := range names {
		if name == Default {
			for _, d := range DefaultSuite() {
				if err := add(d, true); err != nil {
					return nil, fmt.Errorf("%s suite: %w", Default, err)
				}
			}
			continue
		}
		if err := add(name, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Audit prefixes the names of the attacks NewAudit builds.
const Audit = "audit-"

// NewAudit returns the attacks that audit certificates with effort k ≥ 2 (nil for
// k ≤ 1): "audit-pgd", the default suite's PGD with k× the steps and k× the
// restarts (opts.Steps or 40, opts.Restarts or 5, step opts.Step or 0.01), and
// "audit-square", Square with k× the queries (opts.Queries or 5000). They are
// meant for the samples some method certified — a verifier bug hides exactly
// where the regular suite finds nothing — and draw their random numbers from a
// seed derived from seed, so that they do not repeat the regular suite's starts.
func NewAudit(k int, b Budget, seed uint64, opts Options) ([]Detailed, error) {
	if k <= 1 {
		return nil, nil
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if b.Norm != LInf && b.Norm != L2 {
		return nil, fmt.Errorf("audit: norm %v not supported (linf, l2)", b.Norm)
	}
	s := auditSeed(seed)
	pgd := newSuitePGD(b, s, opts, defaultSuitePGDRestarts)
	pgd.Steps *= k
	if b.Norm == L2 && opts.Step == 0 {
		pgd.Step = 2.5 * b.Eps / float64(pgd.Steps)
	}
	pgd.Restarts *= k
	sq := newSuiteSquare(b, s, opts)
	sq.Queries *= k
	return []Detailed{Named{Inner: pgd, As: Audit + "pgd"}, Named{Inner: sq, As: Audit + "square"}}, nil
}

// auditSeed derives the audit's seed: SplitMix64's finaliser of seed + a constant.
func auditSeed(seed uint64) uint64 {
	z := seed + 0x6a09e667f3bcc909
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Named is an attack under another name (in reports), otherwise the same attack.
type Named struct {
	Inner Detailed
	As    string
}

// Name is As.
func (n Named) Name() string { return n.As }

// Run is Inner's.
func (n Named) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	adv, err := n.Inner.Run(ctx, m, x, labels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.As, err)
	}
	return adv, nil
}

// Attack is Inner's.
func (n Named) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	r, err := n.Inner.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.As, err)
	}
	return r, nil
}
