package nets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// npyFixtures are the files written by real NumPy (testdata/npy/gen.py), with their
// values recomputed here from the formulas in gen.py.
func npyFixtures() []struct {
	file, dtype string
	shape       []int
	want        []float64
	numpyV1     bool // written by NumPy in version 1.0, so our writer must match it byte for byte
} {
	f4 := make([]float64, 6)
	for i := range f4 {
		f4[i] = float64(float32(float64(i)*0.1 - 1))
	}
	u1 := make([]float64, 8)
	for i := range u1 {
		u1[i] = float64(i * 37 % 256)
	}
	return []struct {
		file, dtype string
		shape       []int
		want        []float64
		numpyV1     bool
	}{
		{"f4_2x3.npy", NPYFloat32, []int{2, 3}, f4, true},
		{"f8_5.npy", NPYFloat64, []int{5}, []float64{0, math.Copysign(0, -1), 1e-300, -1.5e300, math.Pi}, true},
		{"f8_scalar.npy", NPYFloat64, []int{}, []float64{2.5}, true},
		{"f8_0x3.npy", NPYFloat64, []int{0, 3}, []float64{}, true},
		{"u1_2x2x2.npy", NPYUint8, []int{2, 2, 2}, u1, true},
		{"i8_4.npy", NPYInt64, []int{4}, []float64{0, -1, 1 << 53, -(1 << 40) + 3}, true},
		{"i4_3.npy", NPYInt32, []int{3}, []float64{math.MinInt32, 0, math.MaxInt32}, true},
		{"i1_3.npy", NPYInt8, []int{3}, []float64{-128, 0, 127}, true},
		{"b1_3.npy", NPYBool, []int{3}, []float64{1, 0, 1}, true},
		{"f8_v2.npy", NPYFloat64, []int{2, 2}, []float64{0, 1, 2, 3}, false},
		{"f8_v3.npy", NPYFloat64, []int{2, 2}, []float64{0, 1, 2, 3}, false},
	}
}

func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

func TestReadNPYNumPyFixtures(t *testing.T) {
	for _, tc := range npyFixtures() {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", "npy", tc.file)
			got, err := ReadNPY(path)
			if err != nil {
				t.Fatal(err)
			}
			if !SameShape(got.Shape, tc.shape) {
				t.Fatalf("shape %v, want %v", got.Shape, tc.shape)
			}
			if !sameBits(got.Data, tc.want) {
				t.Fatalf("data %v, want %v", got.Data, tc.want)
			}
			// Our writer must reproduce NumPy's file byte for byte.
			if tc.numpyV1 {
				raw, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				if err := EncodeNPY(&buf, got, tc.dtype); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf.Bytes(), raw) {
					t.Fatalf("EncodeNPY differs from NumPy:\n got %q\nwant %q", buf.Bytes(), raw)
				}
			}
		})
	}
}

func TestReadNPYRejects(t *testing.T) {
	for _, tc := range []struct {
		file, want  string
		unsupported bool
	}{
		{"fortran.npy", "fortran_order", true},
		{"bigendian.npy", "big-endian", true},
		{"i8_big.npy", "not exactly representable", false},
	} {
		_, err := ReadNPY(filepath.Join("testdata", "npy", tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.file) {
			t.Errorf("%s: error %v, want one naming the file and %q", tc.file, err, tc.want)
		}
		if err != nil && errors.Is(err, ErrUnsupported) != tc.unsupported {
			t.Errorf("%s: errors.Is(err, ErrUnsupported) = %v", tc.file, !tc.unsupported)
		}
	}
}

func TestNPYRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		dtype string
		shape []int
		data  []float64
	}{
		{NPYFloat64, []int{2, 3}, []float64{1.5, -2, math.Inf(1), math.NaN(), 1e-310, 0}},
		{NPYFloat32, []int{1, 1, 2, 2}, []float64{0.5, -0.25, 3, math.Inf(-1)}},
		{NPYUint8, []int{4}, []float64{0, 1, 128, 255}},
		{NPYInt8, []int{2}, []float64{-128, 127}},
		{NPYInt32, []int{2}, []float64{-7, 1 << 30}},
		{NPYInt64, []int{3}, []float64{-(1 << 53), 0, 1 << 53}},
		{NPYBool, []int{2}, []float64{0, 1}},
		{NPYFloat64, []int{}, []float64{42}},
		{NPYFloat64, []int{3, 0}, []float64{}},
		// More than one read chunk.
		{NPYFloat32, []int{npyChunk + 3}, make([]float64, npyChunk+3)},
	} {
		in := &Tensor{Shape: tc.shape, Data: tc.data}
		path := filepath.Join(t.TempDir(), "a.npy")
		if err := WriteNPY(path, in, tc.dtype); err != nil {
			t.Fatalf("%s %v: %v", tc.dtype, tc.shape, err)
		}
		out, err := ReadNPY(path)
		if err != nil {
			t.Fatalf("%s %v: %v", tc.dtype, tc.shape, err)
		}
		if !SameShape(out.Shape, tc.shape) || !sameBits(out.Data, tc.data) {
			t.Errorf("%s: wrote %v, read %v", tc.dtype, in, out)
		}
		// The header is 64-byte aligned, as NumPy requires for memory mapping.
		raw, _ := os.ReadFile(path)
		if hl := 10 + int(binary.LittleEndian.Uint16(raw[8:])); hl%npyAlign != 0 {
			t.Errorf("%s: data starts at %d, not a multiple of %d", tc.dtype, hl, npyAlign)
		}
	}
}

func TestEncodeNPYRejects(t *testing.T) {
	for _, tc := range []struct {
		dtype string
		t     *Tensor
		want  string
	}{
		{NPYUint8, FromData([]float64{256}, 1), "not an integer in"},
		{NPYUint8, FromData([]float64{-1}, 1), "not an integer in"},
		{NPYInt32, FromData([]float64{0.5}, 1), "not an integer in"},
		{NPYInt64, FromData([]float64{math.NaN()}, 1), "not an integer in"},
		{NPYInt64, FromData([]float64{1<<53 + 2}, 1), "not an integer in"},
		{NPYBool, FromData([]float64{2}, 1), "not a bool"},
		{NPYFloat32, FromData([]float64{1e39}, 1), "overflows float32"},
		{"<f2", FromData([]float64{1}, 1), "dtype"},
		{">f8", FromData([]float64{1}, 1), "big-endian"},
		{NPYFloat64, &Tensor{Shape: []int{2}, Data: []float64{1}}, "needs 2 values"},
		{NPYFloat64, &Tensor{Shape: []int{-1}, Data: []float64{}}, "negative dimension"},
	} {
		var buf bytes.Buffer
		err := EncodeNPY(&buf, tc.t, tc.dtype)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: error %v, want %q", tc.dtype, tc.t, err, tc.want)
		}
	}
}

// npyBytes builds a version-1.0 file from a header string and raw data.
func npyBytes(header string, data []byte) []byte {
	b := []byte(npyMagic + "\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func TestDecodeNPYMalformed(t *testing.T) {
	f8one := binary.LittleEndian.AppendUint64(nil, math.Float64bits(1))
	v2 := func(hlen uint32) []byte {
		b := []byte(npyMagic + "\x02\x00")
		return binary.LittleEndian.AppendUint32(b, hlen)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "preamble missing"},
		{"bad magic", []byte("\x93NUMPZ\x01\x00\x00\x00"), "bad magic"},
		{"version 4", []byte(npyMagic + "\x04\x00\x00\x00"), "version 4.0"},
		{"version 1.1", []byte(npyMagic + "\x01\x01\x00\x00"), "version 1.1"},
		{"no header length", []byte(npyMagic + "\x01\x00\x05"), "header length missing"},
		{"header truncated", append([]byte(npyMagic+"\x01\x00"), 0x50, 0, '{'), "header truncated"},
		{"huge v2 header", v2(1 << 30), "exceeds the limit"},
		{"not a dict", npyBytes("[1, 2]\n", nil), "want '{'"},
		{"missing key", npyBytes("{'descr': '<f8', 'shape': (1,), }\n", f8one), `key "fortran_order" missing`},
		{"extra key", npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}\n", f8one), `unexpected key "x"`},
		{"repeated key", npyBytes("{'descr': '<f8', 'descr': '<f8'}\n", f8one), "repeated"},
		{"structured", npyBytes("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }\n", f8one), "structured"},
		{"bad bool", npyBytes("{'descr': '<f8', 'fortran_order': 0, 'shape': (1,), }\n", f8one), "True or False"},
		{"negative dim", npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }\n", f8one), "non-negative"},
		{"int not tuple", npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1), }\n", f8one), "not a tuple"},
		{"dim overflow", npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", nil), "dimension"},
		{"shape too large", npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }\n", nil), "too large"},
		{"unterminated", npyBytes("{'descr: '<f8'}\n", nil), "want ':'"},
		{"trailing junk", npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), } x\n", f8one), "after the dict"},
		{"unknown dtype", npyBytes("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }\n", f8one), `dtype "<c16"`},
		{"object dtype", npyBytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n", f8one), `dtype "|O"`},
		{"data truncated", npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", f8one), "needs 16 bytes, found 8"},
		{"huge shape, no data", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000), }\n", f8one), "found 8"},
	} {
		_, err := DecodeNPY(bytes.NewReader(tc.in), "x.npy")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "x.npy") {
			t.Errorf("%s: error %v, want one naming x.npy and %q", tc.name, err, tc.want)
		}
	}
}

func TestDecodeNPYAcceptsVariants(t *testing.T) {
	one := binary.LittleEndian.AppendUint64(nil, math.Float64bits(1))
	for _, tc := range []struct {
		name, header string
		shape        []int
	}{
		{"double quotes, no trailing comma", `{"descr": "<f8", "fortran_order": False, "shape": (1,)}`, []int{1}},
		{"any key order", "{'shape': (1, 1), 'fortran_order': False, 'descr': '<f8'}\n", []int{1, 1}},
		{"python 2 long", "{'descr': '<f8', 'fortran_order': False, 'shape': (1L,), }\n", []int{1}},
	} {
		got, err := DecodeNPY(bytes.NewReader(npyBytes(tc.header, one)), "x.npy")
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !SameShape(got.Shape, tc.shape) || got.Data[0] != 1 {
			t.Errorf("%s: got %v", tc.name, got)
		}
	}
}

// Arrays saved one after another to a stream are read in turn.
func TestDecodeNPYSequential(t *testing.T) {
	var buf bytes.Buffer
	for i := 0; i < 3; i++ {
		if err := EncodeNPY(&buf, FromData([]float64{float64(i), float64(i) + 0.5}, 2), NPYFloat64); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		got, err := DecodeNPY(&buf, "stream")
		if err != nil {
			t.Fatal(err)
		}
		if got.Data[0] != float64(i) || got.Data[1] != float64(i)+0.5 {
			t.Fatalf("array %d: %v", i, got)
		}
	}
	if buf.Len() != 0 {
		t.Fatalf("%d bytes left", buf.Len())
	}
}

func TestReadNPYTrailingBytes(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "npy", "f8_5.npy"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "t.npy")
	if err := os.WriteFile(path, append(raw, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadNPY(path); err == nil || !strings.Contains(err.Error(), "1 unexpected bytes") {
		t.Fatalf("error %v, want trailing-bytes error", err)
	}
	if _, err := ReadNPY(filepath.Join(t.TempDir(), "missing.npy")); err == nil {
		t.Fatal("no error for a missing file")
	}
}

func FuzzDecodeNPY(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "npy", "*.npy"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000), }\n", nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeNPY(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		if n := NumElements(got.Shape); n != len(got.Data) {
			t.Fatalf("shape %v with %d values", got.Shape, len(got.Data))
		}
		// Whatever decodes re-encodes as float64 and decodes to the same values.
		var buf bytes.Buffer
		if err := EncodeNPY(&buf, got, NPYFloat64); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := DecodeNPY(&buf, "again")
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !SameShape(again.Shape, got.Shape) || !sameBits(again.Data, got.Data) {
			t.Fatalf("round trip changed %v to %v", got, again)
		}
	})
}

// A header too long for the 16-bit length of version 1.0 is written as version 2.0.
func TestEncodeNPYVersion2(t *testing.T) {
	shape := make([]int, 25000)
	for i := range shape {
		shape[i] = 1
	}
	var buf bytes.Buffer
	if err := EncodeNPY(&buf, &Tensor{Shape: shape, Data: []float64{7}}, NPYFloat64); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	if raw[6] != 2 || raw[7] != 0 {
		t.Fatalf("version %d.%d, want 2.0", raw[6], raw[7])
	}
	if hl := 12 + int(binary.LittleEndian.Uint32(raw[8:])); hl%npyAlign != 0 || hl <= 1<<16 {
		t.Errorf("data starts at %d", hl)
	}
	got, err := DecodeNPY(&buf, "v2")
	if err != nil {
		t.Fatal(err)
	}
	if !SameShape(got.Shape, shape) || got.Data[0] != 7 {
		t.Errorf("got shape of rank %d, data %v", got.Rank(), got.Data)
	}
}
