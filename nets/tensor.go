package nets

import (
	"fmt"
	"math"
)

// Tensor is a dense, row-major (C order) array of float64 values.
//
// Every value in a graph is a Tensor, including integer-valued ones such as the
// shape input of Reshape: float64 holds every integer below 2^53 exactly, and one
// element type keeps every op, bound and verifier free of type switches.
// By convention the first dimension of a data tensor is the batch.
type Tensor struct {
	Shape []int
	Data  []float64
}

// NewTensor returns a zero tensor of the given shape.
func NewTensor(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float64, NumElements(shape))}
}

// FromData wraps data (not copied) in a tensor of the given shape.
// It panics if the lengths disagree: that is a programming error, not bad input.
func FromData(data []float64, shape ...int) *Tensor {
	if n := NumElements(shape); n != len(data) {
		panic(fmt.Sprintf("nets.FromData: shape %v needs %d values, got %d", shape, n, len(data)))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}
}

// Scalar returns a rank-0 tensor holding v.
func Scalar(v float64) *Tensor { return &Tensor{Shape: []int{}, Data: []float64{v}} }

// NumElements is the product of the dimensions (1 for a scalar).
func NumElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Len is the number of elements.
func (t *Tensor) Len() int { return len(t.Data) }

// Rank is the number of dimensions.
func (t *Tensor) Rank() int { return len(t.Shape) }

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float64(nil), t.Data...)}
}

// Reshaped returns a tensor sharing t's data with a new shape of the same size.
func (t *Tensor) Reshaped(shape ...int) *Tensor {
	return FromData(t.Data, shape...)
}

// Strides returns the row-major strides of shape.
func Strides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// SameShape reports whether a and b have identical dimensions.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Batch returns the first dimension (the batch size); 1 for a scalar.
func (t *Tensor) Batch() int {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[0]
}

// Row returns sample i of a batched tensor as a tensor sharing t's data, with the
// batch dimension kept (size 1).
func (t *Tensor) Row(i int) *Tensor {
	per := t.Len() / t.Shape[0]
	shape := append([]int{1}, t.Shape[1:]...)
	return FromData(t.Data[i*per:(i+1)*per], shape...)
}

// HasNaN reports whether any element is NaN or infinite.
func (t *Tensor) HasNaN() bool {
	for _, v := range t.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return true
		}
	}
	return false
}

// Argmax returns, for a [batch, classes] tensor, the index of the largest value per row.
func (t *Tensor) Argmax() []int {
	b := t.Shape[0]
	k := t.Len() / b
	out := make([]int, b)
	for i := 0; i < b; i++ {
		row := t.Data[i*k : (i+1)*k]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		out[i] = best
	}
	return out
}

func (t *Tensor) String() string {
	if t.Len() <= 8 {
		return fmt.Sprintf("Tensor%v%v", t.Shape, t.Data)
	}
	return fmt.Sprintf("Tensor%v[%v %v ... %v]", t.Shape, t.Data[0], t.Data[1], t.Data[t.Len()-1])
}
