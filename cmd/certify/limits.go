package main

import (
	"time"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/spf13/pflag"
)

// limitOptions are the resource limits: what a run may spend before the samples
// left are reported unknown (never a crash).
type limitOptions struct {
	totalTimeout time.Duration // --total-timeout: the whole run (0: none)
	maxLPSize    int           // --max-lp-size: nonzeros of one LP's constraint matrix
	maxDomains   int           // --max-domains: branch-and-bound domains kept at once
}

func addLimitFlags(fs *pflag.FlagSet, o *limitOptions) {
	fs.DurationVar(&o.totalTimeout, "total-timeout", 0, "time limit of the whole run: the samples left without an answer are reported unknown (0: none)")
	fs.IntVar(&o.maxLPSize, "max-lp-size", 20_000_000, "lp, lp-all: largest LP (nonzeros of its constraint matrix) built for one sample; larger ones are reported unknown")
	fs.IntVar(&o.maxDomains, "max-domains", 1_000_000, "bab: most branch-and-bound domains kept at once; a sample that needs more is reported unknown")
}

func checkLimitFlags(o limitOptions) error {
	switch {
	case o.totalTimeout < 0:
		return cli.Usagef("--total-timeout %v: want >= 0 (0: none)", o.totalTimeout)
	case o.maxLPSize < 1:
		return cli.Usagef("--max-lp-size %d: want >= 1", o.maxLPSize)
	case o.maxDomains < 1:
		return cli.Usagef("--max-domains %d: want >= 1", o.maxDomains)
	}
	return nil
}
