package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/certify-dev/certify/nets"
)

// ConformShape decides how samples stored with per-sample shape data are fed to a
// model whose per-sample input shape is model (-1: dynamic). It returns the shape
// to reshape the samples to, or an error saying why that is impossible or ambiguous.
//
// The rule: the shapes match when they have the same rank and every static model
// dimension equals the data's. Otherwise, with the same number of elements, a
// reshape keeps each sample's values in their row-major order, so it is accepted
// only when that order means the same thing on both sides:
//
//   - the shapes differ only by dimensions of size 1 ([28,28] and [1,28,28]), or
//   - one side is flat and the other a single-channel image (at most two
//     dimensions larger than 1): [784] and [1,28,28], the universal row-major
//     flattening of an image.
//
// Flat data for a multi-channel model ([3072] for [3,32,32]) is refused: it may have
// been flattened channels-first or channels-last, and guessing wrong silently
// scrambles every sample. Models with dynamic non-batch dimensions get no reshape.
func ConformShape(data, model []int) ([]int, error) {
	if len(data) == len(model) {
		match := true
		for i, d := range model {
			if d >= 0 && d != data[i] {
				match = false
			}
		}
		if match {
			return data, nil
		}
	}
	for _, d := range model {
		if d < 0 {
			return nil, fmt.Errorf("the model's input has dynamic dimensions besides the batch, so no reshape is attempted")
		}
	}
	if nets.NumElements(data) != nets.NumElements(model) {
		return nil, fmt.Errorf("a sample holds %d values, the model takes %d", nets.NumElements(data), nets.NumElements(model))
	}
	sd, sm := squeeze(data), squeeze(model)
	if nets.SameShape(sd, sm) {
		return model, nil
	}
	lo, hi := len(sd), len(sm)
	if lo > hi {
		lo, hi = hi, lo
	}
	if lo <= 1 && hi <= 2 {
		return model, nil
	}
	return nil, fmt.Errorf("reshaping would be ambiguous (channels first or last?); save the data with the model's shape")
}

// squeeze drops the dimensions of size 1.
func squeeze(shape []int) []int {
	out := []int{}
	for _, d := range shape {
		if d != 1 {
			out = append(out, d)
		}
	}
	return out
}

// FmtShape prints a shape as [1000,1,28,28], dynamic dimensions as ?.
func FmtShape(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		if d < 0 {
			parts[i] = "?"
		} else {
			parts[i] = strconv.Itoa(d)
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}
