package nets

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// The IDX format (LeCun et al., "THE MNIST DATABASE of handwritten digits",
// http://yann.lecun.com/exdb/mnist/):
//
//	magic  0x00 0x00 <type> <ndim>
//	dims   ndim × uint32, big-endian
//	data   the elements, big-endian, C (row-major) order
//
// with type 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
// 0x0E float64. The MNIST files are distributed gzip-compressed; DecodeIDX and
// ReadIDX accept either form.

// IDX element type codes.
const (
	IDXUint8   byte = 0x08
	IDXInt8    byte = 0x09
	IDXInt16   byte = 0x0B
	IDXInt32   byte = 0x0C
	IDXFloat32 byte = 0x0D
	IDXFloat64 byte = 0x0E
)

// idxMaxElements bounds the element count a header may declare (2^31 float64 values
// is 16 GiB), so that a compressed file cannot make us allocate without limit.
const idxMaxElements = 1 << 31

// idxSize returns the byte size of an element type, or 0 if the code is unknown.
func idxSize(code byte) int {
	switch code {
	case IDXUint8, IDXInt8:
		return 1
	case IDXInt16:
		return 2
	case IDXInt32, IDXFloat32:
		return 4
	case IDXFloat64:
		return 8
	}
	return 0
}

// idxDecode converts one big-endian element to float64.
func idxDecode(code byte, b []byte) float64 {
	switch code {
	case IDXUint8:
		return float64(b[0])
	case IDXInt8:
		return float64(int8(b[0]))
	case IDXInt16:
		return float64(int16(binary.BigEndian.Uint16(b)))
	case IDXInt32:
		return float64(int32(binary.BigEndian.Uint32(b)))
	case IDXFloat32:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
	default: // IDXFloat64
		return math.Float64frombits(binary.BigEndian.Uint64(b))
	}
}

// ReadIDX reads a whole IDX file (optionally gzip-compressed). It returns the values
// as float64 and the element type code. Bytes after the array are an error.
func ReadIDX(path string) (*Tensor, byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("idx: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	r, closeGzip, err := maybeGunzip(br)
	if err != nil {
		return nil, 0, fmt.Errorf("idx %s: %w", path, err)
	}
	defer closeGzip()
	t, code, err := decodeIDXRaw(r)
	if err != nil {
		return nil, 0, fmt.Errorf("idx %s: %w", path, err)
	}
	// Reading to the end also makes gzip verify its checksum.
	var one [1]byte
	switch n, err := io.ReadFull(r, one[:]); {
	case n > 0:
		return nil, 0, fmt.Errorf("idx %s: unexpected bytes after the array data", path)
	case err != nil && !errors.Is(err, io.EOF):
		return nil, 0, fmt.Errorf("idx %s: after the array data: %w", path, err)
	}
	return t, code, nil
}

// DecodeIDX reads one IDX array from r, gunzipping it first if it starts with the
// gzip magic. It returns the values as float64 and the element type code. name is
// used in error messages. r is buffered, so it may be read beyond the array.
func DecodeIDX(r io.Reader, name string) (*Tensor, byte, error) {
	br := bufio.NewReader(r)
	rr, closeGzip, err := maybeGunzip(br)
	if err != nil {
		return nil, 0, fmt.Errorf("idx %s: %w", name, err)
	}
	defer closeGzip()
	t, code, err := decodeIDXRaw(rr)
	if err != nil {
		return nil, 0, fmt.Errorf("idx %s: %w", name, err)
	}
	return t, code, nil
}

// maybeGunzip wraps br in a gzip reader if it starts with the gzip magic 1f 8b
// (RFC 1952 §2.3.1); an IDX file always starts with 00 00.
func maybeGunzip(br *bufio.Reader) (io.Reader, func(), error) {
	head, _ := br.Peek(2)
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		z.Multistream(false)
		return z, func() { z.Close() }, nil
	}
	return br, func() {}, nil
}

// decodeIDXRaw reads the header and data of an uncompressed IDX stream.
func decodeIDXRaw(r io.Reader) (*Tensor, byte, error) {
	var magic [4]byte
	if got, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, 0, fmt.Errorf("not an IDX file: 4-byte magic missing (%d bytes): %w", got, err)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, 0, fmt.Errorf("not an IDX file: magic % x does not start with 00 00", magic)
	}
	code, ndim := magic[2], int(magic[3])
	size := idxSize(code)
	if size == 0 {
		return nil, 0, fmt.Errorf("unknown element type 0x%02x", code)
	}
	dimBytes := make([]byte, 4*ndim)
	if got, err := io.ReadFull(r, dimBytes); err != nil {
		return nil, 0, fmt.Errorf("header truncated: %d dimensions need %d bytes, found %d", ndim, 4*ndim, got)
	}
	shape := make([]int, ndim)
	n := 1
	for i := range shape {
		d := int(binary.BigEndian.Uint32(dimBytes[4*i:]))
		shape[i] = d
		if d != 0 && n > idxMaxElements/d {
			return nil, 0, fmt.Errorf("shape %v exceeds %d elements", shape[:i+1], idxMaxElements)
		}
		n *= d
	}
	data := make([]float64, 0, min(n, npyChunk))
	buf := make([]byte, min(n, npyChunk)*size)
	for len(data) < n {
		k := min(n-len(data), npyChunk)
		b := buf[:k*size]
		if got, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, 0, fmt.Errorf("data truncated: shape %v needs %d bytes, found %d",
					shape, n*size, len(data)*size+got)
			}
			return nil, 0, fmt.Errorf("data: %w", err)
		}
		for i := 0; i < k; i++ {
			data = append(data, idxDecode(code, b[i*size:(i+1)*size]))
		}
	}
	return &Tensor{Shape: shape, Data: data}, code, nil
}
