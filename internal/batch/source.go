package batch

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/tensor"
)

// format is a file format, from a path's extension.
type format int

const (
	fmtParquet format = iota
	fmtCSV
	fmtJSONL
)

func formatOf(p string) (format, error) {
	switch strings.ToLower(path.Ext(p)) {
	case ".parquet":
		return fmtParquet, nil
	case ".csv":
		return fmtCSV, nil
	case ".jsonl", ".ndjson":
		return fmtJSONL, nil
	}
	return 0, fmt.Errorf("%s: unknown format; want a .parquet, .csv, .jsonl or .ndjson file", p)
}

func (f format) ext() string {
	return [...]string{".parquet", ".csv", ".jsonl"}[f]
}

// position is where a shard's reading resumes: the byte offset of the next row in a
// text file (unused for Parquet) and the next row's 0-based index in the input.
type position struct {
	Offset int64 `json:"offset"`
	Row    int64 `json:"row"`
}

// record is one input row: the fields a job reads (model inputs and id columns), or
// the error that kept the row from being read. A row read column by column (colPlan)
// has no fields but its model inputs, encoded, and its ids.
type record struct {
	index int64
	row   lane.Row
	enc   [][]byte // per model input, its encoded elements; nil on the row path
	ids   []any    // with enc: the id columns' values, in the job's order
	err   error
}

// addTo adds the record to a request being built, as it was read.
func (r *record) addTo(b *lane.Builder) error {
	if r.enc != nil {
		return b.AddEncoded(r.enc)
	}
	return b.Add(r.row)
}

// id is the value of the job's k-th id column, named name: nil when the row could
// not be read.
func (r *record) id(k int, name string) any {
	if r.enc != nil {
		return r.ids[k]
	}
	return r.row[name]
}

// source is an opened input file.
type source interface {
	// Columns are the input's column names, in file order.
	Columns() []string
	// Check fails naming a column whose declared type cannot fill its model input.
	Check(fields map[string]lane.Column) error
	// IDType is how an id column is written to a Parquet output.
	IDType(col string) idType
	// Span is where the shard starts and how many rows it holds (-1: not known).
	Span(sh Shard) (start position, total int64, err error)
	// Read reads the shard sh from pos (a Span start or a checkpoint's position).
	Read(sh Shard, pos position) (rowReader, error)
	Close() error
}

// rowReader reads one shard's rows in order.
type rowReader interface {
	// Next reads up to n records and returns the position after them; it returns
	// no records at the shard's end.
	Next(n int) ([]record, position, error)
}

// idType is an id column's type in a Parquet output.
type idType int

const (
	idString idType = iota
	idInt64
	idFloat64
	idBool
)

// fieldInputs maps each field the model reads to the input it fills (the row's shape
// and type of that input).
func fieldInputs(s *lane.Schema, m lane.Mapping) map[string]lane.Column {
	out := map[string]lane.Column{}
	for _, in := range s.Inputs {
		src := m[in.Name]
		if len(src) == 0 {
			src = []string{in.Name}
		}
		for _, f := range src {
			out[f] = lane.Column{Name: in.Name, DType: in.DType, Shape: in.Shape}
		}
	}
	return out
}

// numeric reports whether dt is a number type (not BYTES or BOOL).
func numeric(dt tensor.DType) bool { return dt != tensor.Bytes && dt != tensor.Bool }

// openSized opens a file and reads its size.
func openSized(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}
