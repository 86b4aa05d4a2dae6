package pipeline

import (
	"fmt"
	"math"
	"strings"

	"github.com/certify-dev/certify/nets"
)

// Norm names the threat model's norm.
type Norm string

const (
	// LInf is the max norm: every input coordinate moves by at most the radius.
	LInf Norm = "linf"
	// L2 is the Euclidean norm.
	L2 Norm = "l2"
)

// ParseNorm accepts "linf" or "l2" (case-insensitive).
func ParseNorm(s string) (Norm, error) {
	switch n := Norm(strings.ToLower(s)); n {
	case LInf, L2:
		return n, nil
	}
	return "", fmt.Errorf("unknown norm %q (want %s or %s)", s, LInf, L2)
}

// Domain is the box [Lo, Hi] every input coordinate lies in (the data domain,
// [0,1] for images scaled to unit range). Regions are clipped to it.
type Domain struct{ Lo, Hi float64 }

// Validate checks Lo < Hi, both finite.
func (d Domain) Validate() error {
	if math.IsNaN(d.Lo) || math.IsNaN(d.Hi) || math.IsInf(d.Lo, 0) || math.IsInf(d.Hi, 0) {
		return fmt.Errorf("domain [%g,%g]: bounds must be finite", d.Lo, d.Hi)
	}
	if !(d.Lo < d.Hi) {
		return fmt.Errorf("domain [%g,%g]: lo must be below hi", d.Lo, d.Hi)
	}
	return nil
}

// Region is the perturbation set around one sample:
// {x' : ||x' - Center||_Norm <= Radius, Domain.Lo <= x'_i <= Domain.Hi}.
type Region struct {
	Center *nets.Tensor // [1, ...input shape]
	Norm   Norm
	Radius float64
	Domain Domain
}

// Box returns elementwise bounds lo_i = max(c_i - r, Domain.Lo) and
// hi_i = min(c_i + r, Domain.Hi), shaped like Center. For LInf the box is the region
// itself; for L2 it is the smallest box containing the region, so a method that
// proves a property on the box has proved it on the region.
func (r Region) Box() (lo, hi *nets.Tensor) {
	lo = nets.NewTensor(r.Center.Shape...)
	hi = nets.NewTensor(r.Center.Shape...)
	for i, c := range r.Center.Data {
		lo.Data[i] = math.Max(c-r.Radius, r.Domain.Lo)
		hi.Data[i] = math.Min(c+r.Radius, r.Domain.Hi)
	}
	return lo, hi
}

// Distance returns ||x - c||_norm for two equally long vectors.
func Distance(norm Norm, x, c []float64) float64 {
	d := 0.0
	for i, v := range x {
		diff := math.Abs(v - c[i])
		if norm == L2 {
			d += diff * diff
		} else {
			d = math.Max(d, diff)
		}
	}
	if norm == L2 {
		return math.Sqrt(d)
	}
	return d
}

// regionTol is the slack allowed when checking that a returned point lies in a
// region: attacks compute projections in floating point, whose rounding may put a
// point a few ulps outside (an L2 projection x + r·δ/||δ|| has ||·|| = r(1±ε)).
const regionTol = 1e-9

// check returns nil when x (a vector of Center's length) lies in the region, up to
// regionTol, and otherwise says which constraint it violates and by how much.
func (r Region) check(x []float64) error {
	if len(x) != r.Center.Len() {
		return fmt.Errorf("point has %d values, the sample %d", len(x), r.Center.Len())
	}
	for i, v := range x {
		if math.IsNaN(v) || v < r.Domain.Lo-regionTol || v > r.Domain.Hi+regionTol {
			return fmt.Errorf("value %g at element %d is outside the domain [%g,%g]", v, i, r.Domain.Lo, r.Domain.Hi)
		}
	}
	if d := Distance(r.Norm, x, r.Center.Data); d > r.Radius*(1+regionTol)+regionTol {
		return fmt.Errorf("%s distance %g exceeds the radius %g", r.Norm, d, r.Radius)
	}
	return nil
}
