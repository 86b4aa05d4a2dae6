package pipeline

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
)

// Merge joins the reports of the N shards of a run (in any order) into the report
// of the whole run: the same header, every sample in index order, the summaries
// recomputed from the samples (so the result equals the unsharded run's report,
// timings aside). Seconds are summed over the shards (compute time, not wall
// time), the time is the earliest shard's, and Warnings are left empty: they are
// computed from the model and all samples together (the caller recomputes them).
//
// Every part must carry a Shard, all with the same count and total, each index
// once; and all the same header (tool, command, parameters, model, data, threat
// model, stages, radii) — a caller that records the shard in the command or
// parameters removes it first.
func Merge(parts []*Report) (*Report, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("merge: no reports")
	}
	first := parts[0]
	if first.Shard == nil {
		return nil, fmt.Errorf("merge: report 1 is not a shard (no shard field): a whole run needs no merge")
	}
	n, total := first.Shard.Count, first.Shard.Samples
	seen := make([]bool, n)
	for i, p := range parts {
		sh := p.Shard
		switch {
		case sh == nil:
			return nil, fmt.Errorf("merge: report %d is not a shard", i+1)
		case sh.Count != n || sh.Samples != total:
			return nil, fmt.Errorf("merge: report %d is shard %d of %d of a run of %d samples, report 1 of %d of a run of %d samples", i+1, sh.Index, sh.Count, sh.Samples, n, total)
		case sh.Index < 0 || sh.Index >= n:
			return nil, fmt.Errorf("merge: report %d: shard %d of %d is out of range", i+1, sh.Index, n)
		case seen[sh.Index]:
			return nil, fmt.Errorf("merge: shard %d of %d given twice", sh.Index, n)
		}
		seen[sh.Index] = true
		if d := headerDiff(first, p); d != "" {
			return nil, fmt.Errorf("merge: report %d is not a shard of the same run as report 1: %s differs", i+1, d)
		}
	}
	var missing []int
	for k, ok := range seen {
		if !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("merge: shards %v of %d are missing", missing, n)
	}

	out := *first
	out.Shard = nil
	out.Sweep = nil
	for _, p := range parts {
		if p.Time < out.Time {
			out.Time = p.Time
		}
	}
	runs := len(first.Runs())
	merged := make([]RadiusRun, runs)
	for r := range merged {
		merged[r].Radius = first.Runs()[r].Radius
		seconds := map[string]float64{}
		var samples []Sample
		for _, p := range parts {
			run := p.Runs()[r]
			samples = append(samples, run.Samples...)
			for st, s := range run.Summary.Seconds {
				seconds[st] += s
			}
		}
		sort.SliceStable(samples, func(i, j int) bool { return samples[i].Index < samples[j].Index })
		for i := 1; i < len(samples); i++ {
			if samples[i].Index == samples[i-1].Index {
				return nil, fmt.Errorf("merge: sample %d is in two shards", samples[i].Index)
			}
		}
		if len(samples) != total {
			return nil, fmt.Errorf("merge: the shards hold %d samples at radius %g, the run %d", len(samples), merged[r].Radius, total)
		}
		view := out
		view.Radius, view.Samples = merged[r].Radius, samples
		view.Summary = Summary{Seconds: seconds}
		summarize(&view)
		merged[r].Samples, merged[r].Summary = view.Samples, view.Summary
	}
	out.Radius, out.Samples, out.Summary = merged[0].Radius, merged[0].Samples, merged[0].Summary
	if len(first.Sweep) > 0 {
		out.Sweep = merged
	}
	return &out, nil
}

// headerDiff names the first field of the run record in which a and b differ
// ("" when none): everything but the time, the shard, the samples and the
// summaries.
func headerDiff(a, b *Report) string {
	if len(a.Runs()) != len(b.Runs()) {
		return "the number of radii"
	}
	for i, ra := range a.Runs() {
		if rb := b.Runs()[i]; ra.Radius != rb.Radius {
			return "the radii"
		}
	}
	strip := func(r *Report) Report {
		c := *r
		c.Time, c.Shard, c.Samples, c.Summary, c.Sweep = "", nil, nil, Summary{}, nil
		return c
	}
	x, y := strip(a), strip(b)
	if reflect.DeepEqual(x, y) {
		return ""
	}
	if !reflect.DeepEqual(x.Parameters, y.Parameters) { // name the parameter
		keys := map[string]bool{}
		for k := range x.Parameters {
			keys[k] = true
		}
		for k := range y.Parameters {
			keys[k] = true
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if vx, vy := x.Parameters[k], y.Parameters[k]; vx != vy {
				return fmt.Sprintf("parameter %q (%q; report 1 %q)", k, vy, vx)
			}
		}
	}
	var mx, my map[string]json.RawMessage
	bx, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	if json.Unmarshal(bx, &mx) != nil || json.Unmarshal(by, &my) != nil {
		return "the header"
	}
	keys := map[string]bool{}
	for k := range mx {
		keys[k] = true
	}
	for k := range my {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		if string(mx[k]) != string(my[k]) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "the header"
	}
	return fmt.Sprintf("%q", names[0])
}
