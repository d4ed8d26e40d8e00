package bench

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/ferryml/ferry/internal/tensor"
)

// appendJSONData appends a tensor's elements as a flat JSON array, the V2 "data" form.
func appendJSONData(b []byte, t *tensor.Tensor) ([]byte, error) {
	b = append(b, '[')
	if t.DType == tensor.Bytes {
		elems, err := tensor.BytesElements(t.Data)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", t.Name, err)
		}
		for i, e := range elems {
			if i > 0 {
				b = append(b, ',')
			}
			s, err := json.Marshal(string(e))
			if err != nil {
				return nil, err
			}
			b = append(b, s...)
		}
		return append(b, ']'), nil
	}
	size := t.DType.Size()
	for i := 0; i+size <= len(t.Data); i += size {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendElement(b, t.DType, t.Data[i:i+size])
	}
	return append(b, ']'), nil
}

// appendElement appends one little-endian element of a fixed-size type as JSON.
func appendElement(b []byte, dt tensor.DType, e []byte) []byte {
	le := binary.LittleEndian
	switch dt {
	case tensor.Bool:
		return strconv.AppendBool(b, e[0] != 0)
	case tensor.Uint8:
		return strconv.AppendUint(b, uint64(e[0]), 10)
	case tensor.Uint16:
		return strconv.AppendUint(b, uint64(le.Uint16(e)), 10)
	case tensor.Uint32:
		return strconv.AppendUint(b, uint64(le.Uint32(e)), 10)
	case tensor.Uint64:
		return strconv.AppendUint(b, le.Uint64(e), 10)
	case tensor.Int8:
		return strconv.AppendInt(b, int64(int8(e[0])), 10)
	case tensor.Int16:
		return strconv.AppendInt(b, int64(int16(le.Uint16(e))), 10)
	case tensor.Int32:
		return strconv.AppendInt(b, int64(int32(le.Uint32(e))), 10)
	case tensor.Int64:
		return strconv.AppendInt(b, int64(le.Uint64(e)), 10)
	case tensor.FP16:
		return strconv.AppendFloat(b, float64(tensor.FP16ToFloat32(le.Uint16(e))), 'g', -1, 32)
	case tensor.BF16:
		return strconv.AppendFloat(b, float64(tensor.BF16ToFloat32(le.Uint16(e))), 'g', -1, 32)
	case tensor.FP32:
		return strconv.AppendFloat(b, float64(math.Float32frombits(le.Uint32(e))), 'g', -1, 32)
	case tensor.FP64:
		return strconv.AppendFloat(b, math.Float64frombits(le.Uint64(e)), 'g', -1, 64)
	}
	return b
}
