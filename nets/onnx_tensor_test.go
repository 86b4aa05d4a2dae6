package nets

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// le builds little-endian raw_data from fixed-size values.
func le(vals ...any) []byte {
	var b []byte
	for _, v := range vals {
		b, _ = binary.Append(b, binary.LittleEndian, v)
	}
	return b
}

func sameFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}

func TestTensorFromProto(t *testing.T) {
	tests := []struct {
		name  string
		tp    *onnx.TensorProto
		shape []int
		want  []float64
	}{
		{"float raw", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{2}, RawData: le(float32(1.5), float32(-2))}, []int{2}, []float64{1.5, -2}},
		{"float_data", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{1, 2}, FloatData: []float32{0.25, 3}}, []int{1, 2}, []float64{0.25, 3}},
		{"double raw", &onnx.TensorProto{DataType: onnxDouble, Dims: []int64{1}, RawData: le(0.1)}, []int{1}, []float64{0.1}},
		{"double_data", &onnx.TensorProto{DataType: onnxDouble, Dims: []int64{2}, DoubleData: []float64{0.1, -7}}, []int{2}, []float64{0.1, -7}},
		{"int64 raw", &onnx.TensorProto{DataType: onnxInt64, Dims: []int64{3}, RawData: le(int64(-3), int64(1)<<40, int64(0))}, []int{3}, []float64{-3, 1 << 40, 0}},
		{"int64_data", &onnx.TensorProto{DataType: onnxInt64, Dims: []int64{2}, Int64Data: []int64{-1, 784}}, []int{2}, []float64{-1, 784}},
		{"int32 raw", &onnx.TensorProto{DataType: onnxInt32, Dims: []int64{2}, RawData: le(int32(-5), int32(math.MaxInt32))}, []int{2}, []float64{-5, math.MaxInt32}},
		{"int32_data", &onnx.TensorProto{DataType: onnxInt32, Dims: []int64{2}, Int32Data: []int32{-5, 6}}, []int{2}, []float64{-5, 6}},
		{"int16 raw", &onnx.TensorProto{DataType: onnxInt16, Dims: []int64{2}, RawData: le(int16(-300), int16(7))}, []int{2}, []float64{-300, 7}},
		{"uint16 raw", &onnx.TensorProto{DataType: onnxUint16, Dims: []int64{1}, RawData: le(uint16(65535))}, []int{1}, []float64{65535}},
		{"int8 raw", &onnx.TensorProto{DataType: onnxInt8, Dims: []int64{3}, RawData: []byte{0xff, 0x7f, 0x80}}, []int{3}, []float64{-1, 127, -128}},
		{"int8_data", &onnx.TensorProto{DataType: onnxInt8, Dims: []int64{2}, Int32Data: []int32{-1, 127}}, []int{2}, []float64{-1, 127}},
		{"uint8 raw", &onnx.TensorProto{DataType: onnxUint8, Dims: []int64{2, 1}, RawData: []byte{0, 255}}, []int{2, 1}, []float64{0, 255}},
		{"uint32 raw", &onnx.TensorProto{DataType: onnxUint32, Dims: []int64{1}, RawData: le(uint32(4000000000))}, []int{1}, []float64{4e9}},
		{"uint64_data", &onnx.TensorProto{DataType: onnxUint64, Dims: []int64{1}, Uint64Data: []uint64{1 << 60}}, []int{1}, []float64{1 << 60}},
		{"bool raw", &onnx.TensorProto{DataType: onnxBool, Dims: []int64{3}, RawData: []byte{0, 1, 2}}, []int{3}, []float64{0, 1, 1}},
		{"bool int32_data", &onnx.TensorProto{DataType: onnxBool, Dims: []int64{2}, Int32Data: []int32{1, 0}}, []int{2}, []float64{1, 0}},
		// binary16: 0x3C00 = 1, 0xC000 = -2, 0x7BFF = 65504 (largest normal),
		// 0x0001 = 2^-24 (smallest subnormal), 0x7C00 = +Inf, 0x3555 = 0.333251953125.
		{"float16 raw", &onnx.TensorProto{DataType: onnxFloat16, Dims: []int64{6}, RawData: le(uint16(0x3c00), uint16(0xc000), uint16(0x7bff), uint16(0x0001), uint16(0x7c00), uint16(0x3555))},
			[]int{6}, []float64{1, -2, 65504, 0x1p-24, math.Inf(1), 0.333251953125}},
		{"float16 int32_data", &onnx.TensorProto{DataType: onnxFloat16, Dims: []int64{2}, Int32Data: []int32{0x3c00, 0x8000}}, []int{2}, []float64{1, math.Copysign(0, -1)}},
		// bfloat16 0x3FC0 = the float32 0x3FC00000 = 1.5.
		{"bfloat16 raw", &onnx.TensorProto{DataType: onnxBfloat16, Dims: []int64{1}, RawData: le(uint16(0x3fc0))}, []int{1}, []float64{1.5}},
		{"scalar", &onnx.TensorProto{DataType: onnxFloat, FloatData: []float32{4}}, []int{}, []float64{4}},
		{"empty", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{0, 3}}, []int{0, 3}, []float64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Through the wire format, as the reader sees it.
			data, err := proto.Marshal(tc.tp)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeTensorProto(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !SameShape(got.Shape, tc.shape) || !sameFloats(got.Data, tc.want) {
				t.Errorf("got %v %v, want %v %v", got.Shape, got.Data, tc.shape, tc.want)
			}
			if tc.name == "float16 int32_data" && !math.Signbit(got.Data[1]) {
				t.Errorf("0x8000 decoded to +0, want -0")
			}
		})
	}
}

func TestTensorFromProtoErrors(t *testing.T) {
	tests := []struct {
		name        string
		tp          *onnx.TensorProto
		unsupported bool
		msg         string
	}{
		{"negative dim", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{-1}, FloatData: []float32{1}}, false, "negative dimension"},
		{"raw not whole", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{1}, RawData: []byte{1, 2, 3}}, false, "not a whole number"},
		{"raw too short", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{3}, RawData: le(float32(1))}, false, "need more values"},
		{"raw too long", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{1}, RawData: le(float32(1), float32(2))}, false, "need 1 values, 2 present"},
		{"typed count", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{2, 2}, FloatData: []float32{1, 2, 3}}, false, "need more values"},
		{"huge dims", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{1 << 40, 1 << 40}, FloatData: []float32{1}}, false, "too large"},
		{"overflowing dims", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{1 << 30, 1 << 30, 1 << 30, 16}, FloatData: []float32{1}}, false, "need more values"},
		{"huge dim with zero", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{0, 1 << 62}}, false, "too large"},
		{"no data", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{2}}, false, "need more values than the 0 present"},
		{"two fields", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{1}, FloatData: []float32{1}, RawData: le(float32(1))}, false, "more than one field"},
		{"wrong field", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{1}, Int64Data: []int64{1}}, false, "int64_data given for element type FLOAT"},
		{"int32_data for int64", &onnx.TensorProto{DataType: onnxInt64, Dims: []int64{1}, Int32Data: []int32{1}}, false, "int32_data given"},
		{"string", &onnx.TensorProto{DataType: onnxString, Dims: []int64{1}, StringData: [][]byte{[]byte("a")}}, true, "STRING"},
		{"complex", &onnx.TensorProto{DataType: int32(onnx.TensorProto_COMPLEX64), Dims: []int64{1}, FloatData: []float32{1, 2}}, true, "COMPLEX64"},
		{"undefined", &onnx.TensorProto{Dims: []int64{1}, FloatData: []float32{1}}, true, "UNDEFINED"},
		{"external", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{1}, DataLocation: onnx.TensorProto_EXTERNAL,
			ExternalData: []*onnx.StringStringEntryProto{{Key: "location", Value: "w.bin"}}}, true, "external file"},
		{"segment", &onnx.TensorProto{DataType: onnxFloat, Dims: []int64{1}, FloatData: []float32{1}, Segment: &onnx.TensorProto_Segment{Begin: 0, End: 1}}, true, "segmented"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tensorFromProto(tc.tp)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrUnsupported) != tc.unsupported {
				t.Errorf("errors.Is(err, ErrUnsupported) = %v, want %v (%v)", !tc.unsupported, tc.unsupported, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
		})
	}
}

func TestTensorToProto(t *testing.T) {
	x := FromData([]float64{1.5, -2, 0, 1e-3}, 2, 2)
	tp, err := tensorToProto("w", x, onnxFloat)
	if err != nil {
		t.Fatal(err)
	}
	if want := le(float32(1.5), float32(-2), float32(0), float32(1e-3)); string(tp.RawData) != string(want) {
		t.Errorf("float raw_data %x, want %x", tp.RawData, want)
	}
	if tp.Name != "w" || tp.DataType != onnxFloat || len(tp.Dims) != 2 || tp.Dims[0] != 2 || tp.Dims[1] != 2 {
		t.Errorf("header: %v", tp)
	}
	tp, err = tensorToProto("s", FromData([]float64{-1, 784}, 2), onnxInt64)
	if err != nil {
		t.Fatal(err)
	}
	if want := le(int64(-1), int64(784)); string(tp.RawData) != string(want) {
		t.Errorf("int64 raw_data %x, want %x", tp.RawData, want)
	}
	tp, err = tensorToProto("b", Scalar(1), onnxBool)
	if err != nil || string(tp.RawData) != "\x01" || len(tp.Dims) != 0 {
		t.Errorf("bool scalar: %v, %v", tp, err)
	}

	bad := []struct {
		name string
		x    *Tensor
		dt   int32
		msg  string
	}{
		{"nan", FromData([]float64{1, math.NaN()}, 2), onnxFloat, "value 1 is NaN"},
		{"inf", FromData([]float64{math.Inf(-1)}, 1), onnxFloat, "-Inf"},
		{"float32 overflow", FromData([]float64{1e39}, 1), onnxFloat, "overflows float32"},
		{"fractional int64", FromData([]float64{1.5}, 1), onnxInt64, "not an int64"},
		{"int64 overflow", FromData([]float64{1 << 63}, 1), onnxInt64, "not an int64"},
		{"bool 2", FromData([]float64{2}, 1), onnxBool, "not a bool"},
		{"shape mismatch", &Tensor{Shape: []int{3}, Data: []float64{1}}, onnxFloat, "does not match"},
		{"type", Scalar(1), onnxInt8, "cannot encode"},
	}
	for _, tc := range bad {
		if _, err := tensorToProto("t", tc.x, tc.dt); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.msg)
		}
	}
}

// TestTensorProtoRoundTrip checks encode then decode against the original values,
// exactly for float64-representable float32 values and integers.
func TestTensorProtoRoundTrip(t *testing.T) {
	for _, dt := range []int32{onnxFloat, onnxDouble, onnxInt64} {
		x := FromData([]float64{-3, 0, 17, 1 << 20}, 2, 1, 2)
		tp, err := tensorToProto("x", x, dt)
		if err != nil {
			t.Fatal(err)
		}
		y, gotDT, err := tensorFromProto(tp)
		if err != nil || gotDT != dt || !SameShape(y.Shape, x.Shape) || !sameFloats(y.Data, x.Data) {
			t.Errorf("%s: got %v (%s), %v", onnxTypeName(dt), y, onnxTypeName(gotDT), err)
		}
	}
}
