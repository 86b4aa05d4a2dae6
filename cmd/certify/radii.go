package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// maxRadii bounds a sweep: each radius is a whole run.
const maxRadii = 200

// parseRadii parses --radius: one radius, a comma-separated list
// ("0.01,0.02,0.05"), or ranges lo:hi:step ("0:0.1:0.02" is 0, 0.02, ..., 0.1,
// hi included when the steps land on it), mixed freely; in the order given, no
// radius twice.
func parseRadii(s string) ([]float64, error) {
	var radii []float64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if strings.Contains(part, ":") {
			rs, err := parseRange(part)
			if err != nil {
				return nil, err
			}
			radii = append(radii, rs...)
		} else {
			r, err := parseRadius(part)
			if err != nil {
				return nil, err
			}
			radii = append(radii, r)
		}
		if len(radii) > maxRadii {
			return nil, fmt.Errorf("more than %d radii", maxRadii)
		}
	}
	for i, r := range radii {
		if slices.Contains(radii[:i], r) {
			return nil, fmt.Errorf("radius %g given twice", r)
		}
	}
	return radii, nil
}

func parseRadius(s string) (float64, error) {
	r, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: not a number", s)
	}
	if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
		return 0, fmt.Errorf("%g: want a finite value >= 0", r)
	}
	return r, nil
}

// parseRange expands lo:hi:step. The radii are lo + i·step rounded to 12
// significant digits, so 0:0.3:0.1 gives 0.3 and not 0.30000000000000004.
func parseRange(s string) ([]float64, error) {
	f := strings.Split(s, ":")
	if len(f) != 3 {
		return nil, fmt.Errorf("range %q: want lo:hi:step", s)
	}
	var v [3]float64
	for i, x := range f {
		r, err := parseRadius(strings.TrimSpace(x))
		if err != nil {
			return nil, fmt.Errorf("range %q: %v", s, err)
		}
		v[i] = r
	}
	lo, hi, step := v[0], v[1], v[2]
	if step <= 0 || hi < lo {
		return nil, fmt.Errorf("range %q: want lo <= hi and step > 0", s)
	}
	if (hi-lo)/step > maxRadii {
		return nil, fmt.Errorf("range %q: more than %d radii", s, maxRadii)
	}
	var out []float64
	for i := 0; ; i++ {
		r, _ := strconv.ParseFloat(strconv.FormatFloat(lo+float64(i)*step, 'g', 12, 64), 64)
		if r > hi*(1+1e-12) {
			break
		}
		if i > 0 && r == out[len(out)-1] { // a step below the rounding: no new radius will come
			break
		}
		if len(out) == maxRadii {
			return nil, fmt.Errorf("range %q: more than %d radii", s, maxRadii)
		}
		out = append(out, r)
	}
	return out, nil
}
