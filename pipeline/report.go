package pipeline

import "slices"

// Report is the result of a run. Its JSON encoding is a contract that other tools
// read: add fields, never rename them. Pointers and omitempty keep "not run"
// distinct from zero.
type Report struct {
	// Tool is the program and its version (module version, VCS revision) that
	// wrote the report; Command its command line; Parameters every flag's value,
	// defaults included; Time when the run started (RFC 3339, UTC). With the
	// files' SHA-256 they are what `certify replay` needs to re-run it.
	Tool string `json:"tool,omitempty"`
	// Shard says which part of a sharded run this report is (absent for a whole
	// run); Merge joins the parts into the report of the whole run.
	Shard        *Shard            `json:"shard,omitempty"`
	Command      []string          `json:"command,omitempty"`
	Parameters   map[string]string `json:"parameters,omitempty"`
	Time         string            `json:"time,omitempty"`
	DataSHA256   string            `json:"data_sha256,omitempty"`
	LabelsSHA256 string            `json:"labels_sha256,omitempty"`

	Model       string     `json:"model"`        // path of the model file, as given
	ModelSHA256 string     `json:"model_sha256"` // hex SHA-256 of its bytes
	Data        string     `json:"data,omitempty"`
	Labels      string     `json:"labels,omitempty"`
	Radius      float64    `json:"radius"`
	Norm        Norm       `json:"norm"`
	Domain      [2]float64 `json:"domain"` // [lo, hi]
	Seed        int64      `json:"seed"`
	// Smoothing has the parameters of randomized smoothing, when it ran.
	Smoothing *SmoothingParams `json:"smoothing,omitempty"`
	// Methods and Attacks list the stages that ran, in the order of the tables.
	Methods []string `json:"methods"`
	Attacks []string `json:"attacks"`
	Samples []Sample `json:"samples"` // ordered by Index
	Summary Summary  `json:"summary"`
	// Sweep has one entry per radius of a run over several radii (--radius
	// 0.01,0.02,0.05), in the order given; absent for a single radius. Radius,
	// Samples and Summary above repeat its first entry, so a reader that knows
	// one radius only reads the first; the warnings, which cover every radius,
	// are in Summary.Warnings above only.
	Sweep []RadiusRun `json:"sweep,omitempty"`
}

// Shard identifies one shard of a run split over N processes: the blocks of Block
// consecutive samples (of the run's samples in data-file order) dealt round
// robin, block b to shard b mod N.
type Shard struct {
	Index   int `json:"index"`   // K, in [0, N)
	Count   int `json:"count"`   // N
	Samples int `json:"samples"` // samples of the whole run, all shards together
}

// RadiusRun is the evaluation at one radius of a sweep.
type RadiusRun struct {
	Radius  float64  `json:"radius"`
	Samples []Sample `json:"samples"`
	Summary Summary  `json:"summary"`
}

// Runs is the report's evaluations, one per radius: its Sweep, or for a single
// radius the report itself as one run.
func (r *Report) Runs() []RadiusRun {
	if len(r.Sweep) > 0 {
		return r.Sweep
	}
	return []RadiusRun{{Radius: r.Radius, Samples: r.Samples, Summary: r.Summary}}
}

// Sample is the record of one data row.
type Sample struct {
	Index     int `json:"index"` // row in the data file
	Label     int `json:"label"`
	Predicted int `json:"predicted"` // argmax of the clean logits (lowest index on ties)
	// Certified has an entry per method that ran: true when it proved the sample
	// robust. Misclassified samples are false without running the method.
	Certified map[string]bool `json:"certified,omitempty"`
	// Margins has the proven lower bound of the worst spec row per method, for the
	// samples the method ran on, when finite.
	Margins map[string]float64 `json:"margins,omitempty"`
	// Refuted names the methods that found a counterexample: an input of the
	// region the model misclassifies, re-checked by the pipeline.
	Refuted []string `json:"refuted,omitempty"`
	// Attacks has an entry per attack that ran on the sample (correctly classified
	// samples only): true when it found an input in the region that is misclassified.
	Attacks map[string]bool `json:"attacks,omitempty"`
	// Smoothing is the randomized-smoothing result (of the smoothed classifier,
	// not the base model), when that stage ran.
	Smoothing *Smoothing `json:"smoothing,omitempty"`
	// Falsified names the methods that certified this sample although an attack
	// found an adversarial example: each is a soundness bug in that method.
	Falsified []string `json:"falsified,omitempty"`
	// Unknown has the stages (methods or attacks) that gave no answer for this
	// sample, with the reason: "timeout" (--timeout per sample), "deadline" (the
	// run's overall --total-timeout), or a method's budget guard ("lp size",
	// "bab domains"). Such a method's Certified entry is false; such an attack's
	// Attacks entry is false (nothing found).
	Unknown map[string]string `json:"unknown,omitempty"`
	// Adversarial is the first adversarial example an attack found, in stage
	// order, kept when Config.KeepAdversarial (for the HTML gallery). The JSON
	// holds it only in a shard's report, for the samples that shard would show
	// in a gallery, so that the merged report's gallery has them (see JSONView).
	Adversarial *Adversarial `json:"adversarial,omitempty"`
}

// Adversarial is an input of the sample's region that the model misclassifies.
type Adversarial struct {
	Attack    string    `json:"attack"`    // the attack that found it
	Predicted int       `json:"predicted"` // the model's class for it
	X         []float64 `json:"x"`         // the input, in the sample's shape
}

// JSONView is the report as its JSON is written: without adversarial examples
// (they are for the HTML gallery, and would make a report of 1000 samples
// megabytes long), except in a shard's report, which keeps those of the samples
// the gallery could show, DefaultGallery per radius: a merged gallery picks
// among the shards' and finds them there. The report itself is not changed.
func (r *Report) JSONView() *Report {
	v := *r
	strip := func(samples []Sample) []Sample {
		out := slices.Clone(samples)
		keep := map[int]bool{}
		if r.Shard != nil {
			for _, s := range gallerySamples(out, DefaultGallery) {
				keep[s.Index] = true
			}
		}
		for i := range out {
			if !keep[out[i].Index] {
				out[i].Adversarial = nil
			}
		}
		return out
	}
	v.Samples = strip(r.Samples)
	v.Sweep = slices.Clone(r.Sweep)
	for i := range v.Sweep {
		v.Sweep[i].Samples = strip(r.Sweep[i].Samples)
	}
	return &v
}

// Correct reports whether the clean prediction is the label.
func (s *Sample) Correct() bool { return s.Predicted == s.Label }

// Smoothing is the prediction of a smoothed classifier g(x) = argmax_c P(f(x+δ) = c)
// and the L2 radius it is certified for (Cohen, Rosenfeld, Kolter 2019).
type Smoothing struct {
	Prediction int     `json:"prediction"`
	Abstain    bool    `json:"abstain"`
	Radius     float64 `json:"radius"`
	// Attack is the smoothing audit of a certified sample, when it ran.
	Attack *SmoothingAttack `json:"attack,omitempty"`
}

// Summary aggregates the samples. Accuracies are fractions of N.
type Summary struct {
	N             int     `json:"n"`
	CleanAccuracy float64 `json:"clean_accuracy"`
	// EmpiricalAccuracy: correct and no attack succeeded; present when attacks ran.
	EmpiricalAccuracy *float64 `json:"empirical_accuracy,omitempty"`
	// CertifiedAccuracy per method; present when methods ran.
	CertifiedAccuracy map[string]float64 `json:"certified_accuracy,omitempty"`
	// FalsifiedCertificates counts (sample, method) pairs where the method certified
	// the sample and an attack broke it; present when both methods and attacks ran.
	FalsifiedCertificates *int `json:"falsified_certificates,omitempty"`
	// SmoothingCurve is the certified accuracy of the smoothed classifier by L2
	// radius, and SmoothingAudit the counts of its audit; present when smoothing ran.
	SmoothingCurve []CurvePoint           `json:"smoothing_curve,omitempty"`
	SmoothingAudit *SmoothingAuditSummary `json:"smoothing_audit,omitempty"`
	// Unknown counts, per stage, the samples it gave no answer for (see
	// Sample.Unknown); absent when every stage answered for every sample.
	Unknown map[string]int `json:"unknown,omitempty"`
	// Seconds is the wall time per stage: "clean", then one per method and attack.
	Seconds map[string]float64 `json:"seconds"`
	// Warnings are reasons to distrust the empirical accuracy (the attacks' sanity
	// checks: gradients zero or masked, a randomised model, probabilities instead of
	// logits), one message each; absent when there are none. The pipeline keeps
	// what its caller puts here.
	Warnings []string `json:"warnings,omitempty"`
}
