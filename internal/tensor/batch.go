package tensor

import "fmt"

// Concat joins tensors of the same name and datatype along their first (batch)
// dimension; the other dimensions must agree. It is how a batcher packs requests.
func Concat(ts []*Tensor) (*Tensor, error) {
	if len(ts) == 0 {
		return nil, fmt.Errorf("concat: no tensors")
	}
	if len(ts) == 1 {
		return ts[0], nil
	}
	first := ts[0]
	if len(first.Shape) == 0 {
		return nil, fmt.Errorf("concat %q: scalar has no batch dimension", first.Name)
	}
	size, rows := 0, int64(0)
	for _, t := range ts {
		if t.DType != first.DType || len(t.Shape) != len(first.Shape) || !t.Shape[1:].Equal(first.Shape[1:]) {
			return nil, fmt.Errorf("concat %q: %s%v does not stack with %s%v", first.Name, t.DType, t.Shape, first.DType, first.Shape)
		}
		size += len(t.Data)
		rows += t.Shape[0]
	}
	data := make([]byte, 0, size)
	for _, t := range ts {
		data = append(data, t.Data...)
	}
	shape := first.Shape.Clone()
	shape[0] = rows
	return &Tensor{Name: first.Name, DType: first.DType, Shape: shape, Data: data}, nil
}

// Split cuts t along its first dimension into pieces of the given row counts, which must
// add up to t.Shape[0]. Fixed-size pieces share t's memory.
func Split(t *Tensor, rows []int64) ([]*Tensor, error) {
	if len(t.Shape) == 0 {
		return nil, fmt.Errorf("split %q: scalar has no batch dimension", t.Name)
	}
	var total int64
	for _, r := range rows {
		total += r
	}
	if total != t.Shape[0] {
		return nil, fmt.Errorf("split %q: rows add up to %d, tensor has %d", t.Name, total, t.Shape[0])
	}
	inner, err := t.Shape[1:].NumElements()
	if err != nil {
		return nil, err
	}
	out := make([]*Tensor, len(rows))
	if t.DType == Bytes {
		elems, err := BytesElements(t.Data)
		if err != nil {
			return nil, err
		}
		if int64(len(elems)) != total*inner {
			return nil, fmt.Errorf("split %q: %d BYTES elements, shape %v holds %d", t.Name, len(elems), t.Shape, total*inner)
		}
		off := int64(0)
		for i, r := range rows {
			var data []byte
			for _, e := range elems[off : off+r*inner] {
				data = AppendBytesElement(data, e)
			}
			off += r * inner
			out[i] = piece(t, r, data)
		}
		return out, nil
	}
	rowBytes := inner * int64(t.DType.Size())
	if int64(len(t.Data)) < total*rowBytes {
		return nil, fmt.Errorf("split %q: %d bytes, shape %v of %s holds %d", t.Name, len(t.Data), t.Shape, t.DType, total*rowBytes)
	}
	off := int64(0)
	for i, r := range rows {
		out[i] = piece(t, r, t.Data[off:off+r*rowBytes:off+r*rowBytes])
		off += r * rowBytes
	}
	return out, nil
}

func piece(t *Tensor, rows int64, data []byte) *Tensor {
	shape := t.Shape.Clone()
	shape[0] = rows
	return &Tensor{Name: t.Name, DType: t.DType, Shape: shape, Data: data}
}
