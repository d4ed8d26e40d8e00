package v2client

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
)

// rawFromContents converts gRPC typed contents to raw tensor bytes: the fallback for a
// server that answers with typed values instead of raw_output_contents.
func rawFromContents(dt tensor.DType, c *inference.InferTensorContents) ([]byte, error) {
	var out []byte
	switch dt {
	case tensor.Bool:
		for _, b := range c.GetBoolContents() {
			out = appendBool(out, b)
		}
	case tensor.Int8, tensor.Int16, tensor.Int32:
		for _, v := range c.GetIntContents() {
			out = appendInt(out, dt, int64(v))
		}
	case tensor.Int64:
		for _, v := range c.GetInt64Contents() {
			out = appendInt(out, dt, v)
		}
	case tensor.Uint8, tensor.Uint16, tensor.Uint32:
		for _, v := range c.GetUintContents() {
			out = appendInt(out, dt, int64(v))
		}
	case tensor.Uint64:
		for _, v := range c.GetUint64Contents() {
			out = binary.LittleEndian.AppendUint64(out, v)
		}
	case tensor.FP32:
		for _, v := range c.GetFp32Contents() {
			out = appendFloat(out, dt, float64(v))
		}
	case tensor.FP64:
		for _, v := range c.GetFp64Contents() {
			out = appendFloat(out, dt, v)
		}
	case tensor.Bytes:
		for _, v := range c.GetBytesContents() {
			out = tensor.AppendBytesElement(out, v)
		}
	default:
		return nil, fmt.Errorf("%s has no typed contents field; the upstream must send raw_output_contents", dt)
	}
	return out, nil
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// appendInt appends i as the integer type dt (the caller checked the range).
func appendInt(dst []byte, dt tensor.DType, i int64) []byte {
	switch dt.Size() {
	case 1:
		return append(dst, byte(i))
	case 2:
		return binary.LittleEndian.AppendUint16(dst, uint16(i))
	case 4:
		return binary.LittleEndian.AppendUint32(dst, uint32(i))
	}
	return binary.LittleEndian.AppendUint64(dst, uint64(i))
}

func appendFloat(dst []byte, dt tensor.DType, f float64) []byte {
	if dt == tensor.FP32 {
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(f)))
	}
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}
