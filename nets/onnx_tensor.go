package nets

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// ONNX element types (TensorProto.DataType) by their numbers in onnx.proto, kept as
// int32 because TensorProto.data_type and TypeProto.Tensor.elem_type are plain int32
// fields.
const (
	onnxFloat    = int32(onnx.TensorProto_FLOAT)
	onnxUint8    = int32(onnx.TensorProto_UINT8)
	onnxInt8     = int32(onnx.TensorProto_INT8)
	onnxUint16   = int32(onnx.TensorProto_UINT16)
	onnxInt16    = int32(onnx.TensorProto_INT16)
	onnxInt32    = int32(onnx.TensorProto_INT32)
	onnxInt64    = int32(onnx.TensorProto_INT64)
	onnxString   = int32(onnx.TensorProto_STRING)
	onnxBool     = int32(onnx.TensorProto_BOOL)
	onnxFloat16  = int32(onnx.TensorProto_FLOAT16)
	onnxDouble   = int32(onnx.TensorProto_DOUBLE)
	onnxUint32   = int32(onnx.TensorProto_UINT32)
	onnxUint64   = int32(onnx.TensorProto_UINT64)
	onnxBfloat16 = int32(onnx.TensorProto_BFLOAT16)
)

// onnxTypeName names an element type for error messages.
func onnxTypeName(dt int32) string {
	if s, ok := onnx.TensorProto_DataType_name[dt]; ok {
		return s
	}
	return fmt.Sprintf("data type %d", dt)
}

// rawWidth is the size in bytes of one element of dt in raw_data (onnx.proto: fixed
// width, little-endian, IEEE 754 for floats, one byte per bool), or 0 when we do not
// read that type.
func rawWidth(dt int32) int {
	switch dt {
	case onnxUint8, onnxInt8, onnxBool:
		return 1
	case onnxUint16, onnxInt16, onnxFloat16, onnxBfloat16:
		return 2
	case onnxFloat, onnxInt32, onnxUint32:
		return 4
	case onnxInt64, onnxDouble, onnxUint64:
		return 8
	}
	return 0
}

// isFloatType reports whether dt is a floating-point element type.
func isFloatType(dt int32) bool {
	return dt == onnxFloat || dt == onnxDouble || dt == onnxFloat16 || dt == onnxBfloat16
}

// halfToFloat decodes an IEEE 754 binary16 value: 1 sign bit, 5 exponent bits
// (bias 15), 10 fraction bits. Normal numbers are (1024+f)·2^(e-25), subnormals
// f·2^-24 (IEEE 754-2008, §3.4).
func halfToFloat(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e := int(h>>10) & 0x1f
	f := float64(h & 0x3ff)
	switch e {
	case 0:
		return sign * math.Ldexp(f, -24)
	case 0x1f:
		if f != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1024+f, e-25)
}

// bfloat16ToFloat decodes a bfloat16: the upper 16 bits of a float32.
func bfloat16ToFloat(h uint16) float64 {
	return float64(math.Float32frombits(uint32(h) << 16))
}

// protoShape checks a TensorProto's dims against the number of values actually
// present and returns them as a shape. Dims are multiplied only while the product
// stays within avail, so hostile dims can neither overflow nor cause a large
// allocation.
func protoShape(dims []int64, avail int) ([]int, error) {
	shape := make([]int, len(dims))
	zero := false
	for i, d := range dims {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension %d in dims %v", d, dims)
		}
		// No real tensor has a dimension beyond 2^31; refusing them keeps every
		// later product of dimensions far from overflow, even with a zero elsewhere.
		if d > math.MaxInt32 {
			return nil, fmt.Errorf("dimension %d in dims %v is too large", d, dims)
		}
		zero = zero || d == 0
		shape[i] = int(d)
	}
	n := 0
	if !zero {
		n = 1
		for _, d := range shape {
			n *= d
			if n > avail {
				return nil, fmt.Errorf("dims %v need more values than the %d present", dims, avail)
			}
		}
	}
	if n != avail {
		return nil, fmt.Errorf("dims %v need %d values, %d present", dims, n, avail)
	}
	return shape, nil
}

// tensorFromProto decodes an ONNX TensorProto into a float64 Tensor and returns its
// ONNX element type. Values come from raw_data or from the typed field that
// onnx.proto assigns to the element type (float_data, int32_data, int64_data,
// double_data, uint64_data); both at once is an error, as is data stored outside the
// file.
func tensorFromProto(tp *onnx.TensorProto) (*Tensor, int32, error) {
	if tp == nil {
		return nil, 0, fmt.Errorf("missing tensor")
	}
	dt := tp.GetDataType()
	if tp.GetDataLocation() == onnx.TensorProto_EXTERNAL || len(tp.GetExternalData()) > 0 {
		return nil, dt, unsupported("tensor data stored in an external file")
	}
	if tp.GetSegment() != nil {
		return nil, dt, unsupported("segmented tensor")
	}
	width := rawWidth(dt)
	if width == 0 {
		return nil, dt, unsupported("element type %s", onnxTypeName(dt))
	}
	typed := 0
	for _, n := range []int{len(tp.GetFloatData()), len(tp.GetInt32Data()), len(tp.GetInt64Data()),
		len(tp.GetDoubleData()), len(tp.GetUint64Data()), len(tp.GetStringData())} {
		if n > 0 {
			typed++
		}
	}
	raw := tp.GetRawData()
	if typed > 1 || (typed == 1 && len(raw) > 0) {
		return nil, dt, fmt.Errorf("values stored in more than one field")
	}
	if len(raw) > 0 {
		if len(raw)%width != 0 {
			return nil, dt, fmt.Errorf("raw_data of %d bytes is not a whole number of %d-byte %s values", len(raw), width, onnxTypeName(dt))
		}
		shape, err := protoShape(tp.GetDims(), len(raw)/width)
		if err != nil {
			return nil, dt, err
		}
		return &Tensor{Shape: shape, Data: decodeRaw(raw, dt, width)}, dt, nil
	}
	var data []float64
	switch {
	case len(tp.GetFloatData()) > 0:
		if dt != onnxFloat {
			return nil, dt, fmt.Errorf("float_data given for element type %s", onnxTypeName(dt))
		}
		data = make([]float64, len(tp.GetFloatData()))
		for i, v := range tp.GetFloatData() {
			data[i] = float64(v)
		}
	case len(tp.GetDoubleData()) > 0:
		if dt != onnxDouble {
			return nil, dt, fmt.Errorf("double_data given for element type %s", onnxTypeName(dt))
		}
		data = append([]float64(nil), tp.GetDoubleData()...)
	case len(tp.GetInt64Data()) > 0:
		if dt != onnxInt64 {
			return nil, dt, fmt.Errorf("int64_data given for element type %s", onnxTypeName(dt))
		}
		data = make([]float64, len(tp.GetInt64Data()))
		for i, v := range tp.GetInt64Data() {
			data[i] = float64(v)
		}
	case len(tp.GetUint64Data()) > 0:
		if dt != onnxUint32 && dt != onnxUint64 {
			return nil, dt, fmt.Errorf("uint64_data given for element type %s", onnxTypeName(dt))
		}
		data = make([]float64, len(tp.GetUint64Data()))
		for i, v := range tp.GetUint64Data() {
			data[i] = float64(v)
		}
	case len(tp.GetInt32Data()) > 0:
		// int32_data carries every type narrower than 32 bits, float16 and bfloat16
		// as their bit patterns (onnx.proto, TensorProto.int32_data).
		src := tp.GetInt32Data()
		data = make([]float64, len(src))
		for i, v := range src {
			switch dt {
			case onnxInt32, onnxInt16, onnxInt8, onnxUint16, onnxUint8:
				data[i] = float64(v)
			case onnxBool:
				if v != 0 {
					data[i] = 1
				}
			case onnxFloat16:
				data[i] = halfToFloat(uint16(v))
			case onnxBfloat16:
				data[i] = bfloat16ToFloat(uint16(v))
			default:
				return nil, dt, fmt.Errorf("int32_data given for element type %s", onnxTypeName(dt))
			}
		}
	case len(tp.GetStringData()) > 0:
		return nil, dt, fmt.Errorf("string_data given for element type %s", onnxTypeName(dt))
	}
	shape, err := protoShape(tp.GetDims(), len(data))
	if err != nil {
		return nil, dt, err
	}
	if data == nil {
		data = []float64{}
	}
	return &Tensor{Shape: shape, Data: data}, dt, nil
}

// decodeRaw converts little-endian raw_data of element type dt (width bytes each,
// len(raw) a multiple of width) to float64.
func decodeRaw(raw []byte, dt int32, width int) []float64 {
	le := binary.LittleEndian
	out := make([]float64, len(raw)/width)
	for i := range out {
		b := raw[i*width : (i+1)*width]
		switch dt {
		case onnxFloat:
			out[i] = float64(math.Float32frombits(le.Uint32(b)))
		case onnxDouble:
			out[i] = math.Float64frombits(le.Uint64(b))
		case onnxFloat16:
			out[i] = halfToFloat(le.Uint16(b))
		case onnxBfloat16:
			out[i] = bfloat16ToFloat(le.Uint16(b))
		case onnxInt64:
			out[i] = float64(int64(le.Uint64(b)))
		case onnxUint64:
			out[i] = float64(le.Uint64(b))
		case onnxInt32:
			out[i] = float64(int32(le.Uint32(b)))
		case onnxUint32:
			out[i] = float64(le.Uint32(b))
		case onnxInt16:
			out[i] = float64(int16(le.Uint16(b)))
		case onnxUint16:
			out[i] = float64(le.Uint16(b))
		case onnxInt8:
			out[i] = float64(int8(b[0]))
		case onnxUint8:
			out[i] = float64(b[0])
		case onnxBool:
			if b[0] != 0 {
				out[i] = 1
			}
		}
	}
	return out
}

// decodeTensorProto decodes a serialized TensorProto, the format of the input_*.pb
// and output_*.pb files of the ONNX backend test data.
func decodeTensorProto(data []byte) (*Tensor, error) {
	var tp onnx.TensorProto
	if err := proto.Unmarshal(data, &tp); err != nil {
		return nil, fmt.Errorf("decode TensorProto: %w", err)
	}
	t, _, err := tensorFromProto(&tp)
	return t, err
}

// tensorToProto encodes t as a TensorProto of element type dt in little-endian
// raw_data. ONNX models here are float32 (onnxFloat); integer and bool types are
// for inputs that the ONNX schema types as such (Reshape's shape, Pad's pads).
// Values that the type cannot hold are an error, never silently changed, except
// for float32 rounding.
func tensorToProto(name string, t *Tensor, dt int32) (*onnx.TensorProto, error) {
	width := rawWidth(dt)
	if width == 0 || (dt != onnxFloat && dt != onnxDouble && dt != onnxInt64 && dt != onnxBool) {
		return nil, fmt.Errorf("tensor %q: cannot encode element type %s", name, onnxTypeName(dt))
	}
	if NumElements(t.Shape) != len(t.Data) {
		return nil, fmt.Errorf("tensor %q: shape %v does not match %d values", name, t.Shape, len(t.Data))
	}
	dims := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = int64(d)
	}
	raw := make([]byte, len(t.Data)*width)
	le := binary.LittleEndian
	for i, v := range t.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("tensor %q: value %d is %v", name, i, v)
		}
		b := raw[i*width:]
		switch dt {
		case onnxFloat:
			if math.Abs(v) > math.MaxFloat32 {
				return nil, fmt.Errorf("tensor %q: value %d (%g) overflows float32", name, i, v)
			}
			le.PutUint32(b, math.Float32bits(float32(v)))
		case onnxDouble:
			le.PutUint64(b, math.Float64bits(v))
		case onnxInt64:
			// 2^63 itself is not an int64; float64 cannot represent 2^63-1.
			if v != math.Trunc(v) || v < -(1<<63) || v >= 1<<63 {
				return nil, fmt.Errorf("tensor %q: value %d (%g) is not an int64", name, i, v)
			}
			le.PutUint64(b, uint64(int64(v)))
		case onnxBool:
			switch v {
			case 0:
				b[0] = 0
			case 1:
				b[0] = 1
			default:
				return nil, fmt.Errorf("tensor %q: value %d (%g) is not a bool", name, i, v)
			}
		}
	}
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: dt, RawData: raw}, nil
}
