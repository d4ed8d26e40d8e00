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
			out[i] = float64(FP16ToFloat32(le.Uint16(b)))
		case BF16:
			out[i] = float64(BF16ToFloat32(le.Uint16(b)))
		case FP32:
			out[i] = float64(math.Float32frombits(le.Uint32(b)))
		case FP64:
			out[i] = math.Float64frombits(le.Uint64(b))
		}
	}
	return out, nil
}
