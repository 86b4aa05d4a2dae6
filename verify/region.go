package verify

import (
	"fmt"
	"math"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// Region is the box of inputs {x : Lo ≤ x ≤ Hi} elementwise; Lo and Hi have the
// same shape, batch first. An L∞ ball of radius r around x clipped to the data
// domain [lo, hi] is LinfRegion(x, r, lo, hi).
type Region struct {
	Lo, Hi *nets.Tensor
}

// LinfRegion is the L∞ ball of the given radius around the batch x clipped to the
// data domain [lo, hi]: [max(x−r, lo), min(x+r, hi)] (bounds.LinfBox).
func LinfRegion(x *nets.Tensor, radius, lo, hi float64) Region {
	b := bounds.LinfBox(x, radius, lo, hi)
	return Region{Lo: b.Lo, Hi: b.Hi}
}

// check verifies that the region is a non-empty box of n samples without NaN.
func (r Region) check(n int) error {
	switch {
	case r.Lo == nil || r.Hi == nil:
		return fmt.Errorf("region without bounds")
	case !nets.SameShape(r.Lo.Shape, r.Hi.Shape) || r.Lo.Len() != r.Hi.Len():
		return fmt.Errorf("region: Lo has shape %v, Hi %v", r.Lo.Shape, r.Hi.Shape)
	case r.Lo.Rank() < 2:
		return fmt.Errorf("region: shape %v has no batch dimension", r.Lo.Shape)
	case r.Lo.Shape[0] != n:
		return fmt.Errorf("region of %d samples with %d specs", r.Lo.Shape[0], n)
	}
	for i, lo := range r.Lo.Data {
		hi := r.Hi.Data[i]
		if math.IsNaN(lo) || math.IsNaN(hi) {
			return fmt.Errorf("region: NaN bound at element %d", i)
		}
		if lo > hi {
			return fmt.Errorf("region: empty at element %d: lo %g > hi %g", i, lo, hi)
		}
	}
	return nil
}

// Row returns sample i as a region of batch 1, sharing r's data.
func (r Region) Row(i int) Region {
	return Region{Lo: r.Lo.Row(i), Hi: r.Hi.Row(i)}
}

// centres returns the midpoints (Lo+Hi)/2 of the given samples, as a batch.
func (r Region) centres(rows []int) *nets.Tensor {
	per := r.Lo.Len() / r.Lo.Shape[0]
	c := nets.NewTensor(append([]int{len(rows)}, r.Lo.Shape[1:]...)...)
	for t, i := range rows {
		lo, hi := r.Lo.Data[i*per:(i+1)*per], r.Hi.Data[i*per:(i+1)*per]
		dst := c.Data[t*per : (t+1)*per]
		for j := range dst {
			// Clamped: rounding must not put the point outside its box.
			dst[j] = min(max(lo[j]+(hi[j]-lo[j])/2, lo[j]), hi[j])
		}
	}
	return c
}
