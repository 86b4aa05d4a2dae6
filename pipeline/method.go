package pipeline

import (
	"context"

	"github.com/certify-dev/certify/nets"
)

// Method is a certification method (IBP, CROWN, LP, branch and bound, ...) seen by
// the pipeline. Implementations live in the packages that own the algorithms
// (bounds, verify) or in thin adapters beside the command.
//
// Certify must be safe for concurrent use: the pipeline certifies several samples at
// once. A method that needs the network's structure rather than its scores
// type-asserts model (to *nets.Graph, say) and returns an error naming what it needs
// when the assertion fails. Running out of budget (time, branches) is not an error:
// it is Certificate{Certified: false} with whatever margin was proven.
//
// A method whose cost is per batch of samples rather than per sample (bound
// propagation) also implements BatchMethod, and the pipeline then calls
// CertifyBatch instead of Certify.
type Method interface {
	// Name is the key of this method in the report (certified.<name>,
	// margins.<name>, summary.seconds.<name>): short, lower case, e.g. "ibp".
	Name() string
	Certify(ctx context.Context, model nets.Classifier, q Query) (Certificate, error)
}

// Query is one sample to certify. It is a struct so that fields can be added
// (a time budget, say) without changing every method.
type Query struct {
	Index  int          // the sample's row in the data file
	X      *nets.Tensor // the sample, [1, ...input shape]; read only
	Label  int          // its true class, which the model predicts
	Region Region       // the region to certify, centred on X
	Seed   int64        // for randomised methods: SampleSeed(Config.Seed, Index)
}

// Certificate is a method's answer for one sample.
type Certificate struct {
	// Certified is true when the method proved, for every input in the region, that
	// the true class's logit exceeds every other one.
	Certified bool
	// Margin is the proven lower bound of min_{j≠y} (z_y - z_j) over the region, the
	// worst row of the robustness spec. Positive when Certified. ±Inf (nothing proven
	// / nothing to prove) is kept out of the report, whose JSON cannot hold it; NaN is
	// an error.
	Margin float64
	// Counterexample, when not nil, is an input of the region that the model
	// misclassifies, found by the method (a complete verifier's "falsified"),
	// [1, ...input shape]. The pipeline re-checks it and records the sample
	// as refuted by the method; one that does not re-check is an error.
	Counterexample *nets.Tensor
	// Unknown, when not empty, says why the method gave no answer for this sample
	// (it ran out of a budget: "timeout", "lp size", "bab domains"). Certified must
	// then be false; the sample is recorded in Sample.Unknown.
	Unknown string
	// Smoothing is the record of a SmoothedMethod (the smoothed classifier's
	// prediction and certified L2 radius), kept in Sample.Smoothing; nil otherwise.
	Smoothing *Smoothing
}

// SampleSeed derives the seed of one sample from the run's seed, so that a
// randomised method gives the same answer for a sample whatever the order or
// parallelism of the run. It is SplitMix64's finaliser (Steele, Lea, Flood 2014) of
// seed + (index+1)·φ, φ = 2^64/golden ratio.
func SampleSeed(seed int64, index int) int64 {
	z := uint64(seed) + uint64(index+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return int64(z ^ (z >> 31))
}
