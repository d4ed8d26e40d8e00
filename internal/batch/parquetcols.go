package batch

import (
	"encoding/binary"
	"fmt"

	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/parquet-go/parquet-go"
)

// colPlan is how a Parquet input fills the model's inputs column by column, with no
// lane.Row per row: every input takes a fixed number of elements of a fixed-size
// number type, from one list column (or one number column for a one-element input) or
// from as many number columns as it has elements. The rows' inputs are encoded straight
// from the pages into one buffer per input; a row that cannot fill its inputs gets the
// *lane.RowError that lane.Builder.Add would have given it.
type colPlan struct {
	s      *lane.Schema
	inputs []colInput
	ids    int // id columns, read after the fields
}

// colInput is one model input's part of a colPlan.
type colInput struct {
	dt       tensor.DType
	elems    int // per row
	rowBytes int // elems times the type's size
	first    int // index of the input's first field among the reader's cursors
	fields   []string
	list     bool // one repeated column fills the input
}

// planColumns is the plan for reading src into s's inputs, or nil when some input needs
// the row path (BYTES or BOOL, a variable dimension, lists split over several columns,
// columns of other types): that path handles every case, the plan only the common
// ones. Its cursors are src.wanted's: s.Fields(), then the id columns.
func planColumns(s *lane.Schema, src *parquetSource, ids int) *colPlan {
	p := &colPlan{s: s, ids: ids}
	first := 0
	for i, in := range s.Inputs {
		fields := s.InputFields(i)
		n, err := in.Shape.NumElements()
		if err != nil || n <= 0 || in.DType.Size() == 0 || in.DType == tensor.Bool {
			return nil
		}
		ci := colInput{dt: in.DType, elems: int(n), rowBytes: int(n) * in.DType.Size(), first: first, fields: fields}
		for _, f := range fields {
			leaf, ok := src.leaves[f]
			if !ok || !numberKind(leaf.Node.Type().Kind()) {
				return nil
			}
			ci.list = ci.list || leaf.MaxRepetitionLevel > 0
		}
		one := len(fields) == 1 && (ci.list || n == 1)
		scalars := len(fields) == int(n) && !ci.list
		if !one && !scalars {
			return nil
		}
		p.inputs = append(p.inputs, ci)
		first += len(fields)
	}
	return p
}

func numberKind(k parquet.Kind) bool {
	return k == parquet.Float || k == parquet.Double || k == parquet.Int32 || k == parquet.Int64
}

// newRecords are n records whose inputs and ids point into buffers made for them in
// one go, rather than row by row.
func (p *colPlan) newRecords(n int) []record {
	recs := make([]record, n)
	k := len(p.inputs)
	enc := make([][]byte, n*k)
	for i, in := range p.inputs {
		buf := make([]byte, n*in.rowBytes)
		for r := range recs {
			// The capacity runs on to the buffer's end: a request of consecutive rows
			// is then a slice of the buffer (lane.Builder.AddEncoded), not a copy.
			enc[r*k+i] = buf[r*in.rowBytes : (r+1)*in.rowBytes]
		}
	}
	ids := make([]any, n*p.ids)
	for r := range recs {
		recs[r].enc = enc[r*k : (r+1)*k : (r+1)*k]
		recs[r].ids = ids[r*p.ids : (r+1)*p.ids : (r+1)*p.ids]
	}
	return recs
}

// read fills recs, the next len(recs) rows of the open row group, column by column.
// The inputs and their fields go in the order Add checks them, and a row keeps its
// first error, so it is rejected with the error the row path would give it.
func (p *colPlan) read(cols []*colCursor, recs []record) error {
	var row numRow
	for i, in := range p.inputs {
		for k, f := range in.fields {
			c := cols[in.first+k]
			for r := range recs {
				if err := c.numbers(&row); err != nil {
					return fmt.Errorf("column %q: %w", f, err)
				}
				if recs[r].err == nil {
					recs[r].err = p.fill(recs[r].enc[i], i, k, &row)
				}
			}
		}
	}
	idFrom := len(p.s.Fields())
	for k := range p.ids {
		c := cols[idFrom+k]
		if c == nil { // a group column: no value a row can give
			continue
		}
		for r := range recs {
			v, err := c.value()
			if err != nil {
				return fmt.Errorf("column %q: %w", c.name, err)
			}
			recs[r].ids[k] = v
		}
	}
	return nil
}

// fill writes field k of input i of one row into dst, the row's bytes of the input.
func (p *colPlan) fill(dst []byte, i, k int, row *numRow) error {
	in := p.inputs[i]
	field, name := in.fields[k], p.s.Inputs[i].Name
	if row.null {
		return &lane.RowError{Field: field, Input: name, Reason: "missing"}
	}
	size := in.dt.Size()
	// The row's own part of the buffer, capped: a list too long for it is written
	// elsewhere by append, never over the next row.
	at := dst[k*size : k*size : len(dst)]
	if row.raw != nil && in.dt == tensor.FP32 {
		copy(at[:min(len(row.raw), cap(at))], row.raw) // the floats as they are; a long list is rejected below
	} else if _, err := row.appendTo(at, in.dt); err != nil {
		return &lane.RowError{Field: field, Input: name, Reason: err.Error()}
	}
	if n := row.len(); in.list && n != in.elems {
		return p.s.CountError(i, int64(n))
	}
	return nil
}

// numRow is one row's defined elements of a number column, as its pages hold them:
// f32 for FLOAT (a slice of the page itself when the row lies in one page), f64 for
// DOUBLE, i64 for INT32 and INT64. null is a flat column's null.
type numRow struct {
	kind parquet.Kind
	f32  []float32
	f64  []float64
	i64  []int64
	null bool
	own  []float32 // f32's storage when the row is not one slice of a page
	// raw is f32's bytes in the page when they are FP32 request data as they lie (a
	// little-endian machine): an FP32 input copies them whole.
	raw []byte
}

// littleEndian: the machine's float32s are laid out as V2 request data.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func (r *numRow) reset(kind parquet.Kind) {
	r.kind, r.null = kind, false
	r.own, r.f64, r.i64 = r.own[:0], r.f64[:0], r.i64[:0]
	r.f32, r.raw = r.own, nil
}

func (r *numRow) len() int { return len(r.f32) + len(r.f64) + len(r.i64) }

// add appends one value read from a page that is not a plain FLOAT page.
func (r *numRow) add(v parquet.Value) {
	switch r.kind {
	case parquet.Float:
		r.own = append(r.own, v.Float())
		r.f32 = r.own
	case parquet.Double:
		r.f64 = append(r.f64, v.Double())
	case parquet.Int32:
		r.i64 = append(r.i64, int64(v.Int32()))
	default:
		r.i64 = append(r.i64, v.Int64())
	}
}

// appendTo appends the elements as dt, converted as lane.Builder.Add converts them.
func (r *numRow) appendTo(dst []byte, dt tensor.DType) ([]byte, error) {
	switch r.kind {
	case parquet.Float:
		return lane.AppendNumbers(dst, dt, r.f32)
	case parquet.Double:
		return lane.AppendNumbers(dst, dt, r.f64)
	}
	return lane.AppendNumbers(dst, dt, r.i64)
}

// numbers reads the next row of a number column into row.
func (c *colCursor) numbers(row *numRow) error {
	if c.li >= c.n {
		if err := c.load(); err != nil {
			return err
		}
	}
	row.reset(c.kind)
	if c.leaf.MaxRepetitionLevel == 0 {
		i := c.li
		c.li++
		switch {
		case !c.defined(i):
			row.null = true
		case c.floats != nil:
			row.own = append(row.own, c.floats[c.vi])
			row.f32 = row.own
			c.vi++
		default:
			row.add(c.vals[i])
		}
		return nil
	}
	spans := 0
	return c.rowSpans(func(l0, l1, v0, v1 int) {
		spans++
		if c.floats == nil {
			for i := l0; i < l1; i++ {
				if c.defined(i) {
					row.add(c.vals[i])
				}
			}
			return
		}
		if spans == 1 && l1 < c.n { // the whole row in one page: no copy
			row.f32 = c.floats[v0:v1:v1]
			if littleEndian && len(c.raw) == 4*len(c.floats) {
				row.raw = c.raw[4*v0 : 4*v1 : 4*v1]
			}
			return
		}
		row.own = append(row.own, c.floats[v0:v1]...)
		row.f32 = row.own
	})
}
