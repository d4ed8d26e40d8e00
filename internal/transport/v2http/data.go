package v2http

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
)

// dataDecoder turns one input's JSON "data" into the tensor's little-endian bytes. The
// data may be flat or nested; nesting must agree with the shape: with values at depth L,
// the arrays at depths below L-1 hold shape[d] entries and the innermost ones hold the
// product of the remaining dimensions (so both [1,2,3,4] and [[1,2],[3,4]] fit [2,2]).
type dataDecoder struct {
	s     *scanner
	name  string
	dt    tensor.DType
	shape tensor.Shape
	n     int64 // elements the shape needs
	out   []byte
	count int64 // values decoded so far
}

func (d *dataDecoder) fail(format string, args ...any) error {
	return &core.InputError{Input: d.name, Reason: fmt.Sprintf(format, args...)}
}

// decodeData reads the data array at the scanner's position.
func decodeData(s *scanner, name string, dt tensor.DType, shape tensor.Shape, n int64) ([]byte, error) {
	d := &dataDecoder{s: s, name: name, dt: dt, shape: shape, n: n}
	if s.peek() != '[' {
		return nil, d.fail("data must be an array, found %s", s.describe())
	}
	// Each value takes at least two bytes of JSON ("1,"), so the rest of the body bounds
	// what a well-formed array can hold; a shape larger than that cannot allocate more.
	maxValues := min(n, int64(len(s.buf)-s.pos)/2+1)
	if size := dt.Size(); size > 0 {
		d.out = make([]byte, 0, maxValues*int64(size))
	} else {
		d.out = make([]byte, 0, min(int64(len(s.buf)-s.pos), 1<<20))
	}
	if err := d.walk(); err != nil {
		return nil, err
	}
	if d.count != n {
		return nil, d.fail("shape %v needs %d values, got %d", shape, n, d.count)
	}
	return d.out, nil
}

// walk reads nested arrays iteratively, checking each closed array against the shape.
func (d *dataDecoder) walk() error {
	s := d.s
	maxDepth := max(len(d.shape), 1)
	suffix := suffixProducts(d.shape)
	var counts []int64 // entries so far in each open array
	leafDepth := -1
	for {
		switch c := s.peek(); {
		case c == '[':
			if len(counts) >= maxDepth || (leafDepth >= 0 && len(counts) >= leafDepth) {
				return d.fail("data nests deeper than shape %v allows", d.shape)
			}
			if len(counts) > 0 {
				counts[len(counts)-1]++
			}
			s.pos++
			counts = append(counts, 0)
			if s.peek() != ']' {
				continue
			}
		default:
			if leafDepth < 0 {
				leafDepth = len(counts)
			} else if leafDepth != len(counts) {
				return d.fail("data mixes values and arrays at the same depth")
			}
			if err := d.value(); err != nil {
				return err
			}
			counts[len(counts)-1]++
		}
		// Close finished arrays, then expect a separator.
		for {
			c := s.peek()
			if c == ',' {
				s.pos++
				break
			}
			if c != ']' {
				return s.errorf("expected ',' or ']' in data of input %q, found %s", d.name, s.describe())
			}
			s.pos++
			depth := len(counts) - 1
			if err := d.checkArray(depth, counts[depth], leafDepth, suffix); err != nil {
				return err
			}
			counts = counts[:depth]
			if len(counts) == 0 {
				return nil
			}
		}
	}
}

// checkArray checks the entry count of an array closed at depth.
func (d *dataDecoder) checkArray(depth int, got int64, leafDepth int, suffix []int64) error {
	switch {
	case leafDepth < 0:
		return nil // no values yet: only the total count can be checked
	case depth < leafDepth-1 && got != d.shape[depth]:
		return d.fail("data at depth %d has %d entries, shape %v needs %d", depth, got, d.shape, d.shape[depth])
	case depth == leafDepth-1 && depth > 0 && got != suffix[depth]: // flat data: the total count says it

		return d.fail("shape %v needs %d values per innermost array, got %d", d.shape, suffix[depth], got)
	}
	return nil
}

// suffixProducts returns prod(shape[k:]) for each k, saturating instead of overflowing
// (a zero dimension earlier can make a valid shape whose later products are huge).
func suffixProducts(shape tensor.Shape) []int64 {
	out := make([]int64, len(shape)+1)
	out[len(shape)] = 1
	for k := len(shape) - 1; k >= 0; k-- {
		p := out[k+1]
		if dim := shape[k]; dim != 0 && p > math.MaxInt64/dim {
			out[k] = math.MaxInt64
		} else {
			out[k] = p * dim
		}
	}
	return out
}

// value decodes one element and appends its bytes.
func (d *dataDecoder) value() error {
	if d.count >= d.n {
		return d.fail("shape %v needs %d values, got more", d.shape, d.n)
	}
	s := d.s
	switch d.dt {
	case tensor.Bool:
		if c := s.peek(); c != 't' && c != 'f' {
			return d.fail("element %d: expected true or false for BOOL, found %s", d.count, s.describe())
		}
		v, err := s.boolean()
		if err != nil {
			return err
		}
		d.out = append(d.out, b2u8(v))
	case tensor.Bytes:
		if s.peek() != '"' {
			return d.fail("element %d: expected a string for BYTES, found %s", d.count, s.describe())
		}
		if err := d.bytesElement(); err != nil {
			return err
		}
	default:
		if err := d.numeric(); err != nil {
			return err
		}
	}
	d.count++
	return nil
}

// bytesElement appends one length-prefixed BYTES element, unescaping in place.
func (d *dataDecoder) bytesElement() error {
	at := len(d.out)
	out, err := d.s.appendString(append(d.out, 0, 0, 0, 0))
	if err != nil {
		return err
	}
	d.out = out
	size := len(d.out) - at - 4
	if uint64(size) > math.MaxUint32 {
		return d.fail("element %d: string of %d bytes is longer than BYTES allows", d.count, size)
	}
	binary.LittleEndian.PutUint32(d.out[at:], uint32(size))
	return nil
}

func b2u8(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// numeric decodes a number for the integer and float datatypes.
func (d *dataDecoder) numeric() error {
	s := d.s
	if c := s.peek(); c != '-' && (c < '0' || c > '9') {
		return d.fail("element %d: expected a number for %s, found %s", d.count, d.dt, s.describe())
	}
	tok, isInt, err := s.number()
	if err != nil {
		return err
	}
	switch d.dt {
	case tensor.FP32, tensor.FP64, tensor.FP16, tensor.BF16:
		return d.float(tok)
	}
	if !isInt {
		return d.fail("element %d: %s is not an integer, as %s needs", d.count, tok, d.dt)
	}
	if tok[0] == '-' {
		v, ok := parseInt(tok)
		if !ok || !d.appendInt(v) {
			return d.fail("element %d: %s is out of range for %s", d.count, tok, d.dt)
		}
		return nil
	}
	v, ok := parseUint(tok)
	if !ok || !d.appendUint(v) {
		return d.fail("element %d: %s is out of range for %s", d.count, tok, d.dt)
	}
	return nil
}

// parseUint parses a grammar-checked non-negative integer token.
func parseUint(tok []byte) (uint64, bool) {
	var v uint64
	for _, c := range tok {
		dgt := uint64(c - '0')
		if v > (math.MaxUint64-dgt)/10 {
			return 0, false
		}
		v = v*10 + dgt
	}
	return v, true
}

// parseInt parses a grammar-checked negative integer token.
func parseInt(tok []byte) (int64, bool) {
	u, ok := parseUint(tok[1:])
	if !ok || u > 1<<63 {
		return 0, false
	}
	return -int64(u), true
}

func (d *dataDecoder) appendUint(v uint64) bool {
	switch d.dt {
	case tensor.Uint8:
		return v <= math.MaxUint8 && d.put(1, v)
	case tensor.Uint16:
		return v <= math.MaxUint16 && d.put(2, v)
	case tensor.Uint32:
		return v <= math.MaxUint32 && d.put(4, v)
	case tensor.Uint64:
		return d.put(8, v)
	case tensor.Int8:
		return v <= math.MaxInt8 && d.put(1, v)
	case tensor.Int16:
		return v <= math.MaxInt16 && d.put(2, v)
	case tensor.Int32:
		return v <= math.MaxInt32 && d.put(4, v)
	case tensor.Int64:
		return v <= math.MaxInt64 && d.put(8, v)
	}
	return false
}

func (d *dataDecoder) appendInt(v int64) bool {
	switch d.dt {
	case tensor.Int8:
		return v >= math.MinInt8 && d.put(1, uint64(v))
	case tensor.Int16:
		return v >= math.MinInt16 && d.put(2, uint64(v))
	case tensor.Int32:
		return v >= math.MinInt32 && d.put(4, uint64(v))
	case tensor.Int64:
		return d.put(8, uint64(v))
	}
	return false // negative for an unsigned type
}

// put appends the low size bytes of v, little-endian. It always reports true so range
// checks can chain with it.
func (d *dataDecoder) put(size int, v uint64) bool {
	switch size {
	case 1:
		d.out = append(d.out, byte(v))
	case 2:
		d.out = binary.LittleEndian.AppendUint16(d.out, uint16(v))
	case 4:
		d.out = binary.LittleEndian.AppendUint32(d.out, uint32(v))
	default:
		d.out = binary.LittleEndian.AppendUint64(d.out, v)
	}
	return true
}

func (d *dataDecoder) float(tok []byte) error {
	f, ok := fastFloat(tok)
	if ok && d.dt == tensor.FP32 && !float32Safe(f) {
		ok = false
	}
	if !ok {
		bits := 64
		if d.dt == tensor.FP32 {
			bits = 32
		}
		// The token aliases the request body, which is never modified, and strconv keeps
		// it only inside an error that is discarded here; this avoids a copy per value.
		var err error
		if f, err = strconv.ParseFloat(unsafe.String(unsafe.SliceData(tok), len(tok)), bits); err != nil {
			return d.fail("element %d: %s is out of range for %s", d.count, tok, d.dt)
		}
	}
	switch d.dt {
	case tensor.FP32:
		d.out = binary.LittleEndian.AppendUint32(d.out, math.Float32bits(float32(f)))
	case tensor.FP64:
		d.out = binary.LittleEndian.AppendUint64(d.out, math.Float64bits(f))
	default:
		h, ok := tensor.FP16FromFloat64(f)
		if d.dt == tensor.BF16 {
			h, ok = tensor.BF16FromFloat64(f)
		}
		if !ok {
			return d.fail("element %d: %s is out of range for %s", d.count, tok, d.dt)
		}
		d.out = binary.LittleEndian.AppendUint16(d.out, h)
	}
	return nil
}

var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// fastFloat converts a grammar-checked number token exactly when it can (Clinger's fast
// path: a mantissa below 2^53 scaled by an exactly representable power of ten gives the
// correctly rounded float64 in one operation). Most JSON tensor values qualify, and this
// skips strconv's second scan of the digits; ok is false for the rest.
func fastFloat(tok []byte) (f float64, ok bool) {
	i, neg := 0, tok[0] == '-'
	if neg {
		i++
	}
	var mant uint64
	digits, e10 := 0, 0
	for ; i < len(tok) && tok[i] >= '0' && tok[i] <= '9'; i++ {
		if mant, digits, ok = addDigit(mant, digits, tok[i]); !ok {
			return 0, false
		}
	}
	if i < len(tok) && tok[i] == '.' {
		for i++; i < len(tok) && tok[i] >= '0' && tok[i] <= '9'; i++ {
			if mant, digits, ok = addDigit(mant, digits, tok[i]); !ok {
				return 0, false
			}
			e10--
		}
	}
	if i < len(tok) { // exponent
		i++
		sign := 1
		if tok[i] == '+' || tok[i] == '-' {
			if tok[i] == '-' {
				sign = -1
			}
			i++
		}
		if len(tok)-i > 4 {
			return 0, false
		}
		exp := 0
		for ; i < len(tok); i++ {
			exp = exp*10 + int(tok[i]-'0')
		}
		e10 += sign * exp
	}
	switch {
	case mant == 0:
		f = 0
	case mant >= 1<<53 || e10 < -22 || e10 > 22:
		return 0, false
	case e10 < 0:
		f = float64(mant) / exactPow10[-e10]
	default:
		f = float64(mant) * exactPow10[e10]
	}
	if neg {
		f = -f
	}
	return f, true
}

func addDigit(mant uint64, digits int, c byte) (uint64, int, bool) {
	if mant == 0 && c == '0' {
		return 0, digits, true // leading zeros do not count
	}
	if digits >= 19 {
		return 0, 0, false
	}
	return mant*10 + uint64(c-'0'), digits + 1, true
}

// float32Safe reports whether rounding the correctly rounded float64 f to float32 also
// rounds the original decimal correctly. Rounding twice can differ from rounding once
// only when f sits exactly on a float32 halfway point (any other boundary between the
// decimal and f would have been nearer to the decimal than f); the float32 subnormal and
// overflow ranges are left to strconv as well.
func float32Safe(f float64) bool {
	if a := math.Abs(f); a != 0 && (a < 0x1p-126 || a > math.MaxFloat32) {
		return false
	}
	return math.Float64bits(f)&(1<<29-1) != 1<<28
}
