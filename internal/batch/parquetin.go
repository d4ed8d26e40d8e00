package batch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

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
	plan   *colPlan                      // nil: records are read as rows
}

func openParquet(path string) (*parquetSource, error) {
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	pf, err := parquet.OpenFile(f, size, parquet.SkipBloomFilters(true), parquet.ReadBufferSize(256<<10))
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
	r := &parquetReader{p: p, g: from, to: to, first: first, next: pos.Row}
	for r.g < to && first[r.g+1] <= pos.Row {
		r.g++
	}
	return r, nil
}

// parquetReader reads the wanted columns of one row group after another, column by
// column and page by page: a list of floats comes out as a slice of its page's values,
// with no per-value work.
type parquetReader struct {
	p     *parquetSource
	g, to int
	first []int64
	cols  []*colCursor // of group g, nil before it is opened
	next  int64        // index of the next row
}

func (r *parquetReader) Next(n int) ([]record, position, error) {
	if r.p.plan != nil {
		return r.nextColumns(n)
	}
	var out []record
	for len(out) < n && r.g < r.to {
		if r.cols == nil {
			if err := r.open(); err != nil {
				return nil, position{Row: r.next}, err
			}
		}
		for len(out) < n && r.next < r.first[r.g+1] {
			row := make(lane.Row, len(r.cols))
			for _, c := range r.cols {
				if c == nil {
					continue
				}
				v, err := c.value()
				if err != nil {
					return nil, position{Row: r.next}, fmt.Errorf("column %q: %w", c.name, err)
				}
				row[c.name] = v
			}
			out = append(out, record{index: r.next, row: row})
			r.next++
		}
		if r.next >= r.first[r.g+1] {
			r.closeGroup()
			r.g++
		}
	}
	return out, position{Row: r.next}, nil
}

// nextColumns reads up to n rows as the plan says, column by column, a row group's
// part at a time.
func (r *parquetReader) nextColumns(n int) ([]record, position, error) {
	if r.g < r.to {
		n = int(min(int64(n), r.first[r.to]-r.next))
	} else {
		n = 0
	}
	if n <= 0 {
		return nil, position{Row: r.next}, nil
	}
	recs := r.p.plan.newRecords(n)
	for done := 0; done < n; {
		if r.cols == nil {
			if err := r.open(); err != nil {
				return nil, position{Row: r.next}, err
			}
		}
		m := int(min(int64(n-done), r.first[r.g+1]-r.next))
		part := recs[done : done+m]
		if err := r.p.plan.read(r.cols, part); err != nil {
			return nil, position{Row: r.next}, err
		}
		for k := range part {
			part[k].index = r.next + int64(k)
		}
		r.next += int64(m)
		done += m
		if r.next >= r.first[r.g+1] {
			r.closeGroup()
			r.g++
		}
	}
	return recs, position{Row: r.next}, nil
}

// open positions a cursor per wanted column at the next row of group g.
func (r *parquetReader) open() error {
	chunks := r.p.pf.RowGroups()[r.g].ColumnChunks()
	for _, name := range r.p.wanted {
		leaf, ok := r.p.leaves[name]
		if !ok {
			r.cols = append(r.cols, nil) // a group: no value; cursors stay in wanted's order
			continue
		}
		pages := chunks[leaf.ColumnIndex].Pages()
		if err := pages.SeekToRow(r.next - r.first[r.g]); err != nil {
			pages.Close()
			return fmt.Errorf("column %q: %w", name, err)
		}
		r.cols = append(r.cols, &colCursor{name: name, leaf: leaf, kind: leaf.Node.Type().Kind(), pages: pages, recycle: r.p.plan != nil})
	}
	return nil
}

func (r *parquetReader) closeGroup() {
	for _, c := range r.cols {
		if c != nil {
			c.release()
			c.pages.Close()
		}
	}
	r.cols = nil
}

// colCursor reads one column of a row group a row at a time.
type colCursor struct {
	name  string
	leaf  parquet.LeafColumn
	kind  parquet.Kind
	pages parquet.Pages
	// recycle gives each page back to parquet-go's buffer pool once read past: set
	// when nothing read from a page outlives it (a colPlan copies what it reads; the
	// row path's lists of floats are slices of their page, so it keeps them).
	recycle bool
	page    parquet.Page // the current page, when recycled
	// The current page: its levels (none for a required flat column), and its values:
	// floats holds a plain float page's defined values, vals any other page's values,
	// one per level (nulls included).
	reps, defs []byte
	n          int // levels (or values) in the page
	floats     []float32
	raw        []byte // floats' memory, which on a little-endian machine is FP32 request data
	vals       []parquet.Value
	li, vi     int // next level, next float
}

// load reads the next page.
func (c *colCursor) load() error {
	c.release()
	page, err := c.pages.ReadPage()
	if err != nil {
		return err
	}
	if c.recycle {
		c.page = page
	}
	c.reps, c.defs = page.RepetitionLevels(), page.DefinitionLevels()
	c.n, c.li, c.vi = int(page.NumValues()), 0, 0
	c.floats, c.raw, c.vals = nil, nil, nil
	if c.kind == parquet.Float && page.Dictionary() == nil {
		data := page.Data()
		c.floats = data.Float()
		c.raw, _ = data.Data()
		return nil
	}
	c.vals = make([]parquet.Value, c.n)
	k, err := page.Values().ReadValues(c.vals)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	c.vals = c.vals[:k]
	if k != c.n {
		return fmt.Errorf("page holds %d values for %d levels", k, c.n)
	}
	return nil
}

// release gives the current page back to the pool, if the cursor recycles them.
func (c *colCursor) release() {
	if c.page != nil {
		parquet.Release(c.page)
		c.page, c.floats, c.raw, c.vals = nil, nil, nil, nil
	}
}

// defined reports whether level i holds a value (not a null or an empty list).
func (c *colCursor) defined(i int) bool {
	return c.defs == nil || int(c.defs[i]) == c.leaf.MaxDefinitionLevel
}

// definedIn counts the levels in [from, to) that hold a value.
func (c *colCursor) definedIn(from, to int) int {
	if c.defs == nil {
		return to - from
	}
	return bytes.Count(c.defs[from:to], []byte{byte(c.leaf.MaxDefinitionLevel)})
}

// take is the value of level i.
func (c *colCursor) take(i int) any {
	if c.floats != nil {
		c.vi++
		return c.floats[c.vi-1]
	}
	return scalar(c.vals[i])
}

// value is the next row's value: a scalar (nil when null), or for a repeated column a
// slice of its defined elements.
func (c *colCursor) value() (any, error) {
	if c.li >= c.n {
		if err := c.load(); err != nil {
			return nil, err
		}
	}
	if c.leaf.MaxRepetitionLevel == 0 {
		i := c.li
		c.li++
		if !c.defined(i) {
			return nil, nil
		}
		return c.take(i), nil
	}
	return c.list()
}

// list gathers one row's elements, which may run on into the next page.
func (c *colCursor) list() (any, error) {
	var floats []float32
	var elems []any
	spans := 0
	err := c.rowSpans(func(l0, l1, v0, v1 int) {
		spans++
		if c.floats == nil {
			for i := l0; i < l1; i++ {
				if c.defined(i) {
					elems = append(elems, scalar(c.vals[i]))
				}
			}
			return
		}
		if spans == 1 && l1 < c.n && !c.recycle {
			floats = c.floats[v0:v1:v1] // the whole row in one page: no copy
			return
		}
		floats = append(floats, c.floats[v0:v1]...)
	})
	if err != nil {
		return nil, err
	}
	if floats != nil || c.kind == parquet.Float && elems == nil {
		return listOf(floats), nil
	}
	return typedList(elems, c.kind), nil
}

// rowSpans walks the next row's levels, page by page while the row runs on into the
// next page, calling f with each page's part of it: levels [l0, l1) and, on a plain
// FLOAT page, the floats [v0, v1) of their defined levels.
func (c *colCursor) rowSpans(f func(l0, l1, v0, v1 int)) error {
	for {
		l0, v0 := c.li, c.vi
		// The row ends before the next level of repetition 0; the first level is the
		// row's own whatever its repetition (a row going on from the page before).
		c.li = c.n
		if k := bytes.IndexByte(c.reps[l0+1:c.n], 0); k >= 0 {
			c.li = l0 + 1 + k
		}
		if c.floats != nil {
			c.vi += c.definedIn(l0, c.li)
		}
		f(l0, c.li, v0, c.vi)
		if c.li < c.n {
			return nil
		}
		// The page ended: the row goes on only if the next page starts mid-row.
		if err := c.load(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if c.n == 0 || c.reps[0] == 0 {
			return nil
		}
	}
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

func listOf(fs []float32) any {
	if fs == nil {
		return []float32{}
	}
	return fs
}

// typedList is a list's elements as the slice lane reads fastest.
func typedList(elems []any, kind parquet.Kind) any {
	switch kind {
	case parquet.Double:
		return convertAll(elems, func(v any) float64 { return v.(float64) })
	case parquet.Int32, parquet.Int64:
		return convertAll(elems, func(v any) int64 { return v.(int64) })
	}
	if elems == nil {
		return []any{}
	}
	return elems
}

func convertAll[T any](elems []any, f func(any) T) []T {
	out := make([]T, len(elems))
	for i, e := range elems {
		out[i] = f(e)
	}
	return out
}
