package tensor

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Tensor is a named, typed, shaped block of data. Data holds the elements as raw
// little-endian bytes, row-major. For BYTES each element is a 4-byte little-endian length
// followed by that many bytes, the V2 binary serialization, so BYTES tensors travel the
// same way as the others.
type Tensor struct {
	Name  string
	DType DType
	Shape Shape
	Data  []byte
}

// Validate checks that Data holds exactly the elements Shape declares.
func (t *Tensor) Validate() error {
	if !t.DType.Valid() {
		return fmt.Errorf("invalid datatype %s", t.DType)
	}
	n, err := t.Shape.NumElements()
	if err != nil {
		return err
	}
	if t.DType == Bytes {
		got, err := CountBytesElements(t.Data)
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("shape %v needs %d values, got %d", t.Shape, n, got)
		}
		return nil
	}
	want := n * int64(t.DType.Size())
	if n > 0 && want/n != int64(t.DType.Size()) {
		return fmt.Errorf("shape %v: byte size overflows", t.Shape)
	}
	if int64(len(t.Data)) != want {
		return fmt.Errorf("shape %v of %s needs %d bytes, got %d", t.Shape, t.DType, want, len(t.Data))
	}
	return nil
}

// ByteSize is the size of the tensor's data in bytes.
func (t *Tensor) ByteSize() int { return len(t.Data) }

// ErrBytesPrefix reports a BYTES serialization whose length prefixes do not add up.
var ErrBytesPrefix = errors.New("BYTES element length prefix runs past the end of the data")

// CountBytesElements walks the length prefixes of serialized BYTES data.
func CountBytesElements(b []byte) (int64, error) {
	var n int64
	for len(b) > 0 {
		if len(b) < 4 {
			return 0, ErrBytesPrefix
		}
		l := binary.LittleEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) {
			return 0, ErrBytesPrefix
		}
		b = b[4+l:]
		n++
	}
	return n, nil
}

// BytesElements splits serialized BYTES data into its elements (sharing memory with b).
func BytesElements(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, ErrBytesPrefix
		}
		l := binary.LittleEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) {
			return nil, ErrBytesPrefix
		}
		out = append(out, b[4:4+l])
		b = b[4+l:]
	}
	return out, nil
}

// AppendBytesElement appends one length-prefixed BYTES element to dst.
func AppendBytesElement(dst, elem []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(elem)))
	return append(dst, elem...)
}
