package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Float64s decodes the elements of a numeric tensor as float64 (for ranking outputs, as
// the classification extension does). BYTES has no numeric value.
func (t *Tensor) Float64s() ([]float64, error) {
	size := t.DType.Size()
	if t.DType == Bytes || size == 0 {
		return nil, fmt.Errorf("tensor %q: %s has no numeric value", t.Name, t.DType)
	}
	n := len(t.Data) / size
	out := make([]float64, n)
	le := binary.LittleEndian
	for i := range n {
		b := t.Data[i*size:]
		switch t.DType {
		case Bool, Uint8:
			out[i] = float64(b[0])
		case Int8:
			out[i] = float64(int8(b[0]))
		case Uint16:
			out[i] = float64(le.Uint16(b))
		case Int16:
			out[i] = float64(int16(le.Uint16(b)))
		case Uint32:
			out[i] = float64(le.Uint32(b))
		case Int32:
			out[i] = float64(int32(le.Uint32(b)))
		case Uint64:
			out[i] = float64(le.Uint64(b))
		case Int64:
			out[i] = float64(int64(le.Uint64(b)))
		case FP16:
			out[i] = float64(HalfToFloat32(le.Uint16(b)))
		case BF16:
			out[i] = float64(math.Float32frombits(uint32(le.Uint16(b)) << 16))
		case FP32:
			out[i] = float64(math.Float32frombits(le.Uint32(b)))
		case FP64:
			out[i] = math.Float64frombits(le.Uint64(b))
		}
	}
	return out, nil
}

// HalfToFloat32 converts IEEE 754 half-precision bits to a float32.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: renormalise
		e := uint32(127 - 15 + 1)
		for frac&0x400 == 0 {
			frac <<= 1
			e--
		}
		frac &= 0x3ff
		return math.Float32frombits(sign | e<<23 | frac<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}
