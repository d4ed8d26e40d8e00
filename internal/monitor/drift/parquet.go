package drift

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// ProfileFromParquet builds a profile from a Parquet file of size bytes. Each leaf
// column is a feature named by its path ("a.b"); a repeated column (a LIST) holds a
// tensor row, its element j being "NAME[j]". Integers and floats are numeric (unless
// opt says categorical), strings and booleans categorical, nulls missing.
func ProfileFromParquet(r io.ReaderAt, size int64, opt ProfileOptions) (p *Profile, err error) {
	defer func() {
		if v := recover(); v != nil { // a corrupt file must not take the server down
			p, err = nil, fmt.Errorf("baseline Parquet: corrupt file: %v", v)
		}
	}()
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("baseline Parquet: %w", err)
	}
	cols := f.Schema().Columns()
	names := make([]string, len(cols))
	repeated := make([]bool, len(cols))
	for i, path := range cols {
		leaf, _ := f.Schema().Lookup(path...)
		names[i], repeated[i] = parquetName(path), leaf.MaxRepetitionLevel > 0
	}
	b := newBuilder(opt)
	rd := parquet.NewReader(f)
	defer rd.Close()
	buf := make([]parquet.Row, 256)
	idx := make([]int, len(cols))
	for {
		n, err := rd.ReadRows(buf)
		for _, row := range buf[:n] {
			b.rows++
			clear(idx)
			for _, v := range row {
				if err := b.parquetValue(v, names, repeated, idx); err != nil {
					return nil, fmt.Errorf("baseline Parquet: row %d: %w", b.rows, err)
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("baseline Parquet: row %d: %w", b.rows+1, err)
		}
	}
	p, err = b.profile()
	if err != nil {
		return nil, fmt.Errorf("baseline Parquet: %w", err)
	}
	return p, nil
}

// parquetName names a leaf column: a LIST's element takes the list's name.
func parquetName(path []string) string {
	if n := len(path); n >= 3 && path[n-2] == "list" && (path[n-1] == "element" || path[n-1] == "item") {
		path = path[:n-2]
	}
	return strings.Join(path, ".")
}

func (b *builder) parquetValue(v parquet.Value, names []string, repeated []bool, idx []int) error {
	c := v.Column()
	if c < 0 || c >= len(names) {
		return fmt.Errorf("value of unknown column %d", c)
	}
	name := names[c]
	if repeated[c] {
		name += "[" + strconv.Itoa(idx[c]) + "]"
		idx[c]++
	}
	if v.IsNull() {
		b.col(name, "").invalid++
		return nil
	}
	switch v.Kind() {
	case parquet.Int32:
		return b.number(name, float64(v.Int32()))
	case parquet.Int64:
		return b.number(name, float64(v.Int64()))
	case parquet.Float:
		return b.number(name, float64(v.Float()))
	case parquet.Double:
		return b.number(name, v.Double())
	case parquet.Boolean:
		return b.category(name, strconv.FormatBool(v.Boolean()))
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return b.category(name, string(v.ByteArray()))
	}
	return fmt.Errorf("column %q: %s values are not supported", name, v.Kind())
}

// number adds a numeric value; in a column read as categorical it is the category of
// its shortest decimal form (so 3 and "3" are the same category).
func (b *builder) number(name string, v float64) error {
	c := b.col(name, Numeric)
	if c.kind == Categorical {
		c.addCategory(strconv.FormatFloat(v, 'g', -1, 64))
		return nil
	}
	c.addNumber(v, b.rng)
	return nil
}

func (b *builder) category(name, s string) error {
	c := b.col(name, Categorical)
	if c.kind != Categorical {
		return fmt.Errorf("column %q: %q in a numeric column", name, truncate(s))
	}
	c.addCategory(s)
	return nil
}
