package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// Config is one evaluation: a model, samples with labels, a threat model and the
// stages to run.
type Config struct {
	Model nets.Classifier
	// X holds the samples, [n, ...input shape], already shaped for Model.
	X *nets.Tensor
	// Labels are the true classes, one per row of X.
	Labels []int
	// Indices are the rows of X in the data file (distinct, not necessarily sorted);
	// nil means 0..n-1.
	Indices []int

	Radius float64 // >= 0
	Norm   Norm
	Domain Domain
	Seed   int64

	Methods []Method
	Attacks []Attack
	// Audit attacks run after Attacks, only on the samples that some method
	// certified: the stronger (costlier) attacks that look for a verifier bug where
	// it would hide. They are reported like Attacks (attacks.<name>, present on the
	// samples they ran on) and count for the empirical accuracy.
	Audit []Attack

	// Workers bounds how many samples (for a BatchMethod: batches) are certified at
	// once; 0 means GOMAXPROCS.
	Workers int
	// MethodBatch is how many samples a BatchMethod gets per call; 0 means
	// DefaultMethodBatch.
	MethodBatch int
	// Progress, when not nil, follows the run stage by stage.
	Progress Progress
	// SampleTimeout, when > 0, bounds the work on each sample: a method's Certify
	// call (a BatchMethod's batch gets SampleTimeout per sample in it, an attack's
	// chunk of rows the same). A sample whose time runs out is recorded as unknown
	// for that stage ("timeout"), not an error.
	SampleTimeout time.Duration
	// Deadline, when not zero, ends the run's work at that time (an overall
	// timeout): what is running is stopped, what has not started is skipped, and
	// every sample left without an answer is recorded as unknown ("deadline") for
	// its stage. The report is complete otherwise.
	Deadline time.Time
	// KeepAdversarial keeps in Sample.Adversarial the first adversarial example
	// found for each sample (for the HTML gallery).
	KeepAdversarial bool

	// Recorded in the report as given.
	ModelPath, ModelSHA256, DataPath, LabelsPath string
}

// cleanStage is the name of the clean pass in summary.seconds.
const cleanStage = "clean"

// Run evaluates cfg and returns the report. An error from the model, a method or an
// attack ends the run (wrapped with the stage and sample); a context cancellation
// returns ctx.Err().
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	smoothing, err := smoothingParams(cfg.Methods)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	n := cfg.X.Shape[0]
	indices := cfg.Indices
	if indices == nil {
		indices = make([]int, n)
		for i := range indices {
			indices[i] = i
		}
	}
	rep := &Report{
		Model: cfg.ModelPath, ModelSHA256: cfg.ModelSHA256,
		Data: cfg.DataPath, Labels: cfg.LabelsPath,
		Radius: cfg.Radius, Norm: cfg.Norm, Domain: [2]float64{cfg.Domain.Lo, cfg.Domain.Hi},
		Seed:    cfg.Seed,
		Methods: []string{}, Attacks: []string{},
		Samples: make([]Sample, n),
		Summary: Summary{N: n, Seconds: map[string]float64{}},
	}
	rep.Smoothing = smoothing
	pr := &progress{p: cfg.Progress}
	work := ctx // the stages' context: ctx, ended early by cfg.Deadline
	if !cfg.Deadline.IsZero() {
		var cancel context.CancelFunc
		work, cancel = context.WithDeadline(ctx, cfg.Deadline)
		defer cancel()
	}

	// Clean pass: one batched call; the model parallelises.
	pr.start(cleanStage, n)
	start := time.Now()
	pred := []int{}
	if n > 0 { // an empty shard has nothing to predict
		if pred, err = predict(cfg.Model, cfg.X, cfg.Labels); err != nil {
			return nil, fmt.Errorf("clean pass: %w", err)
		}
	}
	correct := 0
	for i := range rep.Samples {
		rep.Samples[i] = Sample{Index: indices[i], Label: cfg.Labels[i], Predicted: pred[i]}
		if pred[i] == cfg.Labels[i] {
			correct++
		}
	}
	rep.Summary.Seconds[cleanStage] = time.Since(start).Seconds()
	pr.add(n)
	pr.done(fmt.Sprintf("%s: %d/%d correct (%.2fs)", cleanStage, correct, n, rep.Summary.Seconds[cleanStage]))

	// todo: the rows the methods and attacks run on.
	var todo []int
	for i, s := range rep.Samples {
		if s.Correct() {
			todo = append(todo, i)
		}
	}

	for _, m := range cfg.Methods {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		rows := methodRows(m, todo, n)
		pr.start(m.Name(), len(rows))
		if err := runMethod(ctx, work, cfg, m, rep.Samples, rows, pr); err != nil {
			return nil, err
		}
		rep.Methods = append(rep.Methods, m.Name())
		rep.Summary.Seconds[m.Name()] = time.Since(start).Seconds()
		pr.done(fmt.Sprintf("%s: %d/%d certified (%.2fs)%s", m.Name(), countTrue(rep.Samples, func(s *Sample) bool { return s.Certified[m.Name()] }), n, rep.Summary.Seconds[m.Name()], unknownNote(rep.Samples, m.Name())))
	}

	// certified: the rows the audit attacks run on.
	var certified []int
	for _, row := range todo {
		for _, ok := range rep.Samples[row].Certified {
			if ok {
				certified = append(certified, row)
				break
			}
		}
	}
	stages := []struct {
		attacks []Attack
		rows    []int
	}{{cfg.Attacks, todo}, {cfg.Audit, certified}}
	for _, st := range stages {
		for _, a := range st.attacks {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			start := time.Now()
			pr.start(a.Name(), len(st.rows))
			if err := runAttack(ctx, work, cfg, a, rep.Samples, st.rows, pr); err != nil {
				return nil, err
			}
			rep.Attacks = append(rep.Attacks, a.Name())
			rep.Summary.Seconds[a.Name()] = time.Since(start).Seconds()
			pr.done(fmt.Sprintf("%s: %d/%d adversarial examples found (%.2fs)%s", a.Name(), countTrue(rep.Samples, func(s *Sample) bool { return s.Attacks[a.Name()] }), len(st.rows), rep.Summary.Seconds[a.Name()], unknownNote(rep.Samples, a.Name())))
		}
	}

	sort.SliceStable(rep.Samples, func(i, j int) bool { return rep.Samples[i].Index < rep.Samples[j].Index })
	summarize(rep)
	return rep, nil
}

// validate checks everything Run relies on, so that the stages need not.
func (cfg *Config) validate() error {
	if cfg.Model == nil {
		return fmt.Errorf("no model")
	}
	if cfg.X == nil || cfg.X.Rank() < 1 {
		return fmt.Errorf("no samples")
	}
	n := cfg.X.Shape[0]
	if len(cfg.Labels) != n {
		return fmt.Errorf("%d samples but %d labels", n, len(cfg.Labels))
	}
	if cfg.Indices != nil {
		if len(cfg.Indices) != n {
			return fmt.Errorf("%d samples but %d indices", n, len(cfg.Indices))
		}
		seen := make(map[int]bool, n)
		for _, ix := range cfg.Indices {
			if ix < 0 || seen[ix] {
				return fmt.Errorf("index %d is negative or repeated", ix)
			}
			seen[ix] = true
		}
	}
	if math.IsNaN(cfg.Radius) || math.IsInf(cfg.Radius, 0) || cfg.Radius < 0 {
		return fmt.Errorf("radius %g: want a finite value >= 0", cfg.Radius)
	}
	if _, err := ParseNorm(string(cfg.Norm)); err != nil {
		return err
	}
	if err := cfg.Domain.Validate(); err != nil {
		return err
	}
	names := map[string]bool{cleanStage: true}
	check := func(kind, name string) error {
		if name == "" {
			return fmt.Errorf("%s with an empty name", kind)
		}
		if names[name] {
			return fmt.Errorf("%s %q: name already used by another stage", kind, name)
		}
		names[name] = true
		return nil
	}
	for i, m := range cfg.Methods {
		if m == nil {
			return fmt.Errorf("method %d is nil", i)
		}
		if err := check("method", m.Name()); err != nil {
			return err
		}
	}
	for i, a := range append(append([]Attack(nil), cfg.Attacks...), cfg.Audit...) {
		if a == nil {
			return fmt.Errorf("attack %d is nil", i)
		}
		if err := check("attack", a.Name()); err != nil {
			return err
		}
	}
	return nil
}

// predict returns argmax of model's logits on x, after checking their shape, values
// and that every label is a class of the model.
func predict(model nets.Classifier, x *nets.Tensor, labels []int) ([]int, error) {
	n := x.Shape[0]
	logits, err := model.Logits(x)
	if err != nil {
		return nil, err
	}
	if logits == nil || logits.Rank() != 2 || logits.Shape[0] != n || logits.Shape[1] < 1 {
		shape := []int(nil)
		if logits != nil {
			shape = logits.Shape
		}
		return nil, fmt.Errorf("model returned logits of shape %v for %d samples; want [%d, classes]", shape, n, n)
	}
	k := logits.Shape[1]
	for i, y := range labels {
		if y < 0 || y >= k {
			return nil, fmt.Errorf("sample %d: label %d is not a class of the model (0..%d)", i, y, k-1)
		}
		for j, v := range logits.Data[i*k : (i+1)*k] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("sample %d: logit %d is %g", i, j, v)
			}
		}
	}
	return logits.Argmax(), nil
}

// runMethod certifies the rows todo of cfg.X with m, several at once (a BatchMethod
// a batch at a time), and records the answers in samples (in row order, so the
// result is the same for any number of workers). Rows not in todo are
// misclassified: certified false, no margin.
//
// ctx is the caller's context (its end is an error); work is ctx ended early by
// the run's deadline, under which the stage runs (its end makes samples unknown).
func runMethod(ctx, work context.Context, cfg Config, m Method, samples []Sample, todo []int, pr *progress) error {
	name := m.Name()
	var certs []Certificate
	var err error
	if bm, ok := m.(BatchMethod); ok {
		certs, err = certifyBatches(ctx, work, cfg, bm, samples, todo, pr)
	} else {
		certs, err = certifyEach(ctx, work, cfg, m, samples, todo, pr)
	}
	if err != nil {
		return err
	}
	for i := range samples {
		if samples[i].Certified == nil {
			samples[i].Certified = map[string]bool{}
		}
		samples[i].Certified[name] = false
	}
	for t, row := range todo {
		c := certs[t]
		if math.IsNaN(c.Margin) {
			return fmt.Errorf("method %s: sample %d: margin is NaN", name, samples[row].Index)
		}
		if c.Unknown != "" {
			if c.Certified {
				return fmt.Errorf("method %s: sample %d: certified, and unknown (%s)", name, samples[row].Index, c.Unknown)
			}
			setUnknown(&samples[row], name, c.Unknown)
		}
		samples[row].Certified[name] = c.Certified
		if c.Smoothing != nil {
			samples[row].Smoothing = c.Smoothing
		}
		if c.Counterexample != nil {
			if c.Certified {
				return fmt.Errorf("method %s: sample %d: certified, and a counterexample", name, samples[row].Index)
			}
			if err := recheck(cfg, samples, row, c.Counterexample); err != nil {
				return fmt.Errorf("method %s: sample %d: its counterexample does not re-check: %w", name, samples[row].Index, err)
			}
			samples[row].Refuted = append(samples[row].Refuted, name)
		}
		if !math.IsInf(c.Margin, 0) {
			if samples[row].Margins == nil {
				samples[row].Margins = map[string]float64{}
			}
			samples[row].Margins[name] = c.Margin
		}
	}
	return nil
}

// recheck checks that x lies in the region of row and that the model
// misclassifies it.
func recheck(cfg Config, samples []Sample, row int, x *nets.Tensor) error {
	q := query(cfg, samples, row)
	if x.Len() != q.X.Len() {
		return fmt.Errorf("%d values, the sample %d", x.Len(), q.X.Len())
	}
	if err := q.Region.check(x.Data); err != nil {
		return err
	}
	pred, err := predict(cfg.Model, nets.FromData(append([]float64(nil), x.Data...), q.X.Shape...), []int{q.Label})
	if err != nil {
		return err
	}
	if pred[0] == q.Label {
		return fmt.Errorf("the model classifies it correctly (%d)", q.Label)
	}
	return nil
}

// query is the Query of row row of cfg.X. X is a copy: a method writing into its
// sample must not change what later stages and the audit see.
func query(cfg Config, samples []Sample, row int) Query {
	x := cfg.X.Row(row).Clone()
	return Query{
		Index:  samples[row].Index,
		X:      x,
		Label:  cfg.Labels[row],
		Region: Region{Center: x, Norm: cfg.Norm, Radius: cfg.Radius, Domain: cfg.Domain},
		Seed:   SampleSeed(cfg.Seed, samples[row].Index),
	}
}

// certifyEach certifies the rows todo with m, one Certify call per sample, several
// samples at once, and returns the certificates in the order of todo. A sample
// whose time (cfg.SampleTimeout, or the run's deadline ending work) runs out gets
// an unknown certificate.
func certifyEach(ctx, work context.Context, cfg Config, m Method, samples []Sample, todo []int, pr *progress) ([]Certificate, error) {
	name := m.Name()
	certs := make([]Certificate, len(todo))
	errs := inParallel(work, len(todo), cfg.workers(), func(work context.Context, t int) error {
		var err error
		certs[t], err = bounded(ctx, work, cfg.SampleTimeout, 1, func(c context.Context) (Certificate, error) {
			return m.Certify(c, cfg.Model, query(cfg, samples, todo[t]))
		})
		pr.add(1)
		return err
	})
	// Report the error of the first failing row, or the caller's cancellation.
	for t, err := range errs {
		if err != nil && !errors.Is(err, errSkipped) {
			return nil, fmt.Errorf("method %s: sample %d: %w", name, samples[todo[t]].Index, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return certs, nil
}

// workers is Config.Workers, GOMAXPROCS when 0.
func (cfg *Config) workers() int {
	if cfg.Workers > 0 {
		return cfg.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// inParallel runs do(work, i) for i = 0..n-1 on up to workers goroutines and
// returns each one's error. The first error cancels the work context the others
// get (they then end early, with errSkipped or their own cancellation error).
func inParallel(work context.Context, n, workers int, do func(work context.Context, i int) error) []error {
	work, cancel := context.WithCancel(work)
	defer cancel()
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if errs[i] = do(work, i); errs[i] != nil {
					cancel()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// errSkipped marks work not done because an earlier error ended the stage.
var errSkipped = errors.New("skipped after an error")

// bounded runs f for size samples under work, with a time budget of size ×
// timeout (none when timeout is 0). When work or the budget ends f's run (or
// ended before it started), the result is an unknown certificate ("deadline" or
// "timeout") instead of f's error; when ctx, the caller's context, ended, it is
// ctx's error; when work was cancelled by another sample's error, errSkipped.
func bounded(ctx, work context.Context, timeout time.Duration, size int, f func(context.Context) (Certificate, error)) (Certificate, error) {
	if reason, stop := stopped(ctx, work); stop {
		return unknown(reason), budgetErr(ctx, reason)
	}
	c := work
	if timeout > 0 {
		var cancel context.CancelFunc
		c, cancel = context.WithTimeout(work, time.Duration(size)*timeout)
		defer cancel()
	}
	cert, err := f(c)
	if err == nil {
		return deadlined(ctx, work, cert), nil
	}
	if c.Err() == nil {
		return cert, err // the method's own error
	}
	if reason, stop := stopped(ctx, work); stop {
		return unknown(reason), budgetErr(ctx, reason)
	}
	return unknown("timeout"), nil // the sample's own budget
}

// unknown is the certificate of a sample whose time ran out: nothing proven (its
// margin -Inf stays out of the report), for the reason given.
func unknown(reason string) Certificate {
	return Certificate{Unknown: reason, Margin: math.Inf(-1)}
}

// deadlined is c with a method's own "timeout" (it returned what it had when its
// context ended, as bab does) read as "deadline" when the run's deadline ended
// work: the method cannot tell its sample's budget from the run's.
func deadlined(ctx, work context.Context, c Certificate) Certificate {
	if c.Unknown == "timeout" {
		if reason, _ := stopped(ctx, work); reason == "deadline" {
			c.Unknown = reason
		}
	}
	return c
}

// stopped reports whether work has ended, and why: "deadline" (the run's overall
// deadline), or "" when the caller cancelled or another sample's error did.
func stopped(ctx, work context.Context) (string, bool) {
	if work.Err() == nil {
		return "", false
	}
	if ctx.Err() == nil && errors.Is(context.Cause(work), context.DeadlineExceeded) {
		return "deadline", true
	}
	return "", true
}

// budgetErr is the error of a stopped sample: none when the deadline stopped it
// (reason "deadline"), ctx's when the caller cancelled, errSkipped otherwise.
func budgetErr(ctx context.Context, reason string) error {
	switch {
	case reason != "":
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return errSkipped
}

// setUnknown records that stage gave no answer for s, and why.
func setUnknown(s *Sample, stage, reason string) {
	if s.Unknown == nil {
		s.Unknown = map[string]string{}
	}
	s.Unknown[stage] = reason
}

// unknownNote is the progress line's note on the samples stage left unknown.
func unknownNote(samples []Sample, stage string) string {
	n := countTrue(samples, func(s *Sample) bool { return s.Unknown[stage] != "" })
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d unknown", n)
}

// runAttack runs a on the rows todo of cfg.X a block at a time (the rows whose
// indices share a Block: the chunks give the progress display something to count,
// bound what a per-sample timeout loses, and are the same in a shard as in the
// whole run; each row draws its randomness from its sample's index,
// attacks.WithRows, so the chunking does not change what the attack finds),
// re-checks every returned point against the region and the model, and records
// per sample whether the attack found an adversarial example. Rows whose time runs
// out (cfg.SampleTimeout per row of a chunk, or the run's deadline ending work)
// are recorded as unknown.
//
// Several chunks run at once (Workers of them): a chunk of Block rows is too
// small to keep many cores busy by itself, and each chunk writes its own
// samples only.
func runAttack(ctx, work context.Context, cfg Config, a Attack, samples []Sample, todo []int, pr *progress) error {
	chunks := blocks(samples, todo, Block)
	errs := inParallel(work, len(chunks), cfg.workers(), func(work context.Context, c int) error {
		err := attackRows(ctx, work, cfg, a, samples, chunks[c])
		pr.add(len(chunks[c]))
		return err
	})
	for _, err := range errs {
		if err != nil && !errors.Is(err, errSkipped) {
			return err
		}
	}
	return ctx.Err()
}

// attackRows is runAttack on one chunk.
func attackRows(ctx, work context.Context, cfg Config, a Attack, samples []Sample, todo []int) error {
	name := a.Name()
	per := cfg.X.Len() / cfg.X.Shape[0]
	shape := append([]int{len(todo)}, cfg.X.Shape[1:]...)
	x := nets.NewTensor(shape...)
	labels := make([]int, len(todo))
	ids := make([]int, len(todo))
	for t, row := range todo {
		copy(x.Data[t*per:(t+1)*per], cfg.X.Data[row*per:(row+1)*per])
		labels[t] = cfg.Labels[row]
		ids[t] = samples[row].Index
		if samples[row].Attacks == nil {
			samples[row].Attacks = map[string]bool{}
		}
		samples[row].Attacks[name] = false
	}
	var adv *nets.Tensor
	unknown, err := bounded(ctx, work, cfg.SampleTimeout, len(todo), func(c context.Context) (Certificate, error) {
		var err error
		adv, err = a.Run(attacks.WithRows(c, ids), cfg.Model, x.Clone(), append([]int(nil), labels...))
		return Certificate{}, err
	})
	if err != nil {
		return fmt.Errorf("attack %s: %w", name, err)
	}
	if unknown.Unknown != "" {
		for _, row := range todo {
			setUnknown(&samples[row], name, unknown.Unknown)
		}
		return nil
	}
	if adv == nil || !nets.SameShape(adv.Shape, x.Shape) || adv.Len() != x.Len() {
		got := []int(nil)
		if adv != nil {
			got = adv.Shape
		}
		return fmt.Errorf("attack %s: returned shape %v for a batch of shape %v", name, got, x.Shape)
	}
	for t, row := range todo {
		r := Region{Center: x.Row(t), Norm: cfg.Norm, Radius: cfg.Radius, Domain: cfg.Domain}
		if err := r.check(adv.Data[t*per : (t+1)*per]); err != nil {
			return fmt.Errorf("attack %s: sample %d: returned a point outside the region: %w", name, samples[row].Index, err)
		}
	}
	pred, err := predict(cfg.Model, adv, labels)
	if err != nil {
		return fmt.Errorf("attack %s: re-checking its points: %w", name, err)
	}
	for t, row := range todo {
		broken := pred[t] != labels[t]
		samples[row].Attacks[name] = broken
		if broken && cfg.KeepAdversarial && samples[row].Adversarial == nil {
			samples[row].Adversarial = &Adversarial{Attack: name, X: append([]float64(nil), adv.Data[t*per:(t+1)*per]...), Predicted: pred[t]}
		}
	}
	return nil
}

// countTrue counts the samples satisfying f.
func countTrue(samples []Sample, f func(*Sample) bool) int {
	c := 0
	for i := range samples {
		if f(&samples[i]) {
			c++
		}
	}
	return c
}
