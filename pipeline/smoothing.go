package pipeline

import "fmt"

// SmoothedMethod is a Method that certifies a smoothed classifier built on the
// model, g(x) = argmax_c P(f(x+δ) = c), δ ~ N(0, σ²I) (randomized smoothing, Cohen,
// Rosenfeld & Kolter, ICML 2019), rather than the model f itself. Its certificate
// is an L2 radius of g, whatever Config.Norm.
//
// The pipeline keeps g and f apart (design.md):
//
//   - it gives the method every sample, also those f misclassifies (g may be right
//     where f is wrong), and counts its certificates (certified.<name>,
//     summary.certified_accuracy) whatever f's clean prediction;
//   - it records each Certificate.Smoothing in Sample.Smoothing;
//   - its certificates are kept out of the falsification audit: an attack breaks
//     f, and an adversarial example of f is no evidence against a certificate of g
//     (the method audits itself by attacking g, SmoothingAttack).
//
// A run has at most one SmoothedMethod (a sample has one smoothing record).
type SmoothedMethod interface {
	Method
	// Smoothing returns the parameters, recorded in Report.Smoothing.
	Smoothing() SmoothingParams
}

// SmoothingParams are the parameters of the smoothed classifier and of its
// Monte Carlo certification (CERTIFY of Cohen et al., Section 3.2): noise level
// σ, n0 selection and n estimation samples, each answer holding with probability
// at least 1−α over the noise.
type SmoothingParams struct {
	Method string  `json:"method"` // its name in Report.Methods
	Sigma  float64 `json:"sigma"`
	N0     int     `json:"n0"`
	N      int     `json:"n"`
	Alpha  float64 `json:"alpha"`
}

// SmoothingAttack is the smoothing audit of one certified sample: an attack on
// the smoothed classifier g inside the certified L2 ball (PGD on the average
// softmax over noise draws, as SmoothAdv of Salman et al., NeurIPS 2019), then
// PREDICT at the point found, with fresh noise. The certificate claims g is the
// certified class on the whole ball, so a prediction of another class (Changed)
// contradicts it; with a sound method it happens with probability at most about
// 2α (the certificate and PREDICT each err with probability ≤ α).
type SmoothingAttack struct {
	Distance   float64 `json:"distance"`   // L2 distance of the attack point from the sample, ≤ the certified radius
	Prediction int     `json:"prediction"` // PREDICT at the attack point; -1 when abstaining
	Abstain    bool    `json:"abstain"`
	Changed    bool    `json:"changed"` // a prediction (not an abstention) other than the certified class
}

// SmoothingAuditSummary counts the smoothing audit over the run.
type SmoothingAuditSummary struct {
	Attacked  int     `json:"attacked"`  // samples attacked: those certified by smoothing
	Changed   int     `json:"changed"`   // of them, with another prediction at the attack point
	Abstained int     `json:"abstained"` // of them, with an abstention at the attack point
	Alpha     float64 `json:"alpha"`     // the certificates' α: Changed/Attacked should not exceed it by much
}

// smoothingParams returns the parameters of the run's SmoothedMethod, nil when
// there is none, and an error when there are several.
func smoothingParams(methods []Method) (*SmoothingParams, error) {
	var p *SmoothingParams
	for _, m := range methods {
		sm, ok := m.(SmoothedMethod)
		if !ok {
			continue
		}
		if p != nil {
			return nil, fmt.Errorf("two randomized-smoothing methods, %q and %q: a run has at most one", p.Method, m.Name())
		}
		sp := sm.Smoothing()
		sp.Method = m.Name()
		p = &sp
	}
	return p, nil
}

// smoothingMethod is the name of the report's SmoothedMethod, "" when none ran.
func (r *Report) smoothingMethod() string {
	if r.Smoothing == nil {
		return ""
	}
	return r.Smoothing.Method
}

// methodRows returns the rows a method runs on: every row for a SmoothedMethod,
// the correctly classified ones (todo) for the others.
func methodRows(m Method, todo []int, n int) []int {
	if _, ok := m.(SmoothedMethod); !ok {
		return todo
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	return all
}

// summarizeSmoothing fills the smoothing parts of the summary: the certified
// accuracy curve (SmoothingCurve) and the audit counts, when smoothing ran.
func summarizeSmoothing(rep *Report) {
	s := &rep.Summary
	s.SmoothingCurve, s.SmoothingAudit = nil, nil
	if rep.Smoothing == nil {
		return
	}
	s.SmoothingCurve = SmoothingCurve(rep.Samples, CurveRadii(rep.Samples))
	var a SmoothingAuditSummary
	ran := false
	for i := range rep.Samples {
		sm := rep.Samples[i].Smoothing
		if sm == nil || sm.Attack == nil {
			continue
		}
		ran = true
		a.Attacked++
		if sm.Attack.Changed {
			a.Changed++
		}
		if sm.Attack.Abstain {
			a.Abstained++
		}
	}
	if ran {
		a.Alpha = rep.Smoothing.Alpha
		s.SmoothingAudit = &a
	}
}

// tableMethods are the methods with a column in the per-sample table: all but
// the smoothing method, whose record has its own column (smoothingCell).
func (r *Report) tableMethods() []string {
	sm := r.smoothingMethod()
	if sm == "" {
		return r.Methods
	}
	var out []string
	for _, m := range r.Methods {
		if m != sm {
			out = append(out, m)
		}
	}
	return out
}

// smoothingSummaryRows are the summary-table rows of the smoothing audit.
func (r *Report) smoothingSummaryRows() [][]string {
	a := r.Summary.SmoothingAudit
	if a == nil {
		return nil
	}
	v := fmt.Sprintf("%d of %d certified", a.Changed, a.Attacked)
	if a.Attacked > 0 {
		v += fmt.Sprintf(" (%.2f%%; α = %g)", 100*float64(a.Changed)/float64(a.Attacked), a.Alpha)
	}
	return [][]string{
		{"smoothing audit: prediction changed", v},
		{"smoothing audit: abstained", fmt.Sprintf("%d of %d", a.Abstained, a.Attacked)},
	}
}
