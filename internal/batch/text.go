package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/tensor"
)

// maxLine bounds one line of a CSV or JSON-lines input: a longer line is a rejected
// row, not a reason to hold a whole file in memory.
const maxLine = 16 << 20

// textSource is a CSV or JSON-lines file. A row is a line: a row belongs to the shard
// whose byte range holds the line's first byte, and rows are counted as the non-blank
// lines before them (so a CSV field may hold commas and quotes, not newlines).
type textSource struct {
	f      *os.File
	size   int64
	csv    bool
	header []string // CSV: the first line's names
	data   int64    // offset of the first row (after a CSV header)
	fields map[string]lane.Column
	wanted []string // the fields a record keeps: model fields and id columns
	// The model's schema and the id columns, for encoding lines straight into their
	// inputs (nil schema: every line is read as a row).
	schema *lane.Schema
	ids    []string
}

func openText(path string, csv bool) (*textSource, error) {
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	t := &textSource{f: f, size: size, csv: csv}
	if csv {
		if err := t.readHeader(); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return t, nil
}

func (t *textSource) readHeader() error {
	br := bufio.NewReader(io.NewSectionReader(t.f, 0, t.size))
	line, n, err := readLine(br, nil)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if n == 0 || len(bytes.TrimSpace(line)) == 0 {
		return errors.New("CSV file has no header line")
	}
	line = bytes.TrimPrefix(line, bom) // as spreadsheets write it
	if t.header, err = splitCSV(line); err != nil {
		return fmt.Errorf("CSV header: %w", err)
	}
	t.data = int64(n)
	return nil
}

func (t *textSource) Close() error { return t.f.Close() }

// Columns: a CSV header's names; JSON lines declare none, so the fields of the first
// rows (up to sampleRows of them that are JSON objects) stand for the file's.
func (t *textSource) Columns() []string {
	if t.csv {
		return t.header
	}
	br := bufio.NewReader(io.NewSectionReader(t.f, 0, t.size))
	seen := map[string]bool{}
	for n, lines := 0, 0; n < sampleRows && lines < 10*sampleRows; lines++ {
		line, size, err := readLine(br, nil)
		if size == 0 || err != nil && !errors.Is(err, io.EOF) {
			break
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(bytes.TrimPrefix(line, bom), &obj) != nil {
			continue
		}
		for k := range obj {
			seen[k] = true
		}
		n++
	}
	cols := make([]string, 0, len(seen))
	for k := range seen {
		cols = append(cols, k)
	}
	slices.Sort(cols)
	return cols
}

// sampleRows is how many rows Check reads to judge a text file's columns.
const sampleRows = 100

// Check: text declares no types, so the first rows stand for them: a column none of
// whose sampled values can fill its input (words where numbers belong) fails the job at
// start; a bad value in a column that is otherwise right is a rejected row.
func (t *textSource) Check(fields map[string]lane.Column) error {
	t.fields = fields
	br := bufio.NewReader(io.NewSectionReader(t.f, t.data, t.size-t.data))
	good, bad := map[string]int{}, map[string]any{}
	for n := 0; n < sampleRows; n++ {
		line, size, err := readLine(br, nil)
		if size == 0 || err != nil && !errors.Is(err, io.EOF) {
			break
		}
		for f, v := range t.sample(line) {
			if fits(v, fields[f].DType) {
				good[f]++
			} else if _, seen := bad[f]; !seen {
				bad[f] = v
			}
		}
	}
	for f, v := range bad {
		if good[f] == 0 {
			return fmt.Errorf("column %q: no value of the first %d rows can fill input %q (%s), e.g. %v", f, sampleRows, fields[f].Name, fields[f].DType, v)
		}
	}
	return nil
}

// sample is a line's non-empty values of the fields the model reads.
func (t *textSource) sample(line []byte) map[string]any {
	out := map[string]any{}
	if len(bytes.TrimSpace(line)) == 0 {
		return out
	}
	if !t.csv {
		row, err := t.jsonRow(line)
		for f := range t.fields {
			if v, ok := row[f]; ok && err == nil && v != nil {
				out[f] = v
			}
		}
		return out
	}
	cells, err := splitCSV(line)
	if err != nil || len(cells) != len(t.header) {
		return out
	}
	for i, h := range t.header {
		if in, ok := t.fields[h]; ok && strings.TrimSpace(cells[i]) != "" {
			if v, err := cellValue(cells[i], in.DType); err == nil {
				out[h] = v
			} else {
				out[h] = strconv.Quote(cells[i])
			}
		}
	}
	return out
}

// fits reports whether a decoded value could fill an input of type dt.
func fits(v any, dt tensor.DType) bool {
	switch x := v.(type) {
	case json.Number:
		return numeric(dt)
	case bool:
		return dt == tensor.Bool
	case string:
		return dt == tensor.Bytes
	case []any:
		return len(x) == 0 || fits(x[0], dt)
	}
	return false
}

func (t *textSource) IDType(string) idType { return idString }

// Span aligns the shard's byte range to row starts and counts the rows before it.
func (t *textSource) Span(sh Shard) (position, int64, error) {
	start, err := t.rowStart(t.bound(sh.whole().Index, sh.whole().Count))
	if err != nil {
		return position{}, 0, err
	}
	rows, err := t.countRows(t.data, start)
	if err != nil {
		return position{}, 0, err
	}
	return position{Offset: start, Row: rows}, -1, nil
}

// bound is the byte where shard i of n begins its search for a row start.
func (t *textSource) bound(i, n int) int64 {
	span := t.size - t.data
	return t.data + span*int64(i)/int64(n)
}

// rowStart is the first row start at or after b: b itself when it follows a newline.
func (t *textSource) rowStart(b int64) (int64, error) {
	if b <= t.data {
		return t.data, nil
	}
	br := bufio.NewReader(io.NewSectionReader(t.f, b-1, t.size-b+1))
	skipped := int64(0)
	for {
		chunk, err := br.ReadSlice('\n')
		skipped += int64(len(chunk))
		if err == nil {
			return b - 1 + skipped, nil
		}
		if errors.Is(err, io.EOF) {
			return t.size, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return 0, err
		}
	}
}

// countRows counts the non-blank lines starting in [from, to).
func (t *textSource) countRows(from, to int64) (int64, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(t.f, from, to-from), 1<<20)
	var rows int64
	blank := true
	for {
		b, err := br.ReadByte()
		if err != nil {
			if !blank {
				rows++
			}
			if errors.Is(err, io.EOF) {
				return rows, nil
			}
			return 0, err
		}
		switch b {
		case '\n':
			if !blank {
				rows++
			}
			blank = true
		case ' ', '\t', '\r':
		default:
			blank = false
		}
	}
}

func (t *textSource) Read(sh Shard, pos position) (rowReader, error) {
	w := sh.whole()
	end, err := t.rowStart(t.bound(w.Index+1, w.Count))
	if err != nil {
		return nil, err
	}
	if w.Index+1 == w.Count {
		end = t.size
	}
	r := &textReader{t: t, pos: pos, end: end}
	if t.schema != nil {
		r.enc = t.schema.NewFlatEncoder(t.ids)
	}
	r.br = bufio.NewReaderSize(io.NewSectionReader(t.f, pos.Offset, t.size-pos.Offset), 1<<20)
	if t.csv {
		r.col = map[string]int{}
		for i, h := range t.header {
			if _, dup := r.col[h]; !dup {
				r.col[h] = i
			}
		}
	}
	return r, nil
}

// textReader reads one shard's lines.
type textReader struct {
	t   *textSource
	br  *bufio.Reader
	pos position
	end int64
	col map[string]int // CSV: column name -> index
	buf []byte
	enc *lane.FlatEncoder // with a schema
}

func (r *textReader) Next(n int) ([]record, position, error) {
	var out []record
	var flat flatRecords
	if r.enc != nil {
		flat = newFlatRecords(len(r.t.schema.Inputs), n, len(r.t.ids))
	}
	for len(out) < n && r.pos.Offset < r.end {
		line, size, err := readLine(r.br, r.buf[:0])
		r.buf = line[:0]
		if size == 0 {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, errLong) {
			return nil, r.pos, err
		}
		r.pos.Offset += int64(size)
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rec := record{index: r.pos.Row}
		r.pos.Row++
		if errors.Is(err, errLong) {
			rec.err = fmt.Errorf("line longer than %d bytes", maxLine)
		} else if r.t.csv {
			if !r.csvFlat(&flat, line, &rec, len(out)) {
				rec.row, rec.err = r.csvRow(line)
			}
		} else if !r.jsonFlat(&flat, line, &rec, len(out)) {
			rec.row, rec.err = r.t.jsonRow(line)
		}
		out = append(out, rec)
	}
	flat.finish(out)
	return out, r.pos, nil
}

// jsonFlat encodes a JSON line as record i, or answers false for a line to be read as a
// row.
func (r *textReader) jsonFlat(f *flatRecords, line []byte, rec *record, i int) bool {
	if r.enc == nil || !r.enc.Encode(f.bufs, bytes.TrimPrefix(line, bom), f.next()) {
		return false
	}
	f.took(rec, i)
	return true
}

// csvFlat encodes a CSV line as record i, its ids the values csvRow gives them, or
// answers false for a line to be read as a row (which also words its errors).
func (r *textReader) csvFlat(f *flatRecords, line []byte, rec *record, i int) bool {
	if r.enc == nil {
		return false
	}
	cells, err := splitCSV(line)
	if err != nil || len(cells) != len(r.t.header) {
		return false
	}
	if !r.enc.EncodeFields(f.bufs, func(name string) (string, bool) {
		k, ok := r.col[name] // < len(cells): the line has the header's count
		if !ok {
			return "", false
		}
		return cells[k], true
	}) {
		return false
	}
	ids := f.next()
	for k, id := range r.t.ids {
		ids[k], _, _ = r.field(cells, id)
	}
	f.took(rec, i)
	return true
}

// flatRecords are one Next's lines that lane.FlatEncoder took: their inputs' bytes,
// one row after another in a buffer per input, and their ids.
type flatRecords struct {
	bufs [][]byte
	ends [][]int // per input, where each row's bytes end
	recs []int   // their indexes in Next's output
	ids  []any
	nids int
}

func newFlatRecords(inputs, n, ids int) flatRecords {
	return flatRecords{bufs: make([][]byte, inputs), ends: make([][]int, inputs), ids: make([]any, 0, n*ids), nids: ids}
}

// next is the next record's id values, for the encoder to fill.
func (f *flatRecords) next() []any { return f.ids[len(f.ids) : len(f.ids)+f.nids] }

// took notes that the encoder appended record i's inputs to the buffers and filled its
// ids (next).
func (f *flatRecords) took(rec *record, i int) {
	rec.ids = f.next()[:f.nids:f.nids]
	f.ids = f.ids[:len(f.ids)+f.nids]
	for k := range f.bufs {
		f.ends[k] = append(f.ends[k], len(f.bufs[k]))
	}
	f.recs = append(f.recs, i)
}

// finish points the records at their bytes, now that the buffers no longer grow. Each
// slice's capacity runs on to its buffer's end: a request of consecutive rows is then
// a slice of the buffer (lane.Builder.AddEncoded), not a copy.
func (f *flatRecords) finish(out []record) {
	if len(f.recs) == 0 {
		return
	}
	k := len(f.bufs)
	enc := make([][]byte, len(f.recs)*k)
	for j, i := range f.recs {
		for in := range f.bufs {
			start := 0
			if j > 0 {
				start = f.ends[in][j-1]
			}
			enc[j*k+in] = f.bufs[in][start:f.ends[in][j]]
		}
		out[i].enc = enc[j*k : (j+1)*k : (j+1)*k]
	}
}

var errLong = errors.New("line too long")

// bom is the UTF-8 byte order mark some tools put at the start of a text file.
var bom = []byte{0xef, 0xbb, 0xbf}

// readLine reads one line into buf (without its line ending) and returns how many
// bytes it took from the file; a line over maxLine is consumed and reported as errLong.
func readLine(br *bufio.Reader, buf []byte) ([]byte, int, error) {
	size := 0
	long := false
	for {
		chunk, err := br.ReadSlice('\n')
		size += len(chunk)
		if !long {
			buf = append(buf, chunk...)
			if len(buf) > maxLine {
				long, buf = true, buf[:0]
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		buf = bytes.TrimRight(buf, "\r\n")
		if long && (err == nil || errors.Is(err, io.EOF)) {
			return buf, size, errLong
		}
		return buf, size, err
	}
}

// csvRow turns a CSV line into the fields a job reads, each converted for the input
// it fills: text for BYTES, true/false for BOOL, a JSON array for a multi-value field,
// else a number.
func (r *textReader) csvRow(line []byte) (lane.Row, error) {
	cells, err := splitCSV(line)
	if err != nil {
		return nil, err
	}
	row := make(lane.Row, len(r.t.wanted))
	var bad error
	for _, f := range r.t.wanted {
		v, ok, err := r.field(cells, f)
		if !ok {
			continue
		}
		if err != nil && bad == nil {
			bad = err
		}
		row[f] = v
	}
	if len(cells) != len(r.t.header) {
		bad = fmt.Errorf("line has %d field(s), the header %d", len(cells), len(r.t.header))
	}
	return row, bad // the ids, when there are, even for a bad row: the rejects file names it
}

// field is field f of a CSV line: ok false when the line has no such cell; a field a
// model input reads is converted for it (err says why it cannot be, v then nil).
func (r *textReader) field(cells []string, f string) (v any, ok bool, err error) {
	i, ok := r.col[f]
	if !ok || i >= len(cells) {
		return nil, false, nil
	}
	in, isInput := r.t.fields[f]
	if !isInput {
		return cells[i], true, nil
	}
	v, err = cellValue(cells[i], in.DType)
	if err != nil {
		return v, true, &lane.RowError{Field: f, Input: in.Name, Reason: err.Error()}
	}
	return v, true, nil
}

func cellValue(cell string, dt tensor.DType) (any, error) {
	trimmed := bytes.TrimSpace([]byte(cell))
	switch {
	case dt == tensor.Bytes:
		return cell, nil
	case len(trimmed) == 0:
		return nil, nil // missing: the builder names the field
	case trimmed[0] == '[':
		if v, ok := lane.DecodeNumberList(string(trimmed)); ok {
			return v, nil // the common list, without encoding/json
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%q is not a JSON array: %v", cell, err)
		}
		return v, nil
	case dt == tensor.Bool:
		b, err := strconv.ParseBool(string(trimmed))
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", cell)
		}
		return b, nil
	}
	if _, err := strconv.ParseFloat(string(trimmed), 64); err != nil {
		return nil, fmt.Errorf("%q is not a number", cell)
	}
	return json.Number(trimmed), nil
}

// jsonRow decodes one JSON line, numbers kept as json.Number: a flat row (numbers,
// plain strings, lists of numbers) the fast way, anything else with encoding/json.
func (t *textSource) jsonRow(line []byte) (lane.Row, error) {
	line = bytes.TrimPrefix(line, bom)
	if row, ok := lane.DecodeFlatRow(line); ok {
		return row, nil
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var row lane.Row
	if err := dec.Decode(&row); err != nil {
		return nil, fmt.Errorf("line is not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, errors.New("line holds more than one JSON value")
	}
	if row == nil {
		return nil, errors.New("line is JSON null, not an object")
	}
	return row, nil
}

// splitCSV splits one CSV line (RFC 4180 quoting, without newlines inside fields).
func splitCSV(line []byte) ([]string, error) {
	var out []string
	var field []byte
	for i := 0; ; {
		if i < len(line) && line[i] == '"' {
			end, err := quoted(line, i, &field)
			if err != nil {
				return nil, err
			}
			i = end
		} else {
			j := bytes.IndexByte(line[i:], ',')
			if j < 0 {
				j = len(line) - i
			}
			if bytes.IndexByte(line[i:i+j], '"') >= 0 {
				return nil, fmt.Errorf("field %d: a quote inside an unquoted field", len(out)+1)
			}
			field = append(field[:0], line[i:i+j]...)
			i += j
		}
		out = append(out, string(field))
		field = field[:0]
		if i >= len(line) {
			return out, nil
		}
		i++ // the comma
	}
}

// quoted reads the quoted field starting at line[i] into field and returns the index
// after its closing quote, which must end the line or precede a comma.
func quoted(line []byte, i int, field *[]byte) (int, error) {
	for j := i + 1; j < len(line); j++ {
		if line[j] != '"' {
			*field = append(*field, line[j])
			continue
		}
		if j+1 < len(line) && line[j+1] == '"' {
			*field = append(*field, '"')
			j++
			continue
		}
		if j+1 < len(line) && line[j+1] != ',' {
			return 0, fmt.Errorf("text after a closing quote at byte %d", j+1)
		}
		return j + 1, nil
	}
	return 0, errors.New("a quoted field is not closed on its line")
}
