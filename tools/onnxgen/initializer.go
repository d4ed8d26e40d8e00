package onnxgen

import (
	"encoding/binary"
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// initializer is a TensorProto whose raw_data is produced when the model is
// written, so that a model of hundreds of megabytes streams to its file
// without being held in memory.
type initializer struct {
	head  []byte                  // the TensorProto fields before raw_data: dims, data_type, name
	size  int                     // raw_data length in bytes
	write func(w io.Writer) error // writes exactly size bytes of raw_data
}

// encodedLen is the length of the encoded TensorProto.
func (t initializer) encodedLen() int {
	return len(t.head) + protowire.SizeTag(9) + protowire.SizeBytes(t.size)
}

// writeTo writes the initializer as GraphProto field 5 (initializer).
func (t initializer) writeTo(w io.Writer) error {
	b := protowire.AppendTag(nil, 5, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(t.encodedLen()))
	b = append(b, t.head...)
	b = protowire.AppendTag(b, 9, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(t.size))
	if _, err := w.Write(b); err != nil {
		return err
	}
	return t.write(w)
}

// addInitializer adds a tensor of type elem and shape dims whose size bytes
// of raw_data write produces.
func (m *Model) addInitializer(name string, elem DataType, dims []int64, size int, write func(io.Writer) error) *Model {
	// TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9.
	// raw_data (fixed-width little-endian) is what exporters write for large
	// tensors: it is compact and ONNX Runtime can use it without decoding.
	var b []byte
	for _, d := range dims {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(d))
	}
	b = appendVarintField(b, 2, uint64(elem))
	b = appendString(b, 8, name)
	m.initializers = append(m.initializers, initializer{head: b, size: size, write: write})
	return m
}

// InitializerFloat32 adds a constant float32 tensor of the given shape,
// usable as a node input by name. The data is stored row-major in raw_data.
// An empty dims makes a scalar.
func (m *Model) InitializerFloat32(name string, dims []int64, data []float32) *Model {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return m.addInitializer(name, Float, dims, len(raw), writeBytes(raw))
}

// InitializerInt64 adds a constant int64 tensor of the given shape (shape
// vectors, axes, indices). An empty dims makes a scalar.
func (m *Model) InitializerInt64(name string, dims []int64, data []int64) *Model {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return m.addInitializer(name, Int64, dims, len(raw), writeBytes(raw))
}

// InitializerFloat32Func adds a float32 tensor of the given shape whose
// values are produced only when the model is written: fill is called with
// consecutive chunks of the row-major data, in order, and must set every
// element. Each write of the model calls fill afresh, so a fill that should
// give the same bytes every time must restart its source on its first chunk
// (start is true then).
func (m *Model) InitializerFloat32Func(name string, dims []int64, fill func(chunk []float32, start bool)) *Model {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	return m.addInitializer(name, Float, dims, 4*n, func(w io.Writer) error {
		const chunkLen = 1 << 16
		vals := make([]float32, min(n, chunkLen))
		raw := make([]byte, 4*len(vals))
		for done := 0; done < n; {
			k := min(n-done, chunkLen)
			fill(vals[:k], done == 0)
			for i, v := range vals[:k] {
				binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
			}
			if _, err := w.Write(raw[:4*k]); err != nil {
				return err
			}
			done += k
		}
		return nil
	})
}

// writeBytes returns a raw_data writer for data already encoded.
func writeBytes(raw []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(raw)
		return err
	}
}
