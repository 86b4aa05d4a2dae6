package pipeline

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// RunSweep evaluates the configuration configAt(r) at every radius r of radii, in
// the order given (configAt builds the stages for r: an attack's budget is part of
// it; the returned Config.Radius is set to r), and returns one report: Sweep holds
// every radius's samples and summary, and the report's own Radius, Samples and
// Summary are the first radius's (so a reader that knows one radius reads the
// first). With a single radius it is Run at that radius, without a Sweep.
//
// Each radius is a full run (clean pass included, which is cheap): a method's or
// an attack's answer at one radius never depends on another's, so a sweep's entry
// equals the single run at that radius.
func RunSweep(ctx context.Context, radii []float64, configAt func(radius float64) (Config, error)) (*Report, error) {
	if err := checkRadii(radii); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	var rep *Report
	for _, r := range radii {
		c, err := configAt(r)
		if err != nil {
			return nil, err
		}
		c.Radius = r
		if len(radii) == 1 {
			return Run(ctx, c)
		}
		if c.Progress != nil {
			c.Progress = prefixProgress{c.Progress, "radius " + strconv.FormatFloat(r, 'g', -1, 64) + ": "}
		}
		one, err := Run(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("radius %g: %w", r, err)
		}
		if rep == nil {
			rep = one
		}
		rep.Sweep = append(rep.Sweep, RadiusRun{Radius: r, Samples: one.Samples, Summary: one.Summary})
	}
	return rep, nil
}

// checkRadii checks a sweep's radii: at least one, each finite and >= 0, no
// repeats.
func checkRadii(radii []float64) error {
	if len(radii) == 0 {
		return fmt.Errorf("no radius")
	}
	for i, r := range radii {
		if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
			return fmt.Errorf("radius %g: want a finite value >= 0", r)
		}
		if slices.Contains(radii[:i], r) {
			return fmt.Errorf("radius %g given twice", r)
		}
	}
	return nil
}

// at is the report seen at one run of its sweep: the same run record, with that
// run's radius, samples and summary, and no sweep.
func (r *Report) at(run RadiusRun) *Report {
	v := *r
	v.Radius, v.Samples, v.Summary, v.Sweep = run.Radius, run.Samples, run.Summary, nil
	return &v
}

// prefixProgress names a sweep's stages by radius.
type prefixProgress struct {
	p      Progress
	prefix string
}

func (p prefixProgress) Start(stage string, total int) { p.p.Start(p.prefix+stage, total) }
func (p prefixProgress) Add(n int)                     { p.p.Add(n) }
func (p prefixProgress) Done(summary string)           { p.p.Done(p.prefix + summary) }
