package nets

import "fmt"

// Window2D is the resolved geometry of a 2-D sliding window (Conv, MaxPool,
// AveragePool) over an InH×InW input: output pixel (oh, ow) reads the taps
//
//	ih = oh·StrideH − PadTop  + i·DilH,  i = 0 … KH−1
//	iw = ow·StrideW − PadLeft + j·DilW,  j = 0 … KW−1
//
// and a tap outside [0,InH)×[0,InW) lies in the padding. The ONNX operator specs
// (Conv, MaxPool, AveragePool, https://onnx.ai/onnx/operators/) define the output
// size; Window2D fixes it once per call so that forward, backward and bound
// propagation agree.
type Window2D struct {
	InH, InW                             int
	KH, KW                               int
	StrideH, StrideW                     int
	DilH, DilW                           int
	PadTop, PadLeft, PadBottom, PadRight int
	OutH, OutW                           int
}

// Auto-padding modes of the ONNX auto_pad attribute.
const (
	AutoPadNotSet    = "NOTSET"
	AutoPadValid     = "VALID"
	AutoPadSameUpper = "SAME_UPPER"
	AutoPadSameLower = "SAME_LOWER"
)

// windowSpec holds the attributes shared by Conv and the pools, checked once at import.
type windowSpec struct {
	kernel    []int // nil: not given (Conv takes it from the weights)
	strides   []int
	pads      []int // [top, left, bottom, right]: ONNX's begins then ends
	dilations []int
	autoPad   string
}

// maxWindowAttr bounds kernel, stride, pad and dilation values, so that size
// arithmetic on them cannot overflow.
const maxWindowAttr = 1 << 30

// readWindowSpec reads kernel_shape, strides, pads, dilations and auto_pad, with the
// ONNX defaults (unit strides and dilations, zero pads, NOTSET). Only 2-D windows are
// supported: a list of another length is an unsupported-rank error.
func readWindowSpec(a Attrs) (windowSpec, error) {
	s := windowSpec{
		kernel:    a.IntList("kernel_shape", nil),
		strides:   a.IntList("strides", nil),
		pads:      a.IntList("pads", nil),
		dilations: a.IntList("dilations", nil),
		autoPad:   a.String("auto_pad", AutoPadNotSet),
	}
	s, err := s.complete()
	if err != nil {
		return s, err
	}
	if s.autoPad != AutoPadNotSet {
		for _, p := range s.pads {
			if p != 0 {
				return s, fmt.Errorf("auto_pad %s together with explicit pads %v", s.autoPad, s.pads)
			}
		}
	}
	return s, nil
}

// complete fills absent lists with the ONNX defaults and checks the rest, for op
// values built in code rather than by the constructors.
func (s windowSpec) complete() (windowSpec, error) {
	fill := func(name string, v []int, n, def, min int) ([]int, error) {
		if v == nil {
			v = make([]int, n)
			for i := range v {
				v[i] = def
			}
		}
		if len(v) != n {
			return nil, unsupported("%s %v: only 2-D spatial inputs (N,C,H,W) are supported, want %d values", name, v, n)
		}
		for _, x := range v {
			if x < min || x > maxWindowAttr {
				return nil, fmt.Errorf("%s %v: values must be in [%d, %d]", name, v, min, maxWindowAttr)
			}
		}
		return v, nil
	}
	var err error
	if s.kernel != nil {
		if s.kernel, err = fill("kernel_shape", s.kernel, 2, 1, 1); err != nil {
			return s, err
		}
	}
	if s.strides, err = fill("strides", s.strides, 2, 1, 1); err != nil {
		return s, err
	}
	if s.pads, err = fill("pads", s.pads, 4, 0, 0); err != nil {
		return s, err
	}
	if s.dilations, err = fill("dilations", s.dilations, 2, 1, 1); err != nil {
		return s, err
	}
	switch s.autoPad {
	case "":
		s.autoPad = AutoPadNotSet
	case AutoPadNotSet, AutoPadValid, AutoPadSameUpper, AutoPadSameLower:
	default:
		return s, fmt.Errorf("auto_pad %q: want NOTSET, VALID, SAME_UPPER or SAME_LOWER", s.autoPad)
	}
	return s, nil
}

// writeWindowSpec records the shared attributes for export. auto_pad is written only
// when set (it is deprecated), and then pads are left out, as the spec requires;
// dilations only when allDilations or not all 1 (AveragePool has them only since
// opset 19).
func writeWindowSpec(a Attrs, kernel, strides, pads, dilations []int, autoPad string, allDilations bool) {
	if kernel != nil {
		a.SetInts("kernel_shape", kernel)
	}
	a.SetInts("strides", strides)
	if autoPad != AutoPadNotSet && autoPad != "" {
		a.Strings["auto_pad"] = autoPad
	} else {
		a.SetInts("pads", pads)
	}
	if allDilations || dilations[0] != 1 || dilations[1] != 1 {
		a.SetInts("dilations", dilations)
	}
}

// resolveWindow computes the output size and the padding of a 2-D window.
//
// Explicit pads (NOTSET), per axis with effective kernel dk = (k−1)·d+1:
//
//	out = floor((in + pb + pe − dk) / s) + 1, or with ceil_mode ceil(…) + 1,
//
// where in ceil mode a last window that would start in the end padding is dropped
// (ONNX MaxPool-22 spec; PyTorch does the same). VALID: no padding. SAME_UPPER /
// SAME_LOWER: out = ceil(in / s) and total padding max(0, (out−1)·s + dk − in), split
// evenly with the odd one at the end (UPPER) or the beginning (LOWER). ceil_mode does
// not change the auto_pad sizes: the spec's ceil and floor formulas coincide for
// integers.
func resolveWindow(inH, inW, kH, kW int, s windowSpec, ceil bool) (Window2D, error) {
	s, err := s.complete()
	if err != nil {
		return Window2D{}, err
	}
	w := Window2D{InH: inH, InW: inW, KH: kH, KW: kW,
		StrideH: s.strides[0], StrideW: s.strides[1], DilH: s.dilations[0], DilW: s.dilations[1]}
	if kH < 1 || kW < 1 {
		return w, fmt.Errorf("kernel %d×%d: must be positive", kH, kW)
	}
	if kH > maxWindowAttr || kW > maxWindowAttr {
		return w, fmt.Errorf("kernel %d×%d is too large", kH, kW)
	}
	axis := func(in, k, st, d, pb, pe int) (out, b, e int, err error) {
		dk := (k-1)*d + 1
		switch s.autoPad {
		case AutoPadSameUpper, AutoPadSameLower:
			out = (in + st - 1) / st
			total := max(0, (out-1)*st+dk-in)
			b = total / 2
			if s.autoPad == AutoPadSameLower {
				b = total - total/2
			}
			return out, b, total - b, nil
		case AutoPadValid:
			pb, pe = 0, 0
		}
		span := in + pb + pe - dk
		if span < 0 {
			return 0, 0, 0, fmt.Errorf("input size %d with pads %d+%d is smaller than the effective kernel %d", in, pb, pe, dk)
		}
		out = span/st + 1
		if ceil && span%st != 0 {
			out++
			if (out-1)*st >= in+pb {
				out--
			}
		}
		return out, pb, pe, nil
	}
	if w.OutH, w.PadTop, w.PadBottom, err = axis(inH, kH, w.StrideH, w.DilH, s.pads[0], s.pads[2]); err != nil {
		return w, fmt.Errorf("height: %w", err)
	}
	if w.OutW, w.PadLeft, w.PadRight, err = axis(inW, kW, w.StrideW, w.DilW, s.pads[1], s.pads[3]); err != nil {
		return w, fmt.Errorf("width: %w", err)
	}
	if !elemsWithin(w.OutH, w.OutW, w.KH, w.KW) {
		return w, fmt.Errorf("output %d×%d with kernel %d×%d is too large", w.OutH, w.OutW, w.KH, w.KW)
	}
	return w, nil
}

// maxElems bounds every tensor or buffer an op allocates from sizes that come from a
// model file, so that hostile attributes (pads of 2^40) fail with an error instead of
// exhausting memory or overflowing int.
const maxElems = 1 << 31

// elemsWithin reports whether the product of dims is at most maxElems (dims ≥ 0).
func elemsWithin(dims ...int) bool {
	n := 1
	for _, d := range dims {
		if d == 0 {
			return true
		}
		if n > maxElems/d {
			return false
		}
		n *= d
	}
	return true
}

// ceilDiv is ⌈a/b⌉ for b > 0 and any sign of a.
func ceilDiv(a, b int) int {
	if a <= 0 {
		return -((-a) / b)
	}
	return (a + b - 1) / b
}

// tapRange returns the taps [lo, hi) of a window starting at input position start
// (negative inside the begin padding) with k taps d apart that fall inside [0, n).
// lo ≥ hi means the window sees only padding.
func tapRange(start, k, d, n int) (lo, hi int) {
	lo = max(0, ceilDiv(-start, d))
	hi = min(k, ceilDiv(n-start, d))
	return lo, hi
}

// rowRanges returns, for each output row, the kernel rows inside the input;
// colRanges the same for columns. They keep the pooling inner loops branch-free.
func (w Window2D) rowRanges() [][2]int {
	r := make([][2]int, w.OutH)
	for o := range r {
		r[o][0], r[o][1] = tapRange(o*w.StrideH-w.PadTop, w.KH, w.DilH, w.InH)
	}
	return r
}

func (w Window2D) colRanges() [][2]int {
	r := make([][2]int, w.OutW)
	for o := range r {
		r[o][0], r[o][1] = tapRange(o*w.StrideW-w.PadLeft, w.KW, w.DilW, w.InW)
	}
	return r
}

// checkSpatial checks that x is (N,C,H,W).
func checkSpatial(x *Tensor) error {
	if x == nil {
		return fmt.Errorf("missing input X")
	}
	if x.Rank() != 4 {
		return unsupported("input of shape %v: only 2-D spatial inputs (N,C,H,W) are supported", x.Shape)
	}
	return nil
}

// poolWindow checks that x is (N,C,H,W) and resolves a pooling window over it.
func poolWindow(x *Tensor, s windowSpec, ceil bool) (Window2D, error) {
	if err := checkSpatial(x); err != nil {
		return Window2D{}, err
	}
	if len(s.kernel) != 2 {
		return Window2D{}, unsupported("kernel_shape %v: only 2-D kernels", s.kernel)
	}
	w, err := resolveWindow(x.Shape[2], x.Shape[3], s.kernel[0], s.kernel[1], s, ceil)
	if err != nil {
		return w, fmt.Errorf("input %v: %w", x.Shape, err)
	}
	if !elemsWithin(x.Shape[0], x.Shape[1], w.OutH, w.OutW) {
		return w, fmt.Errorf("input %v: output %d×%d is too large", x.Shape, w.OutH, w.OutW)
	}
	return w, nil
}
