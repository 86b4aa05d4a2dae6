package nets

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// The NumPy .npy format (numpy.lib.format, NEP 1 "A simple file format for NumPy
// arrays"):
//
//	magic    "\x93NUMPY"
//	version  major, minor (1.0, 2.0 or 3.0)
//	hlen     uint16 LE (1.0) or uint32 LE (2.0, 3.0): bytes of header that follow
//	header   a Python dict literal {'descr': '<f4', 'fortran_order': False,
//	         'shape': (2, 3), }, space padded and ending in '\n' (ASCII/latin-1 in
//	         1.0 and 2.0, UTF-8 in 3.0)
//	data     the elements, C (row-major) order unless fortran_order
//
// We support C order, little-endian (or byte-sized) plain numeric dtypes, which is
// all that np.save writes for the arrays this project exchanges.

// NPY dtypes accepted by ReadNPY and WriteNPY, as NumPy spells them in the header.
const (
	NPYFloat32 = "<f4"
	NPYFloat64 = "<f8"
	NPYUint8   = "|u1"
	NPYInt8    = "|i1"
	NPYInt32   = "<i4"
	NPYInt64   = "<i8"
	NPYBool    = "|b1"
)

const (
	npyMagic = "\x93NUMPY"
	// npyMaxHeader bounds the header we are willing to read: NumPy itself refuses
	// headers over 10000 bytes by default (max_header_size); plain dtypes need < 200.
	npyMaxHeader = 1 << 20
	// npyChunk is how many elements are read at a time, so that memory grows with
	// the bytes actually present and not with a hostile header's claimed shape.
	npyChunk = 1 << 16
	// npyAlign and npyGrowthDigits reproduce NumPy's header layout byte for byte
	// (ARRAY_ALIGN and GROWTH_AXIS_MAX_DIGITS in numpy/lib/format.py).
	npyAlign        = 64
	npyGrowthDigits = 21
	// maxExactInt is 2^53: every integer of magnitude up to it is a float64.
	maxExactInt = 1 << 53
)

// npyType describes one element type: its byte size and conversions from/to float64.
type npyType struct {
	size   int
	decode func(b []byte) (float64, error)
	encode func(b []byte, v float64) error
}

// lookupNPYType returns the element type of a header descr. Byte-sized types have no
// byte order, so NumPy's '|' and the explicit '<', '>', '=' all mean the same.
func lookupNPYType(descr string) (npyType, error) {
	if len(descr) == 3 && (descr[1] == 'u' || descr[1] == 'i' || descr[1] == 'b') && descr[2] == '1' {
		switch descr[0] {
		case '<', '>', '=', '|':
			descr = "|" + descr[1:]
		}
	}
	switch descr {
	case NPYFloat32:
		return npyType{4,
			func(b []byte) (float64, error) {
				return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), nil
			},
			func(b []byte, v float64) error {
				f := float32(v)
				if math.IsInf(float64(f), 0) && !math.IsInf(v, 0) {
					return fmt.Errorf("%g overflows float32", v)
				}
				binary.LittleEndian.PutUint32(b, math.Float32bits(f))
				return nil
			}}, nil
	case NPYFloat64:
		return npyType{8,
			func(b []byte) (float64, error) { return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil },
			func(b []byte, v float64) error {
				binary.LittleEndian.PutUint64(b, math.Float64bits(v))
				return nil
			}}, nil
	case NPYUint8:
		return npyType{1,
			func(b []byte) (float64, error) { return float64(b[0]), nil },
			func(b []byte, v float64) error {
				if err := checkInt(v, 0, math.MaxUint8); err != nil {
					return err
				}
				b[0] = uint8(v)
				return nil
			}}, nil
	case NPYInt8:
		return npyType{1,
			func(b []byte) (float64, error) { return float64(int8(b[0])), nil },
			func(b []byte, v float64) error {
				if err := checkInt(v, math.MinInt8, math.MaxInt8); err != nil {
					return err
				}
				b[0] = uint8(int8(v))
				return nil
			}}, nil
	case NPYBool:
		return npyType{1,
			func(b []byte) (float64, error) {
				if b[0] != 0 {
					return 1, nil
				}
				return 0, nil
			},
			func(b []byte, v float64) error {
				if v != 0 && v != 1 {
					return fmt.Errorf("%g is not a bool (0 or 1)", v)
				}
				b[0] = uint8(v)
				return nil
			}}, nil
	case NPYInt32:
		return npyType{4,
			func(b []byte) (float64, error) { return float64(int32(binary.LittleEndian.Uint32(b))), nil },
			func(b []byte, v float64) error {
				if err := checkInt(v, math.MinInt32, math.MaxInt32); err != nil {
					return err
				}
				binary.LittleEndian.PutUint32(b, uint32(int32(v)))
				return nil
			}}, nil
	case NPYInt64:
		return npyType{8,
			func(b []byte) (float64, error) {
				v := int64(binary.LittleEndian.Uint64(b))
				if v > maxExactInt || v < -maxExactInt {
					return 0, fmt.Errorf("int64 value %d is not exactly representable as float64", v)
				}
				return float64(v), nil
			},
			func(b []byte, v float64) error {
				if err := checkInt(v, -maxExactInt, maxExactInt); err != nil {
					return err
				}
				binary.LittleEndian.PutUint64(b, uint64(int64(v)))
				return nil
			}}, nil
	}
	if len(descr) == 3 && descr[0] == '>' {
		return npyType{}, unsupported("big-endian dtype %q (convert with a.astype(a.dtype.newbyteorder('<')))", descr)
	}
	return npyType{}, unsupported("dtype %q (want one of %s %s %s %s %s %s %s)", descr,
		NPYFloat32, NPYFloat64, NPYUint8, NPYInt8, NPYInt32, NPYInt64, NPYBool)
}

// checkInt reports whether v is an integer in [lo, hi].
func checkInt(v, lo, hi float64) error {
	if v != math.Trunc(v) || v < lo || v > hi { // NaN fails the first test
		return fmt.Errorf("%g is not an integer in [%g, %g]", v, lo, hi)
	}
	return nil
}

// npyHeader is the decoded header dict.
type npyHeader struct {
	descr   string
	fortran bool
	shape   []int
}

// ReadNPY reads a whole .npy file into a tensor (float64, whatever the stored dtype).
// Bytes after the array are an error: np.save never writes them.
func ReadNPY(path string) (*Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	r := bytes.NewReader(b)
	t, err := DecodeNPY(r, path)
	if err != nil {
		return nil, err
	}
	if r.Len() > 0 {
		return nil, fmt.Errorf("npy %s: %d unexpected bytes after the array data", path, r.Len())
	}
	return t, nil
}

// DecodeNPY reads one array in .npy format from r, consuming exactly its bytes (so
// arrays saved one after another to one stream can be read in turn). name is used
// in error messages.
func DecodeNPY(r io.Reader, name string) (*Tensor, error) {
	h, err := readNPYHeader(r)
	if err != nil {
		return nil, fmt.Errorf("npy %s: %w", name, err)
	}
	typ, err := lookupNPYType(h.descr)
	if err != nil {
		return nil, fmt.Errorf("npy %s: %w", name, err)
	}
	if h.fortran {
		return nil, fmt.Errorf("npy %s: %w", name,
			unsupported("fortran_order True (save a C-ordered array: np.ascontiguousarray)"))
	}
	n := 1
	for _, d := range h.shape {
		if d != 0 && n > math.MaxInt/d/typ.size {
			return nil, fmt.Errorf("npy %s: shape %v is too large", name, h.shape)
		}
		n *= d
	}
	data := make([]float64, 0, min(n, npyChunk))
	buf := make([]byte, min(n, npyChunk)*typ.size)
	for len(data) < n {
		k := min(n-len(data), npyChunk)
		b := buf[:k*typ.size]
		if got, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("npy %s: data truncated: shape %v of %s needs %d bytes, found %d",
					name, h.shape, h.descr, n*typ.size, len(data)*typ.size+got)
			}
			return nil, fmt.Errorf("npy %s: data: %w", name, err)
		}
		for i := 0; i < k; i++ {
			v, err := typ.decode(b[i*typ.size : (i+1)*typ.size])
			if err != nil {
				return nil, fmt.Errorf("npy %s: element %d: %w", name, len(data), err)
			}
			data = append(data, v)
		}
	}
	return &Tensor{Shape: h.shape, Data: data}, nil
}

// readNPYHeader reads the magic, version, header length and header dict.
func readNPYHeader(r io.Reader) (npyHeader, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return npyHeader{}, fmt.Errorf("not an .npy file: %d-byte preamble missing: %w", len(pre), err)
	}
	if string(pre[:6]) != npyMagic {
		return npyHeader{}, fmt.Errorf("not an .npy file: bad magic %q", pre[:6])
	}
	major, minor := pre[6], pre[7]
	var hlen int
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return npyHeader{}, fmt.Errorf("header length missing: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return npyHeader{}, fmt.Errorf("header length missing: %w", err)
		}
		n := binary.LittleEndian.Uint32(b[:])
		if n > npyMaxHeader {
			return npyHeader{}, fmt.Errorf("header length %d exceeds the limit of %d bytes", n, npyMaxHeader)
		}
		hlen = int(n)
	default:
		return npyHeader{}, unsupported("format version %d.%d (want 1.0, 2.0 or 3.0)", major, minor)
	}
	if minor != 0 {
		return npyHeader{}, unsupported("format version %d.%d (want 1.0, 2.0 or 3.0)", major, minor)
	}
	hb := make([]byte, hlen)
	if got, err := io.ReadFull(r, hb); err != nil {
		return npyHeader{}, fmt.Errorf("header truncated: length says %d bytes, found %d", hlen, got)
	}
	h, err := parseNPYHeader(string(hb))
	if err != nil {
		return npyHeader{}, fmt.Errorf("header %q: %w", truncateForError(string(hb)), err)
	}
	return h, nil
}

// truncateForError shortens s for inclusion in an error message.
func truncateForError(s string) string {
	const max = 120
	s = strings.TrimRight(s, " \n")
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// parseNPYHeader parses the dict literal. It accepts exactly the subset of Python
// literal syntax that np.save writes (and NumPy's reader requires): string keys
// 'descr', 'fortran_order', 'shape', a string, a bool and a tuple of non-negative
// ints, in any order, with optional trailing commas and whitespace. Python 2 long
// suffixes ("3L"), which NumPy still tolerates in version 1.0/2.0 files, are accepted.
func parseNPYHeader(s string) (npyHeader, error) {
	p := &pyParser{s: s}
	var h npyHeader
	seen := map[string]bool{}
	if err := p.expect('{'); err != nil {
		return h, err
	}
	for {
		p.skipSpace()
		if p.peek() == '}' {
			p.pos++
			break
		}
		key, err := p.str()
		if err != nil {
			return h, fmt.Errorf("key: %w", err)
		}
		if seen[key] {
			return h, fmt.Errorf("key %q repeated", key)
		}
		seen[key] = true
		if err := p.expect(':'); err != nil {
			return h, err
		}
		switch key {
		case "descr":
			p.skipSpace()
			if p.peek() == '[' {
				return h, unsupported("structured dtype")
			}
			if h.descr, err = p.str(); err != nil {
				return h, fmt.Errorf("descr: %w", err)
			}
		case "fortran_order":
			if h.fortran, err = p.boolean(); err != nil {
				return h, fmt.Errorf("fortran_order: %w", err)
			}
		case "shape":
			if h.shape, err = p.intTuple(); err != nil {
				return h, fmt.Errorf("shape: %w", err)
			}
		default:
			return h, fmt.Errorf("unexpected key %q", key)
		}
		p.skipSpace()
		if p.peek() == ',' {
			p.pos++
			continue
		}
		if err := p.expect('}'); err != nil {
			return h, err
		}
		break
	}
	p.skipSpace()
	if p.pos != len(s) {
		return h, fmt.Errorf("unexpected %q after the dict", truncateForError(s[p.pos:]))
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("key %q missing", k)
		}
	}
	return h, nil
}

// pyParser scans a Python literal.
type pyParser struct {
	s   string
	pos int
}

func (p *pyParser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *pyParser) skipSpace() {
	for p.pos < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *pyParser) expect(c byte) error {
	p.skipSpace()
	if p.peek() != c {
		if p.pos >= len(p.s) {
			return fmt.Errorf("want %q at offset %d, found the end", c, p.pos)
		}
		return fmt.Errorf("want %q at offset %d, found %q", c, p.pos, p.s[p.pos])
	}
	p.pos++
	return nil
}

// str reads a quoted string without escapes (NumPy's keys and dtype strings never
// need them).
func (p *pyParser) str() (string, error) {
	p.skipSpace()
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", fmt.Errorf("want a quoted string at offset %d", p.pos)
	}
	end := strings.IndexByte(p.s[p.pos+1:], q)
	if end < 0 {
		return "", fmt.Errorf("unterminated string at offset %d", p.pos)
	}
	v := p.s[p.pos+1 : p.pos+1+end]
	if strings.IndexByte(v, '\\') >= 0 {
		return "", fmt.Errorf("escape sequences in string %q not supported", v)
	}
	p.pos += end + 2
	return v, nil
}

func (p *pyParser) boolean() (bool, error) {
	p.skipSpace()
	switch {
	case strings.HasPrefix(p.s[p.pos:], "True"):
		p.pos += 4
		return true, nil
	case strings.HasPrefix(p.s[p.pos:], "False"):
		p.pos += 5
		return false, nil
	}
	return false, fmt.Errorf("want True or False at offset %d", p.pos)
}

// intTuple reads "()", "(3,)", "(2, 3)" or "(2, 3,)".
func (p *pyParser) intTuple() ([]int, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	out := []int{}
	commas := 0
	for {
		p.skipSpace()
		if p.peek() == ')' {
			p.pos++
			break
		}
		start := p.pos
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == start {
			return nil, fmt.Errorf("want a non-negative integer at offset %d", p.pos)
		}
		d, err := strconv.Atoi(p.s[start:p.pos])
		if err != nil {
			return nil, fmt.Errorf("dimension %q: %w", p.s[start:p.pos], err)
		}
		if p.peek() == 'L' { // Python 2 long literal
			p.pos++
		}
		out = append(out, d)
		p.skipSpace()
		if p.peek() == ',' {
			p.pos++
			commas++
			continue
		}
		if err := p.expect(')'); err != nil {
			return nil, err
		}
		break
	}
	if len(out) == 1 && commas == 0 {
		// "(3)" is the int 3 in Python, not a tuple; NumPy rejects it.
		return nil, fmt.Errorf("(%d) is not a tuple (want (%d,))", out[0], out[0])
	}
	return out, nil
}

// WriteNPY writes t to path in .npy format with the given dtype (one of the NPY*
// constants), exactly as np.save would write the same array.
func WriteNPY(path string, t *Tensor, dtype string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("npy %s: %w", path, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	w := bufio.NewWriter(f)
	if err := EncodeNPY(w, t, dtype); err != nil {
		return fmt.Errorf("npy %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("npy %s: %w", path, err)
	}
	return nil
}

// EncodeNPY writes t to w in .npy format (version 1.0, or 2.0 for headers too long
// for 1.0) with the given dtype. Values that the dtype cannot hold exactly as
// integers, or that overflow float32, are errors; float32 rounding is not.
func EncodeNPY(w io.Writer, t *Tensor, dtype string) error {
	typ, err := lookupNPYType(dtype)
	if err != nil {
		return err
	}
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("negative dimension in shape %v", t.Shape)
		}
	}
	if n := NumElements(t.Shape); n != len(t.Data) {
		return fmt.Errorf("shape %v needs %d values, tensor has %d", t.Shape, n, len(t.Data))
	}
	if _, err := w.Write(npyHeaderBytes(dtype, t.Shape)); err != nil {
		return err
	}
	buf := make([]byte, min(len(t.Data), npyChunk)*typ.size)
	for lo := 0; lo < len(t.Data); lo += npyChunk {
		hi := min(lo+npyChunk, len(t.Data))
		for i, v := range t.Data[lo:hi] {
			if err := typ.encode(buf[i*typ.size:(i+1)*typ.size], v); err != nil {
				return fmt.Errorf("element %d as %s: %w", lo+i, dtype, err)
			}
		}
		if _, err := w.Write(buf[:(hi-lo)*typ.size]); err != nil {
			return err
		}
	}
	return nil
}

// npyHeaderBytes lays the header out as numpy.lib.format._write_array_header does:
// sorted keys, Python reprs, 21-len(repr(shape[0])) spare spaces for growing the
// first axis in place, then space padding to a multiple of 64 bytes and '\n'.
func npyHeaderBytes(dtype string, shape []int) []byte {
	var sb strings.Builder
	sb.WriteString("{'descr': '")
	sb.WriteString(dtype)
	sb.WriteString("', 'fortran_order': False, 'shape': (")
	for i, d := range shape {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		sb.WriteString(",")
	}
	sb.WriteString("), }")
	if len(shape) > 0 {
		if k := npyGrowthDigits - len(strconv.Itoa(shape[0])); k > 0 {
			sb.WriteString(strings.Repeat(" ", k))
		}
	}
	header := sb.String()
	hlen := len(header) + 1 // the final '\n'
	major, lenSize := byte(1), 2
	if pad := npyAlign - (len(npyMagic)+2+lenSize+hlen)%npyAlign; hlen+pad > math.MaxUint16 {
		major, lenSize = 2, 4
	}
	pad := npyAlign - (len(npyMagic)+2+lenSize+hlen)%npyAlign
	out := make([]byte, 0, len(npyMagic)+2+lenSize+hlen+pad)
	out = append(out, npyMagic...)
	out = append(out, major, 0)
	if lenSize == 2 {
		out = binary.LittleEndian.AppendUint16(out, uint16(hlen+pad))
	} else {
		out = binary.LittleEndian.AppendUint32(out, uint32(hlen+pad))
	}
	out = append(out, header...)
	out = append(out, bytes.Repeat([]byte{' '}, pad)...)
	return append(out, '\n')
}
