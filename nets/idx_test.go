package nets

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idxBytes builds an IDX file: magic, big-endian dims, then raw data.
func idxBytes(code byte, dims []uint32, data []byte) []byte {
	b := []byte{0, 0, code, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, data...)
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	if _, err := z.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeIDXTypes(t *testing.T) {
	be := binary.BigEndian
	for _, tc := range []struct {
		name string
		code byte
		dims []uint32
		data []byte
		want []float64
	}{
		{"uint8", IDXUint8, []uint32{2, 2}, []byte{0, 1, 200, 255}, []float64{0, 1, 200, 255}},
		{"int8", IDXInt8, []uint32{3}, []byte{0x80, 0, 0x7f}, []float64{-128, 0, 127}},
		{"int16", IDXInt16, []uint32{2}, be.AppendUint16(be.AppendUint16(nil, 0xfffe), 300), []float64{-2, 300}},
		{"int32", IDXInt32, []uint32{1}, be.AppendUint32(nil, 0x80000000), []float64{math.MinInt32}},
		{"float32", IDXFloat32, []uint32{1}, be.AppendUint32(nil, math.Float32bits(-0.75)), []float64{-0.75}},
		{"float64", IDXFloat64, []uint32{1}, be.AppendUint64(nil, math.Float64bits(math.Pi)), []float64{math.Pi}},
		{"scalar", IDXUint8, nil, []byte{9}, []float64{9}},
		{"empty", IDXFloat64, []uint32{0, 5}, nil, []float64{}},
	} {
		raw := idxBytes(tc.code, tc.dims, tc.data)
		for _, form := range []struct {
			name string
			b    []byte
		}{{"plain", raw}, {"gzip", gzipBytes(t, raw)}} {
			got, code, err := DecodeIDX(bytes.NewReader(form.b), tc.name)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, form.name, err)
			}
			shape := make([]int, len(tc.dims))
			for i, d := range tc.dims {
				shape[i] = int(d)
			}
			if code != tc.code || !SameShape(got.Shape, shape) || !sameBits(got.Data, tc.want) {
				t.Errorf("%s %s: got type 0x%02x %v, want 0x%02x %v %v", tc.name, form.name, code, got, tc.code, shape, tc.want)
			}
		}
	}
}

func TestDecodeIDXMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "magic missing"},
		{"short magic", []byte{0, 0, 8}, "magic missing"},
		{"bad magic", []byte{1, 0, 8, 1, 0, 0, 0, 1, 5}, "does not start with 00 00"},
		{"bad type", idxBytes(0x0A, []uint32{1}, []byte{1}), "unknown element type 0x0a"},
		{"dims truncated", []byte{0, 0, 8, 3, 0, 0, 0, 1}, "3 dimensions need 12 bytes, found 4"},
		{"data truncated", idxBytes(IDXInt32, []uint32{2}, []byte{0, 0, 0, 1, 0}), "needs 8 bytes, found 5"},
		{"huge shape", idxBytes(IDXFloat64, []uint32{1 << 31, 1 << 31}, nil), "exceeds"},
		{"huge shape, no data", idxBytes(IDXUint8, []uint32{1 << 30}, []byte{1, 2}), "found 2"},
		{"bad gzip", []byte{0x1f, 0x8b, 0, 0}, "gzip"},
	} {
		_, _, err := DecodeIDX(bytes.NewReader(tc.in), "x.idx")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "x.idx") {
			t.Errorf("%s: error %v, want one naming x.idx and %q", tc.name, err, tc.want)
		}
	}
}

func TestReadIDXWholeFile(t *testing.T) {
	raw := idxBytes(IDXUint8, []uint32{2}, []byte{3, 4})
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		b    []byte
		want string // "" for success
	}{
		{"ok.idx", raw, ""},
		{"ok.idx.gz", gzipBytes(t, raw), ""},
		{"trailing.idx", append(append([]byte(nil), raw...), 0), "unexpected bytes"},
		{"trailing.idx.gz", gzipBytes(t, append(append([]byte(nil), raw...), 0)), "unexpected bytes"},
		// A flipped byte in the gzip trailer's CRC-32 must be caught.
		{"badcrc.idx.gz", func() []byte {
			b := gzipBytes(t, raw)
			b[len(b)-8] ^= 0xff
			return b
		}(), "checksum"},
	} {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, tc.b, 0o644); err != nil {
			t.Fatal(err)
		}
		got, _, err := ReadIDX(p)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "" && !sameBits(got.Data, []float64{3, 4}):
			t.Errorf("%s: got %v", tc.name, got)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func FuzzDecodeIDX(f *testing.F) {
	raw := idxBytes(IDXUint8, []uint32{2, 2}, []byte{0, 1, 2, 3})
	f.Add(raw)
	f.Add(gzipBytes(f, raw))
	f.Add(idxBytes(IDXFloat64, []uint32{1}, binary.BigEndian.AppendUint64(nil, math.Float64bits(1))))
	f.Add(idxBytes(IDXInt16, []uint32{1 << 30}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, code, err := DecodeIDX(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		if idxSize(code) == 0 {
			t.Fatalf("unknown type 0x%02x accepted", code)
		}
		if n := NumElements(got.Shape); n != len(got.Data) {
			t.Fatalf("shape %v with %d values", got.Shape, len(got.Data))
		}
	})
}
