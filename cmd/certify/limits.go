package main

import (
	"time"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/verify"
	"github.com/spf13/pflag"
)

// limitOptions are the resource limits: what a run may spend before the samples
// left are reported unknown (never a crash).
type limitOptions struct {
	totalTimeout time.Duration // --total-timeout: the whole run (0: none)
	maxLPSize    int           // --max-lp-size: nonzeros of one LP's constraint matrix
	maxDomains   int           // --max-domains: branch-and-bound domains kept at once (0: automatic)
}

func addLimitFlags(fs *pflag.FlagSet, o *limitOptions) {
	fs.DurationVar(&o.totalTimeout, "total-timeout", 0, "time limit of the whole run: the samples left without an answer are reported unknown (0: none)")
	// The default LP size: building and loading an LP peaks at about 110 bytes
	// per nonzero (verify.BenchmarkLPBytesPerNonzero: 99 at 2M, 112 at 20M),
	// so 20M nonzeros is about 2.2 GB per LP being solved. The shipped MNIST
	// MLP's LP has 89 thousand nonzeros, the CNN's 570 thousand.
	fs.IntVar(&o.maxLPSize, "max-lp-size", verify.DefaultMaxLPNonzeros, "lp, lp-all, bab: largest LP (nonzeros of its constraint matrix, about 110 bytes each) built for one sample; a sample whose LP is larger keeps alpha-CROWN's answer, or is reported unknown (\"lp size\")")
	// 0 keeps BaB's own limit, verify.DefaultBaBQueue open domains (about
	// 17 bytes per ReLU neuron each), fewer on networks so wide that they
	// would pass 1 GiB.
	fs.IntVar(&o.maxDomains, "max-domains", 0, "bab: most branch-and-bound domains held at once per sample; a sample that needs more is reported unknown (\"bab domains\") (0: 50000, fewer on wide networks so that they stay under 1 GiB)")
}

func checkLimitFlags(o limitOptions) error {
	switch {
	case o.totalTimeout < 0:
		return cli.Usagef("--total-timeout %v: want >= 0 (0: none)", o.totalTimeout)
	case o.maxLPSize < 1:
		return cli.Usagef("--max-lp-size %d: want >= 1", o.maxLPSize)
	case o.maxDomains < 0:
		return cli.Usagef("--max-domains %d: want >= 0 (0: automatic)", o.maxDomains)
	}
	return nil
}
