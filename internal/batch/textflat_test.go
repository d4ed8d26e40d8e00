package batch

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/lane"
)

// writeMixedLines writes JSON lines for mixedCore: good rows and rows bad in each way a
// line can be (a count, a range, a fraction, a string or a nested list where numbers
// belong, a field missing or null, not an object, not JSON), with ids of several
// kinds, duplicate keys, spaces, a byte order mark and blank lines.
func writeMixedLines(t *testing.T, rows int) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	var b strings.Builder
	b.WriteString("\xef\xbb\xbf")
	list := func(n int, each func() string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = each()
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	float := func() string { return fmt.Sprint(rng.NormFloat64()) }
	small := func() string { return fmt.Sprint(rng.IntN(200) - 100) }
	for i := range rows {
		f := map[string]string{
			"vec":  list(4, float),
			"ints": list(3, small),
			"a":    fmt.Sprint(rng.IntN(1000)),
			"b":    fmt.Sprint(rng.IntN(1000)),
			"one":  float(),
		}
		id := fmt.Sprintf(`"r%d"`, i)
		switch rng.IntN(28) { // cases past 11: a good row
		case 0:
			f["vec"] = list(3, float)
		case 1:
			f["ints"] = list(3, func() string { return "300" })
		case 2:
			f["a"] = "1.5"
		case 3:
			f["vec"] = `[1,2,"x",4]`
		case 4:
			f["vec"] = `[[1,2],[3,4]]`
		case 5:
			delete(f, "one")
		case 6:
			f["b"] = "null"
		case 7:
			f["one"] = `{"v":1}`
		case 8:
			id = fmt.Sprint(i) // a number
		case 9:
			id = "" // none
		case 10:
			f["vec"] = `[ 1 , 2.5e0 , -3 , 4 ]`
		case 11:
			f["a"] = `"7"` // a string where a number belongs
		}
		var fields []string
		if id != "" {
			fields = append(fields, `"id":`+id)
		}
		for _, k := range []string{"vec", "ints", "a", "b", "one"} {
			if v, ok := f[k]; ok {
				fields = append(fields, fmt.Sprintf("%q:%s", k, v))
			}
		}
		if rng.IntN(20) == 0 {
			fields = append(fields, `"vec":`+list(4, float)) // a duplicate key: the last counts
		}
		b.WriteString("{" + strings.Join(fields, ", ") + "}\n")
		switch rng.IntN(40) {
		case 0:
			b.WriteString("\n  \n")
		case 1:
			b.WriteString("not json\n")
		case 2:
			b.WriteString(`[1,2,3]` + "\n")
		}
	}
	path := filepath.Join(t.TempDir(), "mixed.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFlatLinesReadAsRows: JSON lines encoded straight into their inputs give every
// row the request bytes the row path gives it, or the same error, and the same ids,
// whole, resumed and sharded.
func TestFlatLinesReadAsRows(t *testing.T) {
	const rows = 700
	s, err := lane.Describe(context.Background(), mixedCore{}, "mixed", "", mixedMapping)
	if err != nil {
		t.Fatal(err)
	}
	src, err := openText(writeMixedLines(t, rows), false)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.wanted = append(s.Fields(), "id")
	for _, c := range []struct {
		name string
		sh   Shard
		row  int64 // resume at this row (0: the shard's start)
		n    int
	}{
		{"whole file", Shard{}, 0, 37},
		{"resumed", Shard{}, 101, 50},
		{"second of three shards", Shard{1, 3}, 0, 64},
	} {
		t.Run(c.name, func(t *testing.T) {
			start, _, err := src.Span(c.sh)
			if err != nil {
				t.Fatal(err)
			}
			if c.row > 0 {
				all := readLines(t, src, nil, c.sh, start, 1)
				start = position{Offset: all[c.row].offset, Row: c.row}
			}
			compareFlat(t, s, readLines(t, src, s, c.sh, start, c.n), readLines(t, src, nil, c.sh, start, c.n))
		})
	}
}

// lineRecord is a record and the offset of its line.
type lineRecord struct {
	record
	offset int64
}

// readLines reads a shard from pos n records at a time, encoding flat lines for schema
// (nil: every line read as a row).
func readLines(t *testing.T, src *textSource, schema *lane.Schema, sh Shard, pos position, n int) []lineRecord {
	t.Helper()
	src.schema, src.ids = schema, []string{"id"}
	rd, err := src.Read(sh, pos)
	if err != nil {
		t.Fatal(err)
	}
	var all []lineRecord
	for {
		before := rd.(*textReader).pos.Offset
		recs, _, err := rd.Next(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return all
		}
		for _, r := range recs {
			all = append(all, lineRecord{r, before})
			before = -1 // only a chunk's first offset is known here; n 1 gives each
		}
	}
}

// FuzzFlatLinesReadAsRows: any bytes as JSON lines give, encoded straight into
// mixedCore's inputs, the records the row path gives: the same request bytes or error,
// and the same ids.
func FuzzFlatLinesReadAsRows(f *testing.F) {
	f.Add([]byte(`{"id":1,"vec":[1,2,3,4],"ints":[1,2,3],"a":1,"b":2,"one":0.5}` + "\n" + `{"vec":[1,"x"]}` + "\n"))
	f.Add([]byte("\xef\xbb\xbf" + `{"id":"z","vec":[ 1e3 , -0 ,2,3],"ints":[127,-128,0],"a":-1,"b":2e0,"one":1e-9,"vec":[1,2,3,4]}`))
	f.Add([]byte(`{"id":null,"vec":[1,2,3,4],"ints":[1,2,300],"a":1.5,"b":2,"one":[1]}` + "\n\nnot json\n"))
	s, err := lane.Describe(context.Background(), mixedCore{}, "mixed", "", mixedMapping)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameReads(t, s, func(schema *lane.Schema) *textReader {
			src := &textSource{size: int64(len(data)), schema: schema, ids: []string{"id"}}
			return &textReader{t: src, br: bufio.NewReader(bytes.NewReader(data)), end: src.size}
		})
	})
}

// writeMixedCSV writes a CSV file for mixedCore: good rows and rows bad in each way a
// line can be (a count, a range, a fraction, a word or a nested list where numbers
// belong, an empty cell, a field too many or too few, numbers strconv reads and JSON
// does not), cells quoted or padded with spaces, blank lines.
func writeMixedCSV(t *testing.T, rows int) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 13))
	var b strings.Builder
	b.WriteString("id,vec,ints,a,b,one\n")
	list := func(n int, sep string, each func() string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = each()
		}
		return `"[` + strings.Join(parts, sep) + `]"`
	}
	float := func() string { return fmt.Sprint(rng.NormFloat64()) }
	small := func() string { return fmt.Sprint(rng.IntN(200) - 100) }
	for i := range rows {
		c := []string{fmt.Sprint("r", i), list(4, ", ", float), list(3, ",", small), fmt.Sprint(rng.IntN(1000)), fmt.Sprint(rng.IntN(1000)), float()}
		switch rng.IntN(30) { // cases past 14: a good row
		case 0:
			c[1] = list(3, ",", float)
		case 1:
			c[2] = `"[300,1,2]"`
		case 2:
			c[3] = "1.5"
		case 3:
			c[1] = `"[1,2,""x"",4]"`
		case 4:
			c[1] = `"[[1,2],[3,4]]"`
		case 5:
			c[5] = ""
		case 6:
			c = c[:5] // a field too few
		case 7:
			c = append(c, "extra")
		case 8:
			c[5] = []string{"NaN", "inf", "+1", "0x1p3", "1e400", ".5", "1_0"}[rng.IntN(7)]
		case 9:
			c[3] = " 7 " // spaces around a number
		case 10:
			c[0] = fmt.Sprint(i) // a numeric id
		case 11:
			c[4] = `"12"` // a quoted number
		case 12:
			c[1] = `"[1,2,3,4] x"` // encoding/json reads the list and ignores the rest
		case 13:
			c[0] = `"r,` + fmt.Sprint(i) + `"` // a comma inside quotes
		case 14:
			c[3] = "abc"
		}
		b.WriteString(strings.Join(c, ",") + "\n")
		if rng.IntN(40) == 0 {
			b.WriteString("\n")
		}
	}
	path := filepath.Join(t.TempDir(), "mixed.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFlatCSVReadAsRows: CSV lines encoded straight into their inputs give every row
// the request bytes the row path gives it, or the same error, and the same ids.
func TestFlatCSVReadAsRows(t *testing.T) {
	s, err := lane.Describe(context.Background(), mixedCore{}, "mixed", "", mixedMapping)
	if err != nil {
		t.Fatal(err)
	}
	src, err := openText(writeMixedCSV(t, 700), true)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.wanted = append(s.Fields(), "id")
	src.fields = fieldInputs(s, mixedMapping)
	for _, sh := range []Shard{{}, {1, 3}} {
		start, _, err := src.Span(sh)
		if err != nil {
			t.Fatal(err)
		}
		compareFlat(t, s, readLines(t, src, s, sh, start, 37), readLines(t, src, nil, sh, start, 37))
	}
}

// compareFlat fails unless the records read with the flat encoder (got) are those read
// as rows (want), and most rows took the direct way and some were bad.
func compareFlat(t *testing.T, s *lane.Schema, got, want []lineRecord) {
	t.Helper()
	records := func(ls []lineRecord) []record {
		out := make([]record, len(ls))
		for i := range ls {
			out[i] = ls[i].record
		}
		return out
	}
	if len(want) == 0 {
		t.Fatal("no records")
	}
	flat, bad := sameRecords(t, s, records(got), records(want))
	t.Logf("%d of %d rows encoded directly, %d bad", flat, len(want), bad)
	if flat < len(want)/2 || bad < len(want)/10 {
		t.Fatalf("%d encoded, %d bad of %d: the file should hold both, most rows taking the direct way", flat, bad, len(want))
	}
}

// sameRecords fails unless the records read with the flat encoder (got) are those read
// as rows (want): as many, and each with the same index, id, and request bytes or
// error. It says how many took the direct way and how many were bad.
func sameRecords(t testing.TB, s *lane.Schema, got, want []record) (flat, bad int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records encoded, %d by row", len(got), len(want))
	}
	for i := range want {
		g, w := &got[i], &want[i]
		gotReq, gotErr := asRequest(s, g)
		wantReq, wantErr := asRequest(s, w)
		if g.index != w.index || fmt.Sprintf("%#v", g.id(0, "id")) != fmt.Sprintf("%#v", w.id(0, "id")) || gotReq != wantReq || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("row %d encoded: index %d id %#v\n%s%v\nby row: index %d id %#v\n%s%v", w.index, g.index, g.id(0, "id"), gotReq, gotErr, w.index, w.id(0, "id"), wantReq, wantErr)
		}
		if g.enc != nil {
			flat++
		}
		if wantErr != nil {
			bad++
		}
	}
	return flat, bad
}

// sameReads reads all of a reader's records with the flat encoder and as rows (the
// reader newReader makes for the schema, or for nil) and compares them.
func sameReads(t *testing.T, s *lane.Schema, newReader func(schema *lane.Schema) *textReader) {
	read := func(schema *lane.Schema) []record {
		r := newReader(schema)
		if schema != nil {
			r.enc = schema.NewFlatEncoder([]string{"id"})
		}
		recs, _, err := r.Next(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	sameRecords(t, s, read(s), read(nil))
}

// FuzzFlatCSVReadAsRows: any bytes under mixedCore's header give, encoded straight into
// its inputs, the records the row path gives.
func FuzzFlatCSVReadAsRows(f *testing.F) {
	f.Add([]byte("r1,\"[1,2,3,4]\",\"[1,2,3]\",1,2,0.5\nr2,\"[1, 2]\",x,,2,NaN\n"))
	f.Add([]byte("r3,\"[1,2,3,4]\",\"[1,2,3]\",1,2,1x\nr4,\"[1,2,3,4]\",\"[1,2,3]\",1,2,0x1p3\n"))
	f.Add([]byte("\"a,b\", \"[ 1e3 , -0 ,2,3]\" ,\"[127,-128,0]\",-1,2e0,1e-9,extra\n\n7,\"[1,2,3,4] y\",\"[1,2,3]\",\" 3 \",\"4\",+1\n"))
	s, err := lane.Describe(context.Background(), mixedCore{}, "mixed", "", mixedMapping)
	if err != nil {
		f.Fatal(err)
	}
	header := "id,vec,ints,a,b,one\n"
	f.Fuzz(func(t *testing.T, body []byte) {
		data := append([]byte(header), body...)
		sameReads(t, s, func(schema *lane.Schema) *textReader {
			src := &textSource{size: int64(len(data)), csv: true, header: strings.Split(strings.TrimSpace(header), ","), data: int64(len(header)),
				fields: fieldInputs(s, mixedMapping), wanted: append(s.Fields(), "id"), schema: schema, ids: []string{"id"}}
			r := &textReader{t: src, br: bufio.NewReader(bytes.NewReader(data[len(header):])), pos: position{Offset: src.data}, end: src.size, col: map[string]int{}}
			for i, h := range src.header {
				r.col[h] = i
			}
			return r
		})
	})
}
