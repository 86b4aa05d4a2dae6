package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/pipeline"
	"github.com/certify-dev/certify/verify"
)

// stageOptions is what a certification method or attack is built from.
type stageOptions struct {
	Radius float64
	Norm   pipeline.Norm
	Domain pipeline.Domain
	Seed   int64
	// SoundFP makes the bound methods account for float64 rounding.
	SoundFP bool
	// Timeout limits each sample's branch and bound (0: none).
	Timeout time.Duration
	// Smoothing are the flags of randomized smoothing.
	Smoothing smoothingOptions
	// Limits are the resource limits (--max-lp-size, --max-domains, ...).
	Limits limitOptions
}

// methodSet maps the names --methods accepts to their constructors.
type methodSet map[string]func(stageOptions) pipeline.Method

// methods lists the certification methods --methods accepts, by name. A function,
// not a package variable, so nothing global can be mutated; tests add fakes to
// their own copy and call runWith.
func methods() methodSet {
	return methodSet{
		"ibp": func(o stageOptions) pipeline.Method {
			return verifierMethod{verify.IBP{SoundFP: o.SoundFP}}
		},
		"crown": func(o stageOptions) pipeline.Method {
			return verifierMethod{verify.CROWN{SoundFP: o.SoundFP}}
		},
		"alpha-crown": func(o stageOptions) pipeline.Method {
			return verifierMethod{verify.AlphaCROWN{SoundFP: o.SoundFP}}
		},
		"lp": func(o stageOptions) pipeline.Method {
			return verifierMethod{verify.LP{SoundFP: o.SoundFP, MaxNonzeros: o.Limits.maxLPSize}}
		},
		"lp-all": func(o stageOptions) pipeline.Method {
			return verifierMethod{verify.LP{SoundFP: o.SoundFP, All: true, MaxNonzeros: o.Limits.maxLPSize}}
		},
		"bab": func(o stageOptions) pipeline.Method {
			return verifierMethod{verify.BaB{SoundFP: o.SoundFP, Timeout: o.Timeout, Seed: uint64(o.Seed),
				MaxDomains: o.Limits.maxDomains, MaxLPNonzeros: o.Limits.maxLPSize}}
		},
		smoothingName: func(o stageOptions) pipeline.Method {
			return smoothingMethod{o: o.Smoothing, domain: o.Domain}
		},
	}
}

// attackNames lists the values --attacks accepts besides none: every attack of
// package attacks, and its default suite.
func attackNames() map[string]bool {
	known := map[string]bool{attacks.Default: true}
	for _, name := range attacks.Names() {
		known[name] = true
	}
	return known
}

// none is the --methods / --attacks value that selects no stage.
const none = "none"

// parseStages splits a comma list of stage names, checking each against known.
// "none" alone selects nothing. kind ("method", "attack") is used in errors, which
// list the valid names.
func parseStages[T any](kind, list string, known map[string]T) ([]string, error) {
	valid := stageNames(known)
	if strings.TrimSpace(list) == none {
		return nil, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
			return nil, fmt.Errorf("empty %s name in %q (valid: %s)", kind, list, strings.Join(valid, ", "))
		case name == none:
			return nil, fmt.Errorf("%q cannot be combined with other %ss", none, kind)
		case seen[name]:
			return nil, fmt.Errorf("%s %q listed twice", kind, name)
		}
		if _, ok := known[name]; !ok {
			return nil, fmt.Errorf("unknown %s %q (valid: %s)", kind, name, strings.Join(valid, ", "))
		}
		seen[name] = true
		out = append(out, name)
	}
	return out, nil
}

// stageNames lists the values a stage flag accepts: none, then the known names in
// order.
func stageNames[T any](known map[string]T) []string {
	names := make([]string, 0, len(known))
	for name := range known {
		names = append(names, name)
	}
	sort.Strings(names)
	return append([]string{none}, names...)
}
