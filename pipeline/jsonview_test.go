package pipeline

import (
	"encoding/json"
	"strings"
	"testing"
)

// JSONView: a whole run's JSON holds no adversarial example; a shard's holds
// those of the DefaultGallery samples its gallery would show at each radius
// (falsified, then attacked, then certified, then the rest, by index); the
// report itself keeps them all.
func TestJSONView(t *testing.T) {
	const n = 40
	samples := func(radius float64) []Sample {
		out := make([]Sample, n)
		for i := range out {
			out[i] = Sample{Index: 100 + i, Label: 1, Predicted: 1, Certified: map[string]bool{"ibp": i%5 == 0}}
			if i%3 == 0 { // attacked: 14 samples
				out[i].Attacks = map[string]bool{"pgd": true}
				out[i].Adversarial = &Adversarial{Attack: "pgd", Predicted: 2, X: []float64{radius, float64(i)}}
			}
		}
		out[7].Falsified = []string{"ibp"}
		return out
	}
	r := &Report{Methods: []string{"ibp"}, Attacks: []string{"pgd"}}
	r.Sweep = []RadiusRun{{Radius: 0.1, Samples: samples(0.1)}, {Radius: 0.2, Samples: samples(0.2)}}
	r.Radius, r.Samples = 0.1, r.Sweep[0].Samples
	kept := func(v *Report) (int, string) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(b), `"adversarial":`), string(b)
	}
	if c, _ := kept(r.JSONView()); c != 0 {
		t.Errorf("a whole run's JSON has %d adversarial examples, want none", c)
	}
	r.Shard = &Shard{Index: 0, Count: 2, Samples: 80}
	v := r.JSONView()
	// The gallery of 24 at each radius: sample 7 (falsified), the 14 attacked,
	// then certified and the rest; its adversarial examples are the 14.
	for _, run := range v.Runs() {
		c := 0
		for _, s := range run.Samples {
			if s.Adversarial != nil {
				c++
				if (s.Index-100)%3 != 0 {
					t.Errorf("radius %g: sample %d has an adversarial example it never had", run.Radius, s.Index)
				}
			}
		}
		if c != 14 {
			t.Errorf("radius %g: %d adversarial examples kept, want the 14 of the gallery", run.Radius, c)
		}
	}
	// One more attacked sample than the gallery holds: the last by index is left out.
	many := make([]Sample, 30)
	for i := range many {
		many[i] = Sample{Index: i, Attacks: map[string]bool{"pgd": true}, Adversarial: &Adversarial{Attack: "pgd", X: []float64{1}}}
	}
	r2 := &Report{Shard: &Shard{Count: 2}, Samples: many}
	v2 := r2.JSONView()
	if v2.Samples[23].Adversarial == nil || v2.Samples[24].Adversarial != nil || r2.Samples[29].Adversarial == nil {
		t.Errorf("30 attacked samples: the view keeps %v at 23, %v at 24; the report lost sample 29's: %v",
			v2.Samples[23].Adversarial != nil, v2.Samples[24].Adversarial != nil, r2.Samples[29].Adversarial == nil)
	}
}
