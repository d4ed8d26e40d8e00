package batch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/parquet-go/parquet-go"
)

// parquetSource is a Parquet file; shards are runs of whole row groups.
type parquetSource struct {
	f      *os.File
	pf     *parquet.File
	leaves map[string]parquet.LeafColumn // top-level field -> its one leaf column
	wanted []string                      // the fields a record keeps
}

func openParquet(path string) (*parquetSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(256<<10))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not a Parquet file: %w", path, err)
	}
	p := &parquetSource{f: f, pf: pf, leaves: map[string]parquet.LeafColumn{}}
	count := map[string]int{}
	for _, path := range pf.Schema().Columns() {
		count[path[0]]++
		if leaf, ok := pf.Schema().Lookup(path...); ok {
			p.leaves[path[0]] = leaf
		}
	}
	for name, n := range count {
		if n != 1 {
			delete(p.leaves, name) // a struct of several columns is no field a row can give
		}
	}
	return p, nil
}

func (p *parquetSource) Close() error { return p.f.Close() }

func (p *parquetSource) Columns() []string {
	var out []string
	for _, f := range p.pf.Schema().Fields() {
		out = append(out, f.Name())
	}
	return out
}

// Check fails naming a column whose Parquet type cannot fill its model input.
func (p *parquetSource) Check(fields map[string]lane.Column) error {
	for name, in := range fields {
		leaf, ok := p.leaves[name]
		if !ok {
			return fmt.Errorf("column %q is a group of several columns; input %q needs numbers, a list of them or text", name, in.Name)
		}
		kind := leaf.Node.Type().Kind()
		var fits bool
		switch {
		case in.DType == tensor.Bytes:
			fits = kind == parquet.ByteArray || kind == parquet.FixedLenByteArray
		case in.DType == tensor.Bool:
			fits = kind == parquet.Boolean
		default:
			fits = kind == parquet.Int32 || kind == parquet.Int64 || kind == parquet.Float || kind == parquet.Double
		}
		if !fits {
			return fmt.Errorf("column %q has Parquet type %s, which cannot fill input %q (%s)", name, leaf.Node.Type(), in.Name, in.DType)
		}
	}
	return nil
}

func (p *parquetSource) IDType(col string) idType {
	leaf, ok := p.leaves[col]
	if !ok || leaf.MaxRepetitionLevel > 0 {
		return idString
	}
	switch leaf.Node.Type().Kind() {
	case parquet.Int32, parquet.Int64:
		return idInt64
	case parquet.Float, parquet.Double:
		return idFloat64
	case parquet.Boolean:
		return idBool
	}
	return idString
}

// groups is the shard's run of row groups [from, to) and the row index of each
// group's first row.
func (p *parquetSource) groups(sh Shard) (from, to int, first []int64) {
	rgs := p.pf.RowGroups()
	w := sh.whole()
	from, to = len(rgs)*w.Index/w.Count, len(rgs)*(w.Index+1)/w.Count
	first = make([]int64, len(rgs)+1)
	for i, rg := range rgs {
		first[i+1] = first[i] + rg.NumRows()
	}
	return from, to, first
}

func (p *parquetSource) Span(sh Shard) (position, int64, error) {
	from, to, first := p.groups(sh)
	return position{Row: first[from]}, first[to] - first[from], nil
}

func (p *parquetSource) Read(sh Shard, pos position) (rowReader, error) {
	from, to, first := p.groups(sh)
	r := &parquetReader{p: p, g: from, to: to, first: first, next: pos.Row, slot: map[int]int{}}
	for i, f := range p.wanted {
		if leaf, ok := p.leaves[f]; ok {
			r.slot[leaf.ColumnIndex] = i
		}
	}
	for r.g < to && first[r.g+1] <= pos.Row {
		r.g++
	}
	return r, nil
}

// parquetReader reads rows group by group.
type parquetReader struct {
	p     *parquetSource
	g, to int
	first []int64
	rows  parquet.Rows // of group g, nil before it is opened
	next  int64        // index of the next row
	slot  map[int]int  // leaf column index -> index in wanted
	buf   []parquet.Row
}

func (r *parquetReader) Next(n int) ([]record, position, error) {
	var out []record
	for len(out) < n && r.g < r.to {
		if r.rows == nil {
			r.rows = r.p.pf.RowGroups()[r.g].Rows()
			if err := r.rows.SeekToRow(r.next - r.first[r.g]); err != nil {
				return nil, position{Row: r.next}, err
			}
		}
		if cap(r.buf) < n-len(out) {
			r.buf = make([]parquet.Row, n-len(out))
		}
		buf := r.buf[:min(n-len(out), int(r.first[r.g+1]-r.next))]
		k, err := r.rows.ReadRows(buf)
		for _, row := range buf[:k] {
			out = append(out, record{index: r.next, row: r.convert(row)})
			r.next++
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, position{Row: r.next}, err
		}
		if r.next >= r.first[r.g+1] || errors.Is(err, io.EOF) {
			r.rows.Close()
			r.rows = nil
			r.g++
			r.next = r.first[r.g]
		}
	}
	return out, position{Row: r.next}, nil
}

// convert picks the wanted fields out of a Parquet row: a scalar for a flat column
// (nil when null), a slice for a repeated one.
func (r *parquetReader) convert(row parquet.Row) lane.Row {
	out := make(lane.Row, len(r.p.wanted))
	for lo := 0; lo < len(row); {
		col := row[lo].Column()
		hi := lo + 1
		for hi < len(row) && row[hi].Column() == col {
			hi++
		}
		if i, ok := r.slot[col]; ok {
			name := r.p.wanted[i]
			leaf := r.p.leaves[name]
			if leaf.MaxRepetitionLevel == 0 {
				out[name] = scalar(row[lo])
			} else {
				out[name] = list(row[lo:hi], leaf.Node.Type().Kind(), leaf.MaxDefinitionLevel)
			}
		}
		lo = hi
	}
	return out
}

func scalar(v parquet.Value) any {
	if v.IsNull() {
		return nil
	}
	switch v.Kind() {
	case parquet.Boolean:
		return v.Boolean()
	case parquet.Int32:
		return int64(v.Int32())
	case parquet.Int64:
		return v.Int64()
	case parquet.Float:
		return v.Float()
	case parquet.Double:
		return v.Double()
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return string(v.ByteArray())
	}
	return v.String()
}

// list is a repeated column's values for one row; values defined below maxDef are
// an empty or null list, not elements.
func list(vs []parquet.Value, kind parquet.Kind, maxDef int) any {
	switch kind {
	case parquet.Float:
		return collect(vs, maxDef, parquet.Value.Float)
	case parquet.Double:
		return collect(vs, maxDef, parquet.Value.Double)
	case parquet.Int32:
		return collect(vs, maxDef, func(v parquet.Value) int64 { return int64(v.Int32()) })
	case parquet.Int64:
		return collect(vs, maxDef, parquet.Value.Int64)
	}
	return collect(vs, maxDef, scalar)
}

func collect[T any](vs []parquet.Value, maxDef int, at func(parquet.Value) T) []T {
	out := make([]T, 0, len(vs))
	for _, v := range vs {
		if v.DefinitionLevel() == maxDef && !v.IsNull() {
			out = append(out, at(v))
		}
	}
	return slices.Clip(out)
}
