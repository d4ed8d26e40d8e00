package lane

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"
	"strconv"

	"github.com/ferryml/ferry/internal/tensor"
)

// OutputRows writes the output rows of one batched response straight from its
// tensors: each row exactly as MarshalRow writes the map of the row's passthrough
// fields and, under each output's name, Value of the row's piece of it (Schema.Split),
// without building the map, the pieces or their values. The streaming lanes write a
// row for every message, and the map, the split and the boxed values were a sixth of a
// Kafka lane's CPU (BenchmarkOutputRows).
//
// It covers numeric and BOOL outputs; NewOutputRows refuses others (BYTES) and
// tensors whose shape does not hold n rows, and Append refuses a row with a value
// MarshalRow does not write itself. The caller builds those rows the general way,
// which also words their errors.
type OutputRows struct {
	outs   []*tensor.Tensor
	inner  []int // elements a row, per output
	fields []rowField
}

// rowField is one key of a row: output out, or (out < 0) a passthrough field, its
// value v from a Row or, with flat, sp as AddFlat read it.
type rowField struct {
	key  string
	out  int
	v    any
	sp   span
	flat bool
}

// NewOutputRows prepares to write the n rows of outs; batching says whether the model
// batches (else outs are one row's whole tensors, and n must be 1).
func NewOutputRows(outs []*tensor.Tensor, n int, batching bool) (*OutputRows, bool) {
	o := &OutputRows{outs: outs, inner: make([]int, len(outs))}
	for j, t := range outs {
		size := t.DType.Size()
		if t.DType == tensor.Bytes || size == 0 || slices.ContainsFunc(outs[:j], func(u *tensor.Tensor) bool { return u.Name == t.Name }) {
			return nil, false
		}
		shape := t.Shape
		if batching {
			if len(shape) == 0 || shape[0] != int64(n) {
				return nil, false
			}
			shape = shape[1:]
		} else if n != 1 {
			return nil, false
		}
		inner, err := shape.NumElements()
		if err != nil || int64(len(t.Data)) != int64(n)*inner*int64(size) {
			return nil, false
		}
		o.inner[j] = int(inner)
	}
	return o, true
}

// Append appends row k: in's fields that keep accepts, then the outputs, in
// MarshalRow's order (sorted keys; an output replaces a field of its name).
func (o *OutputRows) Append(b []byte, in Row, keep func(string) bool, k int) ([]byte, bool) {
	o.fields = o.fields[:0]
	for f, v := range in {
		if keep(f) {
			o.fields = append(o.fields, rowField{key: f, out: -1, v: v})
		}
	}
	return o.appendRow(b, k)
}

// AppendFields is Append for a row AddFlat took: fields are the ones it kept.
func (o *OutputRows) AppendFields(b []byte, fields []Field, k int) ([]byte, bool) {
	o.fields = o.fields[:0]
	for _, f := range fields {
		o.fields = append(o.fields, rowField{key: f.Key, out: -1, sp: f.v, flat: true})
	}
	return o.appendRow(b, k)
}

// appendRow writes row k of the outputs with o.fields, the passthrough fields.
func (o *OutputRows) appendRow(b []byte, k int) ([]byte, bool) {
	o.fields = slices.DeleteFunc(o.fields, func(f rowField) bool {
		return slices.ContainsFunc(o.outs, func(t *tensor.Tensor) bool { return t.Name == f.key })
	})
	for j, t := range o.outs {
		o.fields = append(o.fields, rowField{key: t.Name, out: j})
	}
	slices.SortFunc(o.fields, func(a, b rowField) int { return cmp.Compare(a.key, b.key) })
	return appendJSONList(b, '{', '}', o.fields, func(b []byte, f rowField) ([]byte, bool) {
		b, ok := appendSimpleString(b, f.key)
		if !ok {
			return b, false
		}
		b = append(b, ':')
		switch {
		case f.out >= 0:
			return o.appendValue(b, f.out, k)
		case f.flat:
			return appendSpan(b, f.sp)
		}
		return appendJSONValue(b, f.v)
	})
}

// appendSpan writes a flat row's value as appendJSONValue writes span.value() of it.
func appendSpan(b []byte, v span) ([]byte, bool) {
	switch v.kind {
	case '0':
		return append(b, v.raw...), true // a number as the scanner found it, as json.Number writes
	case '[': // without the whitespace the list may have had, as encoding/json writes it
		sep := byte('[')
		eachNumber(v.raw, func(n string) bool {
			b = append(append(b, sep), n...)
			sep = ','
			return true
		})
		return append(b, ']'), true
	case '"':
		return appendSimpleString(b, v.raw)
	case 't', 'f':
		return strconv.AppendBool(b, v.kind == 't'), true
	}
	return append(b, "null"...), true
}

// appendValue writes row k's piece of output j as appendJSONValue writes Value of it:
// a scalar for one element, else a list.
func (o *OutputRows) appendValue(b []byte, j, k int) ([]byte, bool) {
	t, inner := o.outs[j], o.inner[j]
	size := t.DType.Size()
	data := t.Data[k*inner*size : (k+1)*inner*size]
	elem := func(b []byte, i int) ([]byte, bool) { return appendElement(b, t.DType, data[i*size:(i+1)*size]) }
	if inner == 1 {
		return elem(b, 0)
	}
	b = append(b, '[')
	for i := range inner {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = elem(b, i); !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}

// appendElement writes one element as Value types it: FP32, FP16 and BF16 as float32,
// FP64 as float64, BOOL, unsigned and signed integers.
func appendElement(b []byte, dt tensor.DType, e []byte) ([]byte, bool) {
	switch dt {
	case tensor.FP32, tensor.FP16, tensor.BF16:
		return appendJSONFloat(b, float64(float32At(dt, e)), 32)
	case tensor.FP64:
		return appendJSONFloat(b, math.Float64frombits(binary.LittleEndian.Uint64(e)), 64)
	case tensor.Bool:
		return strconv.AppendBool(b, e[0] != 0), true
	case tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64:
		return strconv.AppendUint(b, uintAt(e, len(e)), 10), true
	}
	return strconv.AppendInt(b, intAt(e, len(e)), 10), true
}
