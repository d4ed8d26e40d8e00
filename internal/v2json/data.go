package v2json

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/ferryml/ferry/internal/tensor"
)

// ElementError says an element has no JSON form: a NaN or infinite float, or a BYTES
// element that is not UTF-8. Callers name the tensor and say what to ask for instead
// (the binary data extension).
type ElementError struct {
	Index  int    // the element's flat index
	Reason string // what is wrong, e.g. "is NaN, which JSON cannot represent"
}

func (e *ElementError) Error() string { return fmt.Sprintf("element %d %s", e.Index, e.Reason) }

// AppendData appends t's elements as a flat JSON array, the V2 "data" form: numbers in
// their shortest exact form (FP16 and BF16 widened exactly), booleans as true/false and
// BYTES as strings. An element JSON cannot carry is an *ElementError; BYTES data that is
// not length-prefixed elements is the tensor package's error.
func AppendData(b []byte, t *tensor.Tensor) ([]byte, error) {
	b = append(b, '[')
	if t.DType == tensor.Bytes {
		b, err := appendBytesData(b, t.Data)
		if err != nil {
			return nil, err
		}
		return append(b, ']'), nil
	}
	size := t.DType.Size()
	if size <= 0 { // not a datatype: stepping by 0 would never end
		return nil, fmt.Errorf("tensor %q: %v is not a V2 datatype", t.Name, t.DType)
	}
	le := binary.LittleEndian
	for i := 0; i+size <= len(t.Data); i += size {
		if i > 0 {
			b = append(b, ',')
		}
		v := t.Data[i:]
		switch t.DType {
		case tensor.Bool:
			b = strconv.AppendBool(b, v[0] != 0)
		case tensor.Uint8:
			b = strconv.AppendUint(b, uint64(v[0]), 10)
		case tensor.Uint16:
			b = strconv.AppendUint(b, uint64(le.Uint16(v)), 10)
		case tensor.Uint32:
			b = strconv.AppendUint(b, uint64(le.Uint32(v)), 10)
		case tensor.Uint64:
			b = strconv.AppendUint(b, le.Uint64(v), 10)
		case tensor.Int8:
			b = strconv.AppendInt(b, int64(int8(v[0])), 10)
		case tensor.Int16:
			b = strconv.AppendInt(b, int64(int16(le.Uint16(v))), 10)
		case tensor.Int32:
			b = strconv.AppendInt(b, int64(int32(le.Uint32(v))), 10)
		case tensor.Int64:
			b = strconv.AppendInt(b, int64(le.Uint64(v)), 10)
		default:
			var ok bool
			if b, ok = appendFloat(b, t.DType, v); !ok {
				return nil, &ElementError{Index: i / size, Reason: fmt.Sprintf("is %v, which JSON cannot represent", floatAt(t.DType, v))}
			}
		}
	}
	return append(b, ']'), nil
}

func floatAt(dt tensor.DType, v []byte) float64 {
	switch dt {
	case tensor.FP32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(v)))
	case tensor.FP64:
		return math.Float64frombits(binary.LittleEndian.Uint64(v))
	case tensor.FP16:
		return float64(tensor.FP16ToFloat32(binary.LittleEndian.Uint16(v)))
	default:
		return float64(tensor.BF16ToFloat32(binary.LittleEndian.Uint16(v)))
	}
}

// appendFloat appends a float element in its shortest exact form; NaN and infinities
// have no JSON form (ok is false).
func appendFloat(b []byte, dt tensor.DType, v []byte) ([]byte, bool) {
	f := floatAt(dt, v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, false
	}
	bits := 32
	if dt == tensor.FP64 {
		bits = 64
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits), true
}

func appendBytesData(b, data []byte) ([]byte, error) {
	elems, err := tensor.BytesElements(data)
	if err != nil {
		return nil, err
	}
	for i, e := range elems {
		if !utf8.Valid(e) {
			return nil, &ElementError{Index: i, Reason: "is not valid UTF-8, which a JSON string cannot carry"}
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, unsafe.String(unsafe.SliceData(e), len(e))) // no copy per element
	}
	return b, nil
}

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; unlike encoding/json it leaves <, > and & as they are (V2 JSON is
// not embedded in HTML).
func AppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
