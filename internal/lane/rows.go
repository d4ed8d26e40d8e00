package lane

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2json"
)

// Row is one row: field name -> value. Values are what encoding/json decodes (with or
// without UseNumber), Go scalars (float32/64, signed and unsigned integers, bool,
// string, []byte for a BYTES element) or slices of them; a field filling a multi-element
// input holds a flat or nested slice.
type Row map[string]any

// ErrFull is Builder.Add's answer when the row does not fit the request being built:
// it already holds MaxBatch rows, or the row sets a variable dimension differently from
// the rows before it. Flush (Request) and add the row again.
var ErrFull = errors.New("lane: the request is full")

// RowError is a row that cannot become model input; Field names the field at fault.
type RowError struct {
	Field  string
	Input  string
	Reason string
}

func (e *RowError) Error() string {
	return fmt.Sprintf("field %q (input %q): %s", e.Field, e.Input, e.Reason)
}

// Builder gathers rows into one batched request, input by input.
type Builder struct {
	s      *Schema
	data   [][]byte
	shapes []tensor.Shape // each input's per-row shape, variable dimensions set by the first row
	n      int
	vals   []byte // one row's encoded input, before it is known to be whole
	// One row's inputs and shapes while Add checks them: kept so that a row costs no
	// allocation of its own.
	enc  [][]byte
	shp  []tensor.Shape
	ends []int
	// borrowed: data[i] is the caller's memory (rows AddEncoded took where they lie).
	borrowed []bool
	// AddFlat's: each field the model reads -> its places among all inputs' sources,
	// and one row's values in those places.
	places map[string][]int
	flat   []span
}

// NewBuilder starts an empty request for the schema's model.
func (s *Schema) NewBuilder() *Builder {
	k := len(s.Inputs)
	return &Builder{s: s, data: make([][]byte, k), shapes: make([]tensor.Shape, k), enc: make([][]byte, k), shp: make([]tensor.Shape, k), ends: make([]int, k), borrowed: make([]bool, k)}
}

// Len is the number of rows added since the last Request.
func (b *Builder) Len() int { return b.n }

// Add appends a row. A row that cannot be converted leaves the request as it was and
// returns a *RowError; ErrFull asks the caller to flush first.
func (b *Builder) Add(r Row) error {
	if b.n >= b.s.MaxBatch {
		return ErrFull
	}
	b.vals = b.vals[:0]
	for i, in := range b.s.Inputs {
		count := int64(0)
		for _, f := range b.s.sources[i] {
			v, ok := r[f]
			if !ok || v == nil {
				return &RowError{Field: f, Input: in.Name, Reason: "missing"}
			}
			var n int64
			var err error
			if b.vals, n, err = appendValues(b.vals, in.DType, v); err != nil {
				return &RowError{Field: f, Input: in.Name, Reason: err.Error()}
			}
			count += n
		}
		shape, err := rowShape(in.Shape, count)
		if err != nil {
			return b.s.countError(i, err)
		}
		b.shp[i], b.ends[i] = shape, len(b.vals)
	}
	return b.appendVals()
}

// appendVals appends the row Add or AddFlat encoded in b.vals, b.ends and b.shp.
func (b *Builder) appendVals() error {
	// b.vals may have moved while it grew: cut the inputs out once it is whole.
	start := 0
	for i, end := range b.ends {
		b.enc[i], start = b.vals[start:end], end
	}
	return b.append(b.enc, b.shp, false)
}

// AddFlat is Add of the row flatRow decodes from body, without making that row: the
// fields the model reads go straight into their inputs, and the fields the output
// passes through are appended to kept, as written. pass names those fields; nil passes
// every field the model does not read. It takes the streaming lanes' common messages,
// flat objects whose model fields are all numbers or lists of numbers (a feature
// vector) for numeric inputs; for any other it adds nothing and answers ok false, and
// the caller decodes and adds it the general way, which also words its errors. err is
// ErrFull as Add's: flush, then add again.
//
// Decoding into a Row boxed every value and hashed every field into a map that the
// lane read back once; BenchmarkAddFlat measures the difference.
func (b *Builder) AddFlat(body []byte, pass map[string]bool, kept []Field) (_ []Field, ok bool, err error) {
	if b.n >= b.s.MaxBatch {
		return kept, true, ErrFull
	}
	start := len(kept)
	kept, ok = b.readFlat(body, pass, kept)
	if !ok {
		return kept, false, nil
	}
	if err := b.appendVals(); err != nil {
		return kept[:start], true, err
	}
	return kept, true, nil
}

// readFlat is AddFlat short of adding the row: it encodes the row into b.vals, b.ends
// and b.shp (encodeFlat) and appends the fields pass lets through to kept. For a row
// AddFlat does not take it answers false and kept as it was.
func (b *Builder) readFlat(body []byte, pass map[string]bool, kept []Field) ([]Field, bool) {
	if b.places == nil {
		b.indexPlaces()
	}
	clear(b.flat)
	start := len(kept)
	if !eachFlatField(string(body), func(key string, v span) {
		places, reads := b.places[key]
		for _, k := range places {
			b.flat[k] = v
		}
		if Passes(pass, key, reads) {
			kept = keepField(kept, start, Field{key, v})
		}
	}) || !b.encodeFlat() {
		return kept[:start], false
	}
	return kept, true
}

// encodeFlat encodes the row in b.flat into b.vals, b.ends and b.shp, as Add would;
// false for a row Add is to take (a value that is missing, null, not a number, or out
// of its input's range; a BYTES or BOOL input; a count the input's shape refuses). A
// list of numbers gives its elements, as Add flattens a slice.
func (b *Builder) encodeFlat() bool {
	b.vals = b.vals[:0]
	k := 0
	for i, in := range b.s.Inputs {
		if in.DType == tensor.Bytes || in.DType == tensor.Bool {
			return false
		}
		count := int64(0)
		number := func(n string) bool {
			var err error
			b.vals, err = v2json.AppendNumber(b.vals, in.DType, json.Number(n))
			count++
			return err == nil
		}
		for range b.s.sources[i] {
			v := b.flat[k]
			k++
			switch {
			case v.kind == '0' && number(v.raw):
			case v.kind == '[' && eachNumber(v.raw, number):
			default:
				return false
			}
		}
		shape, err := rowShape(in.Shape, count)
		if err != nil {
			return false
		}
		b.shp[i], b.ends[i] = shape, len(b.vals)
	}
	return true
}

// Passes says whether a row's field f goes to its output row: the fields pass names,
// or, when pass is nil, every field the model does not read (reads).
func Passes(pass map[string]bool, f string, reads bool) bool {
	return pass[f] || pass == nil && !reads
}

// Field is one field a row passes through to its output, as AddFlat read it.
type Field struct {
	Key string
	v   span
}

// keepField appends f to the row's fields kept[start:], or replaces the one of its key:
// in a row, as in a map, the last of duplicate fields counts.
func keepField(kept []Field, start int, f Field) []Field {
	for i := start; i < len(kept); i++ {
		if kept[i].Key == f.Key {
			kept[i] = f
			return kept
		}
	}
	return append(kept, f)
}

// FieldsRow is the Row of fields, as flatRow would have decoded them: for a row that
// AddFlat took but whose output takes the general way.
func FieldsRow(fields []Field) Row {
	row := make(Row, len(fields))
	for _, f := range fields {
		row[f.Key] = f.v.value()
	}
	return row
}

// indexPlaces numbers the inputs' sources in Add's order and indexes them by field.
func (b *Builder) indexPlaces() {
	b.places = map[string][]int{}
	k := 0
	for _, fields := range b.s.sources {
		for _, f := range fields {
			b.places[f] = append(b.places[f], k)
			k++
		}
	}
	b.flat = make([]span, k)
}

// AddEncoded appends a row given as each input's elements already encoded as a request
// carries them (little-endian, the input's type; what AppendNumbers writes): a columnar
// reader fills them straight from its columns. The shapes are checked as Add checks
// them, with the same errors, the field named being the input's first. Inputs of
// BYTES cannot come this way: their elements have no fixed size.
//
// The request uses the bytes where they lie, without a copy, while each row's follow
// the previous row's in one array (and row[i]'s capacity reaches them): the caller
// must leave them unchanged until the request has been scored.
func (b *Builder) AddEncoded(row [][]byte) error {
	if b.n >= b.s.MaxBatch {
		return ErrFull
	}
	for i, in := range b.s.Inputs {
		size := in.DType.Size()
		if size == 0 {
			return &RowError{Field: b.s.sources[i][0], Input: in.Name, Reason: fmt.Sprintf("%s values cannot come encoded", in.DType)}
		}
		if len(row[i])%size != 0 {
			return &RowError{Field: b.s.sources[i][0], Input: in.Name, Reason: fmt.Sprintf("%d bytes are no whole number of %s values", len(row[i]), in.DType)}
		}
		shape, err := rowShape(in.Shape, int64(len(row[i])/size))
		if err != nil {
			return b.s.countError(i, err)
		}
		b.shp[i] = shape
	}
	return b.append(row, b.shp, true)
}

// append adds a checked row's inputs, unless their shapes differ from the request's.
// kept: the row's bytes are the caller's (AddEncoded), which the request may use where
// they lie.
func (b *Builder) append(encoded [][]byte, shapes []tensor.Shape, kept bool) error {
	if b.n > 0 {
		for i := range shapes {
			if !shapes[i].Equal(b.shapes[i]) {
				return ErrFull
			}
		}
	}
	for i, enc := range encoded {
		b.data[i] = b.extend(i, enc, kept)
	}
	copy(b.shapes, shapes)
	b.n++
	return nil
}

// extend is input i's data with one more row's bytes. While each kept row follows the
// one before in memory, as the rows of a columnar reader's buffer do, the request is
// those bytes themselves and copies nothing; otherwise the builder copies into memory
// of its own, and never appends into the caller's.
func (b *Builder) extend(i int, enc []byte, kept bool) []byte {
	d := b.data[i]
	if kept && b.n == 0 {
		b.borrowed[i] = true
		return enc
	}
	if b.borrowed[i] {
		if kept && follows(d, enc) {
			return d[:len(d)+len(enc)]
		}
		b.borrowed[i] = false
		d = append(make([]byte, 0, max(b.s.MaxBatch*len(enc), len(d)+len(enc))), d...)
	}
	if b.n == 1 && cap(d)-len(d) < len(enc) {
		// A second row: make room for a full request at once rather than copying
		// as it grows (a request of one row, as a quiet stream sends, stays small).
		d = slices.Grow(d, (b.s.MaxBatch-1)*len(enc))
	}
	return append(d, enc...)
}

// follows reports whether enc starts where d ends, in the same array.
func follows(d, enc []byte) bool {
	return len(enc) > 0 && cap(d)-len(d) >= len(enc) && &d[:len(d)+1][len(d)] == &enc[0]
}

// Request hands over the rows added so far as one request for the schema's model and
// version, and empties the builder.
func (b *Builder) Request(id string) *core.InferRequest {
	req := &core.InferRequest{Model: b.s.Model, Version: b.s.Version, ID: id}
	for i, in := range b.s.Inputs {
		shape := b.shapes[i]
		if b.s.Batching {
			shape = append(tensor.Shape{int64(b.n)}, shape...)
		}
		data := b.data[i]
		req.Inputs = append(req.Inputs, &tensor.Tensor{Name: in.Name, DType: in.DType, Shape: shape, Data: data[:len(data):len(data)]})
		b.data[i], b.borrowed[i] = nil, false
	}
	b.n = 0
	return req
}

// countError is the *RowError of a row whose fields give input i a count of elements
// its shape cannot take.
func (s *Schema) countError(i int, err error) *RowError {
	return &RowError{Field: s.sources[i][0], Input: s.Inputs[i].Name, Reason: err.Error()}
}

// CountError is the *RowError Add returns for a row whose fields give input i count
// elements in all, or nil when that many fill the input's shape: a columnar reader
// checks a row with it without making the row.
func (s *Schema) CountError(i int, count int64) error {
	if _, err := rowShape(s.Inputs[i].Shape, count); err != nil {
		return s.countError(i, err)
	}
	return nil
}

// AppendNumbers appends xs as dt, converted as Add converts a field holding them: an
// element that does not fit dt is an error naming it, which Add would give as the
// Reason of its *RowError.
func AppendNumbers[T float32 | float64 | int32 | int64](dst []byte, dt tensor.DType, xs []T) ([]byte, error) {
	var err error
	switch x := any(xs).(type) {
	case []float32:
		dst, _, err = appendValues(dst, dt, x)
	case []float64:
		dst, _, err = appendValues(dst, dt, x)
	case []int32:
		dst, _, err = appendValues(dst, dt, x)
	case []int64:
		dst, _, err = appendValues(dst, dt, x)
	}
	return dst, err
}

// rowShape sets a per-row shape's variable dimension (at most one) from the number of
// elements a row gave, or checks the count against a fixed shape.
func rowShape(model tensor.Shape, count int64) (tensor.Shape, error) {
	known, free := int64(1), -1
	for i, d := range model {
		if d < 0 {
			if free >= 0 {
				return nil, fmt.Errorf("shape %v has more than one variable dimension; a row cannot set them", model)
			}
			free = i
			continue
		}
		known *= d
	}
	if free < 0 {
		if count != known {
			return nil, fmt.Errorf("want %d value(s) for shape %v, got %d", known, model, count)
		}
		return model, nil
	}
	if known == 0 || count%known != 0 || count == 0 {
		return nil, fmt.Errorf("%d value(s) do not fill shape %v", count, model)
	}
	shape := model.Clone()
	shape[free] = count / known
	return shape, nil
}

// appendValues appends v's elements (a scalar, or a slice to any depth) as dt and
// returns how many it appended.
func appendValues(dst []byte, dt tensor.DType, v any) ([]byte, int64, error) {
	switch x := v.(type) {
	case []any:
		total := int64(0)
		for _, e := range x {
			var n int64
			var err error
			if dst, n, err = appendValues(dst, dt, e); err != nil {
				return dst, 0, err
			}
			total += n
		}
		return dst, total, nil
	case []float32:
		if dt == tensor.FP32 { // the common case (a Parquet list of floats), without a conversion per element
			n := len(dst)
			dst = slices.Grow(dst, 4*len(x))[:n+4*len(x)]
			out := dst[n:]
			for k, f := range x {
				binary.LittleEndian.PutUint32(out[4*k:], math.Float32bits(f))
			}
			return dst, int64(len(x)), nil
		}
		return appendEach(dst, dt, x, func(f float32) float64 { return float64(f) })
	case []float64:
		return appendEach(dst, dt, x, func(f float64) float64 { return f })
	case []int64:
		return appendEachInt(dst, dt, x)
	case []int32:
		return appendEachInt(dst, dt, x)
	case []int:
		return appendEachInt(dst, dt, x)
	case []string:
		for _, s := range x {
			if dt != tensor.Bytes {
				return dst, 0, fmt.Errorf("string %q for a %s value", s, dt)
			}
			dst = tensor.AppendBytesElement(dst, []byte(s))
		}
		return dst, int64(len(x)), nil
	case nil:
		return dst, 0, errors.New("null value")
	}
	dst, err := appendScalar(dst, dt, v)
	return dst, 1, err
}

func appendEach[T any](dst []byte, dt tensor.DType, xs []T, f func(T) float64) ([]byte, int64, error) {
	for _, x := range xs {
		var err error
		if dst, err = appendFloat(dst, dt, f(x)); err != nil {
			return dst, 0, err
		}
	}
	return dst, int64(len(xs)), nil
}

func appendEachInt[T int | int32 | int64](dst []byte, dt tensor.DType, xs []T) ([]byte, int64, error) {
	for _, x := range xs {
		var err error
		if dst, err = appendInt(dst, dt, int64(x)); err != nil {
			return dst, 0, err
		}
	}
	return dst, int64(len(xs)), nil
}

// appendScalar appends one element. Decoded JSON (json.Number, string, bool) takes the
// V2 JSON rules; Go numbers take the same rules without a trip through text.
func appendScalar(dst []byte, dt tensor.DType, v any) ([]byte, error) {
	switch x := v.(type) {
	case json.Number, string, bool:
		return v2json.AppendValue(dst, dt, x)
	case []byte:
		if dt != tensor.Bytes {
			return dst, fmt.Errorf("bytes for a %s value", dt)
		}
		return tensor.AppendBytesElement(dst, x), nil
	case float64:
		return appendFloat(dst, dt, x)
	case float32:
		return appendFloat(dst, dt, float64(x))
	case int:
		return appendInt(dst, dt, int64(x))
	case int8:
		return appendInt(dst, dt, int64(x))
	case int16:
		return appendInt(dst, dt, int64(x))
	case int32:
		return appendInt(dst, dt, int64(x))
	case int64:
		return appendInt(dst, dt, x)
	case uint8:
		return appendInt(dst, dt, int64(x))
	case uint16:
		return appendInt(dst, dt, int64(x))
	case uint32:
		return appendInt(dst, dt, int64(x))
	case uint64:
		if x > math.MaxInt64 {
			return v2json.AppendValue(dst, dt, json.Number(strconv.FormatUint(x, 10)))
		}
		return appendInt(dst, dt, int64(x))
	}
	return dst, fmt.Errorf("%T value %v does not fit a %s value", v, v, dt)
}

func appendFloat(dst []byte, dt tensor.DType, f float64) ([]byte, error) {
	le := binary.LittleEndian
	switch dt {
	case tensor.FP32:
		return le.AppendUint32(dst, math.Float32bits(float32(f))), nil
	case tensor.FP64:
		return le.AppendUint64(dst, math.Float64bits(f)), nil
	case tensor.FP16:
		h, _ := tensor.FP16FromFloat64(f)
		return le.AppendUint16(dst, h), nil
	case tensor.BF16:
		h, _ := tensor.BF16FromFloat64(f)
		return le.AppendUint16(dst, h), nil
	case tensor.Bytes, tensor.Bool:
		return dst, fmt.Errorf("number %v for a %s value", f, dt)
	}
	if f != math.Trunc(f) || math.IsInf(f, 0) || math.Abs(f) >= 1<<63 {
		return dst, fmt.Errorf("%v for a %s value: not an integer in range", f, dt)
	}
	return appendInt(dst, dt, int64(f))
}

func appendInt(dst []byte, dt tensor.DType, i int64) ([]byte, error) {
	switch dt {
	case tensor.FP16, tensor.BF16, tensor.FP32, tensor.FP64:
		return appendFloat(dst, dt, float64(i))
	case tensor.Bytes, tensor.Bool:
		return dst, fmt.Errorf("number %d for a %s value", i, dt)
	}
	// The V2 JSON rules check the range per type; integers are rare enough in lanes
	// that going through text costs nothing that matters.
	return v2json.AppendValue(dst, dt, json.Number(strconv.FormatInt(i, 10)))
}
