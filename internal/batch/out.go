package batch

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/parquet-go/parquet-go"
)

// outKind is an output column's element type.
type outKind int

const (
	kString outKind = iota
	kInt64
	kUint64
	kFloat32
	kFloat64
	kBool
)

// outCol is one output column: the id columns, then one per model output.
type outCol struct {
	name string
	kind outKind
	list bool // several values per row
	id   bool // an id column: may be null
	per  int  // values per row, as far as known (a list of a variable length: 1)
}

// outColumns plans the output: ids (their types from the input), then each model output,
// a list when a row's piece holds other than exactly one element.
func outColumns(ids []string, idType func(string) idType, outs []lane.Column) []outCol {
	var cols []outCol
	for _, id := range ids {
		k := [...]outKind{idString: kString, idInt64: kInt64, idFloat64: kFloat64, idBool: kBool}[idType(id)]
		cols = append(cols, outCol{name: id, kind: k, id: true, per: 1})
	}
	for _, o := range outs {
		n, err := o.Shape.NumElements() // an error: a variable dimension
		cols = append(cols, outCol{name: o.Name, kind: kindOf(o.DType), list: err != nil || n != 1, per: max(int(n), 1)})
	}
	return cols
}

func kindOf(dt tensor.DType) outKind {
	switch dt {
	case tensor.FP32, tensor.FP16, tensor.BF16:
		return kFloat32
	case tensor.FP64:
		return kFloat64
	case tensor.Bool:
		return kBool
	case tensor.Bytes:
		return kString
	case tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64:
		return kUint64
	}
	return kInt64
}

// partWriter writes rows (one value per column, nil for a null id) to one file.
type partWriter interface {
	Write(vals []any) error
	Close() error // flushes; the file itself is the caller's
}

func newPartWriter(f format, w io.Writer, cols []outCol) partWriter {
	switch f {
	case fmtParquet:
		return newParquetPart(w, cols)
	case fmtCSV:
		return &textPart{w: bufio.NewWriterSize(w, 256<<10), cols: cols, csv: true}
	}
	return &textPart{w: bufio.NewWriterSize(w, 256<<10), cols: cols}
}

// textPart writes CSV rows (without the header: the final file gets one) or JSON lines.
type textPart struct {
	w    *bufio.Writer
	cols []outCol
	csv  bool
	buf  []byte
}

func (t *textPart) Write(vals []any) error {
	b := t.buf[:0]
	if !t.csv {
		b = append(b, '{')
	}
	for i, c := range t.cols {
		if i > 0 {
			b = append(b, ',')
		}
		if t.csv {
			b = appendCSV(b, vals[i])
			continue
		}
		b = strconv.AppendQuote(b, c.name)
		b = append(b, ':')
		b = appendJSON(b, vals[i])
	}
	if !t.csv {
		b = append(b, '}')
	}
	b = append(b, '\n')
	t.buf = b
	_, err := t.w.Write(b)
	return err
}

func (t *textPart) Close() error { return t.w.Flush() }

// csvHeader is the header line of a CSV output.
func csvHeader(cols []outCol) []byte {
	var b []byte
	for i, c := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCSV(b, c.name)
	}
	return append(b, '\n')
}

// appendCSV writes a cell: text quoted when it must be, lists as JSON arrays.
func appendCSV(b []byte, v any) []byte {
	var s string
	switch x := v.(type) {
	case nil:
		return b
	case string:
		s = x
	case json.Number:
		s = string(x)
	default:
		s = string(appendJSON(nil, v))
	}
	if !strings.ContainsAny(s, ",\"\r\n") {
		return append(b, s...)
	}
	return append(append(b, '"'), strings.ReplaceAll(s, `"`, `""`)+`"`...)
}

// appendJSON writes a value as JSON; a float that is not finite becomes null, which
// JSON has no number for.
func appendJSON(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return append(b, "null"...)
		}
		return strconv.AppendFloat(b, float64(x), 'g', -1, 32)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return append(b, "null"...)
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case bool:
		return strconv.AppendBool(b, x)
	case string:
		enc, _ := json.Marshal(x)
		return append(b, enc...)
	case json.Number:
		return append(b, x...)
	case []float32:
		return appendList(b, x)
	case []float64:
		return appendList(b, x)
	case []int64:
		return appendList(b, x)
	case []uint64:
		return appendList(b, x)
	case []bool:
		return appendList(b, x)
	case []string:
		return appendList(b, x)
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return strconv.AppendQuote(b, fmt.Sprint(v))
	}
	return append(b, enc...)
}

func appendList[T any](b []byte, xs []T) []byte {
	b = append(b, '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSON(b, x)
	}
	return append(b, ']')
}

// parquetPart writes rows to a Parquet file, columns in plan order. Rows gather column
// by column and go to the file a column at a time: no parquet.Row per row.
type parquetPart struct {
	w    *parquet.Writer
	cols []outCol
	def  []int             // each column's max definition level
	vals [][]parquet.Value // per column, the values of the rows not yet written
	rows int               // rows in vals
}

// partFlushRows is how many rows a parquetPart gathers before writing them.
const partFlushRows = 1024

func newParquetPart(w io.Writer, cols []outCol) *parquetPart {
	schema := outSchema(cols)
	p := &parquetPart{w: parquet.NewWriter(w, schema, parquet.Compression(&parquet.Snappy)), cols: cols, vals: make([][]parquet.Value, len(cols))}
	for i, path := range schema.Columns() {
		leaf, _ := schema.Lookup(path...)
		p.def = append(p.def, leaf.MaxDefinitionLevel)
		p.vals[i] = make([]parquet.Value, 0, min(partFlushRows*cols[i].per, 1<<16)) // large outputs grow as they come
	}
	return p
}

// outSchema is the output's Parquet schema, columns in plan order (parquet.Group would
// sort them by name).
func outSchema(cols []outCol) *parquet.Schema {
	g := orderedGroup{Group: parquet.Group{}}
	for _, c := range cols {
		n := leafOf(c.kind)
		switch {
		case c.list:
			n = parquet.List(n)
		case c.id:
			n = parquet.Optional(n)
		}
		g.Group[c.name] = n
		g.fields = append(g.fields, namedField{Node: n, name: c.name})
	}
	return parquet.NewSchema("batch", g)
}

func leafOf(k outKind) parquet.Node {
	switch k {
	case kInt64:
		return parquet.Leaf(parquet.Int64Type)
	case kUint64:
		return parquet.Uint(64)
	case kFloat32:
		return parquet.Leaf(parquet.FloatType)
	case kFloat64:
		return parquet.Leaf(parquet.DoubleType)
	case kBool:
		return parquet.Leaf(parquet.BooleanType)
	}
	return parquet.String()
}

type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

func (g orderedGroup) Fields() []parquet.Field { return g.fields }

type namedField struct {
	parquet.Node
	name string
}

func (f namedField) Name() string { return f.name }

// Value is for writing Go structs, which a batch job never does.
func (f namedField) Value(reflect.Value) reflect.Value { return reflect.Value{} }

func (p *parquetPart) Write(vals []any) error {
	for i, c := range p.cols {
		p.vals[i] = p.appendValue(p.vals[i], i, c, vals[i])
	}
	p.rows++
	if p.rows >= partFlushRows {
		return p.flush()
	}
	return nil
}

// appendValue appends column i's levelled values of one row.
func (p *parquetPart) appendValue(dst []parquet.Value, i int, c outCol, v any) []parquet.Value {
	if !c.list {
		if v == nil {
			return append(dst, parquet.Value{}.Level(0, 0, i))
		}
		return append(dst, parquetValue(c.kind, v).Level(0, p.def[i], i))
	}
	if fs, ok := v.([]float32); ok && c.kind == kFloat32 && len(fs) > 0 { // most outputs, without boxing each
		for k, f := range fs {
			dst = append(dst, parquet.FloatValue(f).Level(min(k, 1), p.def[i], i))
		}
		return dst
	}
	elems := elements(v)
	if len(elems) == 0 {
		return append(dst, parquet.Value{}.Level(0, p.def[i]-1, i))
	}
	for k, e := range elems {
		dst = append(dst, parquetValue(c.kind, e).Level(min(k, 1), p.def[i], i))
	}
	return dst
}

func (p *parquetPart) flush() error {
	if p.rows == 0 {
		return nil
	}
	for i, cw := range p.w.ColumnWriters() {
		if _, err := cw.WriteRowValues(p.vals[i]); err != nil {
			return fmt.Errorf("column %q: %w", p.cols[i].name, err)
		}
		p.vals[i] = p.vals[i][:0]
	}
	p.rows = 0
	return nil
}

func (p *parquetPart) Close() error {
	if err := p.flush(); err != nil {
		return err
	}
	return p.w.Close()
}

// elements is a list value's elements (a scalar is a list of one).
func elements(v any) []any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return []any{v}
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out
}

// parquetValue converts a value to the column's kind: ids come as the input gave them.
func parquetValue(k outKind, v any) parquet.Value {
	switch k {
	case kString:
		switch x := v.(type) {
		case string:
			return parquet.ValueOf(x)
		case json.Number:
			return parquet.ValueOf(string(x))
		}
		return parquet.ValueOf(string(appendJSON(nil, v)))
	case kFloat32:
		f, _ := toFloat(v)
		return parquet.ValueOf(float32(f))
	case kFloat64:
		f, _ := toFloat(v)
		return parquet.ValueOf(f)
	case kUint64:
		u, _ := v.(uint64)
		return parquet.ValueOf(u)
	case kBool:
		b, _ := v.(bool)
		return parquet.ValueOf(b)
	}
	switch x := v.(type) {
	case int64:
		return parquet.ValueOf(x)
	case int32:
		return parquet.ValueOf(int64(x))
	}
	f, _ := toFloat(v)
	return parquet.ValueOf(int64(f))
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}
