package batch

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/tensor"
)

// FuzzTextRows: any bytes as a CSV or JSON-lines file read without a panic, every
// non-blank line becomes exactly one record, and a CSV line that splits joins back.
func FuzzTextRows(f *testing.F) {
	f.Add([]byte("id,age\n1,2\n\"a,b\",3\n"), true)
	f.Add([]byte("{\"id\":1,\"age\":2}\nnot json\n\n{}\n"), false)
	f.Add([]byte("id,age\n\"unclosed,1\nx,\"y\"z\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, csv bool) {
		src := &textSource{size: int64(len(data)), csv: csv,
			fields: map[string]lane.Column{"age": {Name: "x", DType: tensor.FP32, Shape: tensor.Shape{1}}}, wanted: []string{"age", "id"}}
		br := bufio.NewReader(bytes.NewReader(data))
		if csv {
			line, n, _ := readLine(br, nil)
			h, err := splitCSV(line)
			if err != nil {
				return
			}
			src.header, src.data = h, int64(n)
		}
		r := &textReader{t: src, br: br, pos: position{Offset: src.data}, end: src.size, col: map[string]int{}}
		for i, h := range src.header {
			r.col[h] = i
		}
		recs, end, err := r.Next(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, l := range strings.Split(string(data[src.data:]), "\n") {
			if strings.TrimSpace(strings.TrimRight(l, "\r")) != "" {
				want++
			}
		}
		if len(recs) != want || end.Offset != src.size {
			t.Fatalf("%d records for %d lines, end %d of %d", len(recs), want, end.Offset, src.size)
		}
	})
}

// FuzzSplitCSV: a line that splits is the fields that quoting them again gives back.
func FuzzSplitCSV(f *testing.F) {
	f.Add([]byte(`a,"b,c","d""e",`))
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.ContainsAny(line, "\r\n") {
			return
		}
		cells, err := splitCSV(line)
		if err != nil {
			return
		}
		var b []byte
		for i, c := range cells {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCSV(b, c)
		}
		again, err := splitCSV(b)
		if err != nil || strings.Join(again, "\x00") != strings.Join(cells, "\x00") {
			t.Fatalf("%q -> %q -> %q -> %q (%v)", line, cells, b, again, err)
		}
	})
}
