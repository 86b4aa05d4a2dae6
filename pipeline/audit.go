package pipeline

// summarize fills rep.Summary (except Seconds) and each sample's Falsified list from
// the per-sample records.
//
// The soundness audit: a method's certificate for a sample claims that no input in
// the region is misclassified; an attack's adversarial example for that sample is an
// input in the region (re-checked by the pipeline) that is misclassified. Both
// cannot be true, so every such pair is a falsified certificate: a bug in the method
// (or in the model's forward pass the method reasons about), never an attack bug.
// A SmoothedMethod certifies the smoothed classifier, not the model: its
// certificates count whatever the model's clean prediction and are not audited by
// the attacks on the model (summarizeSmoothing counts its own audit).
func summarize(rep *Report) {
	s := &rep.Summary
	n := float64(max(len(rep.Samples), 1)) // an empty shard's accuracies are 0
	correct, robust, falsified := 0, 0, 0
	certified := make(map[string]int, len(rep.Methods))
	smoothing := rep.smoothingMethod() // certifies g, not the model: see SmoothedMethod
	var unknown map[string]int
	for i := range rep.Samples {
		smp := &rep.Samples[i]
		smp.Falsified = nil
		for stage := range smp.Unknown {
			if unknown == nil {
				unknown = map[string]int{}
			}
			unknown[stage]++
		}
		if smoothing != "" && smp.Certified[smoothing] {
			certified[smoothing]++ // whatever the model's clean prediction
		}
		if !smp.Correct() {
			continue
		}
		correct++
		attacked := false
		for _, a := range rep.Attacks {
			attacked = attacked || smp.Attacks[a]
		}
		if !attacked {
			robust++
		}
		for _, m := range rep.Methods {
			if m == smoothing || !smp.Certified[m] {
				continue
			}
			certified[m]++
			if attacked {
				smp.Falsified = append(smp.Falsified, m)
				falsified++
			}
		}
	}
	s.N = len(rep.Samples)
	s.Unknown = unknown
	s.CleanAccuracy = float64(correct) / n
	s.EmpiricalAccuracy, s.CertifiedAccuracy, s.FalsifiedCertificates = nil, nil, nil
	if len(rep.Attacks) > 0 {
		acc := float64(robust) / n
		s.EmpiricalAccuracy = &acc
	}
	if len(rep.Methods) > 0 {
		s.CertifiedAccuracy = make(map[string]float64, len(rep.Methods))
		for _, m := range rep.Methods {
			s.CertifiedAccuracy[m] = float64(certified[m]) / n
		}
	}
	if len(rep.Methods) > 0 && len(rep.Attacks) > 0 {
		s.FalsifiedCertificates = &falsified
	}
	summarizeSmoothing(rep)
}
