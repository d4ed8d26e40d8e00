package v2json

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/ferryml/ferry/internal/tensor"
)

// Flatten appends to dst the leaves of a V2 "data" value as encoding/json decoded it
// with UseNumber: nested arrays to any depth, leaves json.Number, bool or string.
// Anything else (null, an object) is an error.
func Flatten(dst []any, v any) ([]any, error) {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			var err error
			if dst, err = Flatten(dst, e); err != nil {
				return dst, err
			}
		}
	case json.Number, bool, string:
		dst = append(dst, v)
	default:
		return dst, fmt.Errorf("unexpected value %v (want numbers, booleans or strings)", v)
	}
	return dst, nil
}

// AppendValue appends one decoded JSON value as a little-endian element of dt: a string
// as a BYTES element, a bool as BOOL, a number as any numeric type it fits (integers
// must be in range; FP16 and BF16 round to nearest even, to infinity beyond their range,
// as IEEE rounding gives). The decoders of V2 JSON that work on decoded values (the load
// generator's data files, a remote upstream's typed answers) share it; the REST
// transport's streaming decoder reads bytes, not values.
func AppendValue(dst []byte, dt tensor.DType, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		if dt != tensor.Bytes {
			return nil, fmt.Errorf("string %q for a %s value", x, dt)
		}
		return tensor.AppendBytesElement(dst, []byte(x)), nil
	case bool:
		if dt != tensor.Bool {
			return nil, fmt.Errorf("boolean for a %s value", dt)
		}
		if x {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	}
	num, ok := v.(json.Number)
	if !ok || dt == tensor.Bytes || dt == tensor.Bool {
		return nil, fmt.Errorf("%v does not fit a %s value", v, dt)
	}
	return AppendNumber(dst, dt, num)
}

// AppendNumber is AppendValue for a JSON number and a numeric dt (not BOOL or BYTES),
// without boxing the number: the lanes decode most rows' fields this way.
func AppendNumber(dst []byte, dt tensor.DType, num json.Number) ([]byte, error) {
	le := binary.LittleEndian
	switch dt {
	case tensor.FP16, tensor.BF16, tensor.FP32, tensor.FP64:
		f, err := strconv.ParseFloat(string(num), 64)
		if err != nil {
			return nil, err
		}
		switch dt {
		case tensor.FP16:
			h, _ := tensor.FP16FromFloat64(f)
			return le.AppendUint16(dst, h), nil
		case tensor.BF16:
			h, _ := tensor.BF16FromFloat64(f)
			return le.AppendUint16(dst, h), nil
		case tensor.FP32:
			return le.AppendUint32(dst, math.Float32bits(float32(f))), nil
		}
		return le.AppendUint64(dst, math.Float64bits(f)), nil
	case tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64:
		u, err := strconv.ParseUint(string(num), 10, dt.Size()*8)
		if err != nil {
			return nil, fmt.Errorf("%s for a %s value: %w", num, dt, err)
		}
		return appendLE(dst, u, dt.Size()), nil
	}
	i, err := strconv.ParseInt(string(num), 10, dt.Size()*8)
	if err != nil {
		return nil, fmt.Errorf("%s for a %s value: %w", num, dt, err)
	}
	return appendLE(dst, uint64(i), dt.Size()), nil
}

func appendLE(dst []byte, v uint64, size int) []byte {
	for k := range size {
		dst = append(dst, byte(v>>(8*k)))
	}
	return dst
}
