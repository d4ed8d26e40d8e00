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
		return strconv.AppendFloat(b, float64(fp16Float(le.Uint16(e))), 'g', -1, 32)
	case tensor.BF16:
		return strconv.AppendFloat(b, float64(math.Float32frombits(uint32(le.Uint16(e))<<16)), 'g', -1, 32)
	case tensor.FP32:
		return strconv.AppendFloat(b, float64(math.Float32frombits(le.Uint32(e))), 'g', -1, 32)
	case tensor.FP64:
		return strconv.AppendFloat(b, math.Float64frombits(le.Uint64(e)), 'g', -1, 64)
	}
	return b
}

// fp16Bits rounds f to IEEE half precision (nearest, ties to even); values beyond its
// range become infinity.
func fp16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127
	mant := b & 0x7fffff
	switch {
	case exp == 128:
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp > 15:
		return sign | 0x7c00
	case exp >= -14:
		h := uint32(exp+15)<<10 | mant>>13
		if rem := mant & 0x1fff; rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
			h++ // a carry into the exponent is still the right rounding
		}
		return sign | uint16(h)
	case exp >= -25:
		m := mant | 0x800000
		shift := uint(-exp - 1) // units of 2^-24, the smallest subnormal
		q := m >> shift
		if rem, half := m&(1<<shift-1), uint32(1)<<(shift-1); rem > half || (rem == half && q&1 == 1) {
			q++
		}
		return sign | uint16(q)
	}
	return sign
}

// fp16Float widens IEEE half precision bits exactly.
func fp16Float(h uint16) float32 {
	sign := float32(1)
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * float32(math.Ldexp(mant, -24))
	case 0x1f:
		if mant != 0 {
			return float32(math.NaN())
		}
		return sign * float32(math.Inf(1))
	}
	return sign * float32(math.Ldexp(1+mant/1024, exp-15))
}

// bf16Bits rounds f to bfloat16 (nearest, ties to even).
func bf16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
