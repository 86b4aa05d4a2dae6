package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/defenses"
	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/nets"
)

// settings are the evaluation parameters shared by every member.
type settings struct {
	Seed uint64
	// PGDSteps is the number of steps of PGD and PGD-CW; the step is
	// α = 2.5·ε/PGDSteps (so a straight run crosses the ball 2.5 times: the rule
	// of Madry et al.'s robustness library), from one uniform random start.
	PGDSteps int
	// AdaptiveSteps and AdaptiveRestarts are those of the adaptive PGD, step
	// 2.5·ε/AdaptiveSteps.
	AdaptiveSteps, AdaptiveRestarts int
	// SquareQueries is the Square attack's query budget per image (0: no Square).
	SquareQueries int
	// LPCount is the number of images (the first ones) LP runs on; 0: no LP.
	LPCount int
	// SmoothCount is the number of images smoothing certifies; 0: no smoothing.
	SmoothCount int
	// Sigma, SmoothN0, SmoothN and SmoothAlpha are CERTIFY's σ, n0, n and α.
	Sigma       float64
	SmoothN0    int
	SmoothN     int
	SmoothAlpha float64
	// Logf prints a progress line on stderr.
	Logf func(format string, args ...any)
}

// evalChunk is the number of rows per Logits call of the evaluator's own passes
// (clean and adversarial predictions): it bounds memory, and the models split
// each call across the cores themselves.
const evalChunk = 250

// predict returns m's argmax per row of x and the number of logit columns.
func predict(m nets.Classifier, x *nets.Tensor) ([]int, int, error) {
	n := x.Shape[0]
	per := x.Len() / n
	pred := make([]int, 0, n)
	cols := 0
	for lo := 0; lo < n; lo += evalChunk {
		hi := min(lo+evalChunk, n)
		xc := nets.FromData(x.Data[lo*per:hi*per], append([]int{hi - lo}, x.Shape[1:]...)...)
		z, err := m.Logits(xc)
		if err != nil {
			return nil, 0, fmt.Errorf("rows %d–%d: %w", lo, hi-1, err)
		}
		if z == nil || z.Rank() != 2 || z.Shape[0] != hi-lo || z.Shape[1] < 2 {
			return nil, 0, fmt.Errorf("rows %d–%d: logits of shape %v, want [%d, classes]", lo, hi-1, shapeOf(z), hi-lo)
		}
		cols = z.Shape[1]
		pred = append(pred, z.Argmax()...)
	}
	return pred, cols, nil
}

func shapeOf(t *nets.Tensor) []int {
	if t == nil {
		return nil
	}
	return t.Shape
}

// judged is what one attack did to a member, image by image.
type judged struct {
	broken   []bool // the point is classified as neither the label nor rejected
	rejected []bool // the point is rejected
}

// attackRun is one attack of a row: its key, what it attacks (the model, or an
// adaptive target) and whether it needs gradients.
type attackRun struct {
	key    string
	attack detailed
	target nets.Classifier
	grad   bool
	// refine, when set, is a second stage run from the attack's points
	// (defenses.AdaptiveTarget.Refine).
	refine func(ctx context.Context, b attacks.Budget, x, adv *nets.Tensor, labels []int) (*nets.Tensor, error)
}

// detailed is an attack returning its re-checked result (attacks.Detailed
// without the Name and Run it does not need).
type detailed interface {
	Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*attacks.Result, error)
}

// memberEval holds what is shared by the rows of one member: the model, the data in
// the model's shape and the clean predictions.
type memberEval struct {
	m       Member
	model   defenses.Model
	x       *nets.Tensor
	labels  []int
	pred    []int
	classes int
	reject  int // reject column, -1 for a model without one
	correct []bool
	s       settings
	smooth  []smoothResult // randomized smoothing certificates, computed once
}

// newMemberEval conforms x to the model's input shape, runs the clean pass and
// checks the labels against the classes.
func newMemberEval(m Member, model defenses.Model, x *nets.Tensor, labels []int, s settings) (*memberEval, error) {
	shape, err := model.InputShape()
	if err != nil {
		return nil, fmt.Errorf("input shape: %w", err)
	}
	conf, err := cli.ConformShape(x.Shape[1:], shape)
	if err != nil {
		return nil, fmt.Errorf("data of shape %v for a model taking %v: %w", x.Shape[1:], shape, err)
	}
	x = nets.FromData(x.Data, append([]int{x.Shape[0]}, conf...)...)
	pred, cols, err := predict(model, x)
	if err != nil {
		return nil, fmt.Errorf("clean pass: %w", err)
	}
	e := &memberEval{m: m, model: model, x: x, labels: labels, pred: pred, classes: cols, reject: -1, s: s}
	if r, ok := model.(defenses.Rejecting); ok {
		e.reject = r.Reject()
		if e.reject < 0 || e.reject >= cols {
			return nil, fmt.Errorf("reject column %d outside the %d logit columns", e.reject, cols)
		}
		e.classes = cols - 1
	}
	for i, y := range labels {
		if y >= e.classes || y == e.reject {
			return nil, fmt.Errorf("label %d of image %d: the model has %d classes", y, i, e.classes)
		}
	}
	e.correct = make([]bool, len(labels))
	for i, p := range pred {
		e.correct[i] = p == labels[i]
	}
	return e, nil
}

// judgeDraws is how many fresh draws of a randomised model judge each point.
const judgeDraws = 5

// judgeSeed is the first seed of those draws: unrelated to the seeds in the specs.
const judgeSeed = 0x6a7564676573

// judge classifies the attack's points with the member's model itself. A
// randomised model (defenses.Randomised) judges each point with judgeDraws fresh
// draws, independent of the ones the attack saw, and the point counts as broken
// (rejected) when a majority of the draws is fooled (rejects): an attack that
// stopped on one lucky draw has not broken the defense.
func (e *memberEval) judge(adv *nets.Tensor) (judged, error) {
	models := []nets.Classifier{e.model}
	if r, ok := e.model.(defenses.Randomised); ok {
		models = models[:0]
		for k := uint64(0); k < judgeDraws; k++ {
			models = append(models, r.Reseeded(judgeSeed+k))
		}
	}
	n := adv.Shape[0]
	broken, rejected := make([]int, n), make([]int, n)
	for _, m := range models {
		pred, _, err := predict(m, adv)
		if err != nil {
			return judged{}, err
		}
		for i, p := range pred {
			switch {
			case p == e.reject:
				rejected[i]++
			case p != e.labels[i]:
				broken[i]++
			}
		}
	}
	j := judged{broken: make([]bool, n), rejected: make([]bool, n)}
	for i := range broken {
		j.broken[i] = 2*broken[i] > len(models)
		j.rejected[i] = 2*rejected[i] > len(models)
	}
	return j, nil
}

// attackRuns lists the attacks of a row at budget b: FGSM, PGD and PGD-CW on the
// model, Square when the member asks for it, and the adaptive PGD when the model
// names an adaptive target.
func (e *memberEval) attackRuns(b attacks.Budget) ([]attackRun, string, error) {
	s := e.s
	pgd := attacks.NewPGD(b, s.Seed)
	pgd.Steps, pgd.Step = s.PGDSteps, 2.5*b.Eps/float64(s.PGDSteps)
	cw := pgd
	cw.Loss = nets.Margin{}
	runs := []attackRun{
		{key: attackFGSM, attack: attacks.NewFGSM(b, s.Seed), target: e.model, grad: true},
		{key: attackPGD, attack: pgd, target: e.model, grad: true},
		{key: attackPGDCW, attack: cw, target: e.model, grad: true},
	}
	if e.m.Square && s.SquareQueries > 0 {
		sq := attacks.NewSquare(b, s.Seed)
		sq.Queries = s.SquareQueries
		runs = append(runs, attackRun{key: attackSquare, attack: sq, target: e.model})
	}
	name := ""
	if a, ok := e.model.(defenses.Adaptive); ok {
		t, err := a.AdaptiveTarget()
		if err != nil {
			return nil, "", fmt.Errorf("adaptive target: %w", err)
		}
		if t.Model == nil {
			return nil, "", fmt.Errorf("adaptive target %q has no model", t.Name)
		}
		ad := attacks.NewPGD(b, s.Seed)
		ad.Steps, ad.Step, ad.Restarts = s.AdaptiveSteps, 2.5*b.Eps/float64(s.AdaptiveSteps), s.AdaptiveRestarts
		// Run every step and keep the highest-loss point: stopping at the first
		// point the target misclassifies would stop on a rejected point (a
		// detector's) or on one lucky draw (a random model's).
		ad.EarlyStop = false
		if t.Loss != nil {
			ad.Loss = t.Loss
		}
		name = t.Name
		if name == "" {
			name = "adaptive"
		}
		runs = append(runs, attackRun{key: attackAdaptive, attack: ad, target: t.Model, grad: true, refine: t.Refine})
	}
	return runs, name, nil
}

// row evaluates the member at one radius.
func (e *memberEval) row(ctx context.Context, eps float64) (Row, error) {
	norm, err := attacks.ParseNorm(e.m.Norm)
	if err != nil {
		return Row{}, err
	}
	n := len(e.labels)
	r := Row{Defense: e.m.Defense, Model: e.m.File, Norm: e.m.Norm, Epsilon: eps, N: n,
		Attacks: map[string]float64{}, Certified: map[string]float64{}}
	clean := fraction(e.correct)
	r.Clean = &clean
	var notes []string
	if e.reject >= 0 {
		r.Rejected = map[string]float64{"clean": fractionOf(e.pred, func(p int) bool { return p == e.reject })}
	}
	b := attacks.Budget{Norm: norm, Eps: eps, Lo: 0, Hi: 1}
	runs, adaptiveName, err := e.attackRuns(b)
	if err != nil {
		return Row{}, err
	}
	robustAll := append([]bool(nil), e.correct...)
	ran := 0
	var na []string
	for _, a := range runs {
		if _, ok := a.target.(nets.Differentiable); a.grad && !ok {
			na = append(na, a.key)
			continue
		}
		start := time.Now()
		res, err := a.attack.Attack(ctx, a.target, e.x, e.labels)
		if err != nil {
			return Row{}, fmt.Errorf("ε = %g, %s: %w", eps, a.key, err)
		}
		if a.refine != nil {
			if err := inBudget(b, e.x, res.Adv); err != nil {
				return Row{}, fmt.Errorf("ε = %g, %s: %w", eps, a.key, err)
			}
			if res.Adv, err = a.refine(ctx, b, e.x, res.Adv, e.labels); err != nil {
				return Row{}, fmt.Errorf("ε = %g, %s (second stage): %w", eps, a.key, err)
			}
		}
		if err := inBudget(b, e.x, res.Adv); err != nil {
			return Row{}, fmt.Errorf("ε = %g, %s: %w", eps, a.key, err)
		}
		j, err := e.judge(res.Adv)
		if err != nil {
			return Row{}, fmt.Errorf("ε = %g, %s: judging the attack's points: %w", eps, a.key, err)
		}
		robust := make([]bool, n)
		for i := range robust {
			robust[i] = e.correct[i] && !j.broken[i]
			robustAll[i] = robustAll[i] && robust[i]
		}
		r.Attacks[a.key] = fraction(robust)
		if a.key == attackAdaptive {
			r.Adaptive = adaptiveName
		}
		if e.reject >= 0 {
			r.Rejected[a.key] = fraction(j.rejected)
		}
		ran++
		e.s.Logf("  %s ε=%g %s: %.1f%% [%.1fs]", e.m.Defense, eps, a.key, 100*r.Attacks[a.key], time.Since(start).Seconds())
	}
	if ran > 0 {
		r.Attacks[attackAll] = fraction(robustAll)
	}
	if len(na) > 0 {
		notes = append(notes, fmt.Sprintf("no gradients (%T): %s n/a", e.model, strings.Join(na, ", ")))
	}
	certNotes, err := e.certify(ctx, &r, norm, robustAll)
	if err != nil {
		return Row{}, fmt.Errorf("ε = %g: %w", eps, err)
	}
	notes = append(notes, certNotes...)
	r.Notes = strings.Join(notes, "; ")
	return r, nil
}

// inBudget re-checks every point an attack returned: inside the budget's ball
// around its image and inside the domain. A point outside is a bug of the
// attack (or of an adaptive target), never a result.
func inBudget(b attacks.Budget, x, adv *nets.Tensor) error {
	if adv == nil || adv.Len() != x.Len() {
		return fmt.Errorf("attack returned %v values for an input of shape %v", shapeOf(adv), x.Shape)
	}
	n := x.Shape[0]
	per := x.Len() / n
	for i := 0; i < n; i++ {
		a, o := adv.Data[i*per:(i+1)*per], x.Data[i*per:(i+1)*per]
		if !b.Contains(a, o) {
			return fmt.Errorf("image %d: the attack's point is outside the %v ball of radius %g (distance %g) or the domain [%g,%g]",
				i, b.Norm, b.Eps, attacks.Distance(b.Norm, a, o), b.Lo, b.Hi)
		}
	}
	return nil
}

func fraction(v []bool) float64 {
	if len(v) == 0 {
		return 0
	}
	k := 0
	for _, b := range v {
		if b {
			k++
		}
	}
	return float64(k) / float64(len(v))
}

func fractionOf(v []int, f func(int) bool) float64 {
	k := 0
	for _, p := range v {
		if f(p) {
			k++
		}
	}
	return float64(k) / float64(len(v))
}
