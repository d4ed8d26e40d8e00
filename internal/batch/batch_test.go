package batch_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/batch"
	"github.com/ferryml/ferry/internal/batch/batchgen"
	"github.com/ferryml/ferry/internal/lane"
)

// TestOutputsEqualOnline: every format in, every format out, each row's score equals the
// same row scored alone online, ids beside it, each row once, no rejects.
func TestOutputsEqualOnline(t *testing.T) {
	const rows = 2000
	for _, pair := range [][2]string{{"parquet", "parquet"}, {"csv", "csv"}, {"jsonl", "jsonl"}, {"parquet", "csv"}, {"csv", "parquet"}} {
		t.Run(pair[0]+"-to-"+pair[1], func(t *testing.T) {
			in := gen(t, "in."+pair[0], batchgen.Options{Rows: rows, RowGroupRows: 300, Seed: 7})
			out := filepath.Join(t.TempDir(), "out."+pair[1])
			var calls int
			p, err := batch.Run(context.Background(), testCore, batch.Options{Input: in, Output: out, Model: "tabular", Mapping: features,
				IDColumns: []string{"id"}, ChunkRows: 450, Progress: func(batch.Progress) { calls++ }})
			if err != nil {
				t.Fatal(err)
			}
			if p.Rows != rows || p.Rejected != 0 || calls != 5 {
				t.Fatalf("progress %+v after %d calls; want %d rows in 5 chunks", p, calls, rows)
			}
			got, header := readOutput(t, out)
			if strings.Join(header, ",") != "id,score" || len(got) != rows {
				t.Fatalf("output columns %v, %d rows", header, len(got))
			}
			for i := 0; i < rows; i += 97 {
				want := online(t, 7, i)
				v := got[fmt.Sprint("r", i)]
				if len(v) != 1 || !near(v[0].(float64), float64(want)) {
					t.Fatalf("row %d: batch %v, online %v", i, v, want)
				}
			}
			if len(rejects(t, out+".rejects.jsonl")) != 0 {
				t.Fatal("rejects written for good rows")
			}
			if _, err := os.Stat(out + ".ferry-batch"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("work folder left behind: %v", err)
			}
		})
	}
}

// TestMalformedRowsRejected: rows that cannot be read or converted go to the rejects
// file with their index, ids and the error; the rest are scored.
func TestMalformedRowsRejected(t *testing.T) {
	dir := t.TempDir()
	csv := "id,age,income,debt_ratio,tenure,late_payments,utilization\n" +
		"a,30,1000,0.5,3,0,0.1\n" +
		"b,old,1000,0.5,3,0,0.1\n" + // not a number
		"c,30,,0.5,3,0,0.1\n" + // missing
		"d,30,1000\n" + // short
		"\n" + // blank: no row
		"e,\"30\"x,1,1,1,1,1\n" + // bad quoting
		"f,31,1000,0.5,3,0,0.1\n"
	jsonl := `{"id":"a","age":30,"income":1000,"debt_ratio":0.5,"tenure":3,"late_payments":0,"utilization":0.1}` + "\n" +
		`{"id":"b","age":[1,2],"income":1000,"debt_ratio":0.5,"tenure":3,"late_payments":0,"utilization":0.1}` + "\n" +
		"not json\n" +
		`{"id":"d","income":1000,"debt_ratio":0.5,"tenure":3,"late_payments":0,"utilization":0.1}` + "\n" +
		`{"id":"f","age":31,"income":1000,"debt_ratio":0.5,"tenure":3,"late_payments":0,"utilization":0.1}` + "\n"
	cases := []struct {
		name, body string
		bad        map[float64]string // row index -> part of the error
	}{
		{"in.csv", csv, map[float64]string{1: `"age"`, 2: `"income"`, 3: "3 field(s)", 4: "quote"}},
		{"in.jsonl", jsonl, map[float64]string{1: "want 6 value(s)", 2: "not a JSON object", 3: `"age"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := filepath.Join(dir, c.name)
			os.WriteFile(in, []byte(c.body), 0o644)
			out := filepath.Join(dir, c.name+".out.jsonl")
			p, err := batch.Run(context.Background(), testCore, batch.Options{Input: in, Output: out, Model: "tabular", Mapping: features, IDColumns: []string{"id"}})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := readOutput(t, out)
			if p.Rows != 2 || p.Rejected != int64(len(c.bad)) || got["a"] == nil || got["f"] == nil || len(got) != 2 {
				t.Fatalf("progress %+v, output %v", p, got)
			}
			rej := rejects(t, out+".rejects.jsonl")
			if len(rej) != len(c.bad) {
				t.Fatalf("rejects %v", rej)
			}
			for _, r := range rej {
				if ids, _ := r["ids"].(map[string]any); r["row"] == 1.0 && ids["id"] != "b" {
					t.Errorf("reject %v: no id", r)
				}
				want, ok := c.bad[r["row"].(float64)]
				if !ok || !strings.Contains(r["error"].(string), want) {
					t.Errorf("reject %v: want row in %v with error naming %q", r, c.bad, want)
				}
			}
		})
	}
}

// TestBadInputFailsAtStart: a missing column, a column of the wrong type, an unknown
// model or id column fail before anything is scored, naming what is wrong.
func TestBadInputFailsAtStart(t *testing.T) {
	dir := t.TempDir()
	in := gen(t, "in.parquet", batchgen.Options{Rows: 10})
	csv := filepath.Join(dir, "in.csv")
	os.WriteFile(csv, []byte("id,age,income\n1,2,3\n"), 0o644)
	words := filepath.Join(dir, "words.csv")
	os.WriteFile(words, []byte("id,age,income,debt_ratio,tenure,late_payments,utilization\n1,2,high,0,0,0,0\n2,3,low,0,0,0,0\n"), 0o644)
	strs := filepath.Join(dir, "strings.jsonl")
	os.WriteFile(strs, []byte(`{"age":"thirty","income":1,"debt_ratio":0,"tenure":0,"late_payments":0,"utilization":0}`+"\n"), 0o644)
	cases := []struct {
		name string
		opts batch.Options
		want string
	}{
		{"missing column", batch.Options{Input: csv, Model: "tabular", Mapping: features}, `"debt_ratio"`},
		{"words for numbers (CSV)", batch.Options{Input: words, Model: "tabular", Mapping: features}, `column "income"`},
		{"strings for numbers (JSON lines)", batch.Options{Input: strs, Model: "tabular", Mapping: features}, `column "age"`},
		{"wrong type", batch.Options{Input: in, Model: "tabular", Mapping: lane.Mapping{"features": {"id", "age", "income", "debt_ratio", "tenure", "utilization"}}}, `column "id"`},
		{"unknown model", batch.Options{Input: in, Model: "nope", Mapping: features}, `"nope"`},
		{"unknown id", batch.Options{Input: in, Model: "tabular", Mapping: features, IDColumns: []string{"key"}}, `"key"`},
		{"mapping to no input", batch.Options{Input: in, Model: "tabular", Mapping: lane.Mapping{"x": {"age"}}}, `"x"`},
		{"bad format", batch.Options{Input: filepath.Join(dir, "in.txt"), Model: "tabular"}, "unknown format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Output = filepath.Join(dir, "out.parquet")
			_, err := batch.Run(context.Background(), testCore, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %s", err, c.want)
			}
			if _, err := os.Stat(c.opts.Output); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("an output was written")
			}
		})
	}
}

// TestResumeAfterStop: a job stopped after some chunks (and with a half-written part
// file left behind, as a kill would) continues from its checkpoint; the output holds
// every row once. Other options find the checkpoint refused.
func TestResumeAfterStop(t *testing.T) {
	const rows = 3000
	for _, ext := range []string{"parquet", "csv", "jsonl"} {
		t.Run(ext, func(t *testing.T) {
			in := gen(t, "in."+ext, batchgen.Options{Rows: rows, RowGroupRows: 256, Seed: 3})
			out := filepath.Join(t.TempDir(), "out."+ext)
			opts := batch.Options{Input: in, Output: out, Model: "tabular", Mapping: features, ChunkRows: 400}
			for stopAt := 2; ; stopAt += 3 {
				ctx, cancel := context.WithCancel(context.Background())
				n := 0
				opts.Progress = func(p batch.Progress) {
					if n++; n == stopAt {
						cancel()
					}
				}
				p, err := batch.Run(ctx, testCore, opts)
				cancel()
				if err == nil {
					if p.Rows != rows || !p.Resumed {
						t.Fatalf("final progress %+v", p)
					}
					break
				}
				if !errors.Is(err, context.Canceled) {
					t.Fatal(err)
				}
				// A part file of a chunk that was never committed, as a kill leaves.
				os.WriteFile(filepath.Join(out+".ferry-batch", fmt.Sprintf("part-%06d.%s", 99, ext)), []byte("junk"), 0o644)
				other := opts
				other.IDColumns = []string{"id"}
				if _, err := batch.Run(context.Background(), testCore, other); !errors.Is(err, batch.ErrCheckpoint) {
					t.Fatalf("other options: %v, want ErrCheckpoint", err)
				}
			}
			got, _ := readOutput(t, out)
			if len(got) != rows {
				t.Fatalf("%d rows, want %d", len(got), rows)
			}
			for i := range rows {
				if got[fmt.Sprint(i)] == nil {
					t.Fatalf("row %d missing", i)
				}
			}
		})
	}
}

// TestShardsCoverInputOnce: four shards together hold exactly the rows of the input,
// each once, with the row index of the whole input; "{shard}" names each part.
func TestShardsCoverInputOnce(t *testing.T) {
	const rows = 2500
	for _, ext := range []string{"parquet", "csv", "jsonl"} {
		t.Run(ext, func(t *testing.T) {
			in := gen(t, "in."+ext, batchgen.Options{Rows: rows, RowGroupRows: 200, Seed: 5})
			dir := t.TempDir()
			seen := map[string]bool{}
			for i := range 4 {
				p, err := batch.Run(context.Background(), testCore, batch.Options{Input: in, Output: filepath.Join(dir, "part-{shard}."+ext),
					Model: "tabular", Mapping: features, Shard: batch.Shard{Index: i, Count: 4}, ChunkRows: 300})
				if err != nil {
					t.Fatal(err)
				}
				got, _ := readOutput(t, filepath.Join(dir, fmt.Sprintf("part-%d.%s", i, ext)))
				if p.Rows != int64(len(got)) || len(got) == 0 || len(got) == rows {
					t.Fatalf("shard %d: progress %+v, %d rows", i, p, len(got))
				}
				for k := range got {
					if seen[k] {
						t.Fatalf("row %s in two shards", k)
					}
					seen[k] = true
				}
			}
			for i := range rows {
				if !seen[fmt.Sprint(i)] {
					t.Fatalf("row %d in no shard", i)
				}
			}
		})
	}
}

func TestParseShard(t *testing.T) {
	if s, err := batch.ParseShard("2/4"); err != nil || s != (batch.Shard{Index: 2, Count: 4}) {
		t.Fatalf("2/4: %v %v", s, err)
	}
	for _, bad := range []string{"4/4", "-1/4", "1", "a/b", "0/0", ""} {
		if _, err := batch.ParseShard(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// vectorCSV writes batchgen's vector rows as CSV, the list in one quoted cell as pandas
// writes a list ("[0.1, 0.2, ...]").
func vectorCSV(t *testing.T, rows int, seed uint64) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("id,input\n")
	for i := range rows {
		r := batchgen.VectorAt(seed, i, 256)
		parts := make([]string, len(r.Input))
		for k, v := range r.Input {
			parts[k] = strconv.FormatFloat(float64(v), 'g', -1, 32)
		}
		fmt.Fprintf(&b, "%s,\"[%s]\"\n", r.ID, strings.Join(parts, ", "))
	}
	path := filepath.Join(t.TempDir(), "in.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestVectorLinesEqualOnline: a JSON lines file whose rows hold a list of 256 numbers
// (encoded straight into the input, lane.FlatEncoder) scores as each row online, and as
// the same rows in Parquet and in CSV (a list cell, lane.DecodeNumberList); lines with a
// short list and a nested one (encoding/json's way) are rejected naming the count.
func TestVectorLinesEqualOnline(t *testing.T) {
	const rows = 300
	in := gen(t, "in.jsonl", batchgen.Options{Rows: rows, Vector: 256, Seed: 3})
	f, err := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"id":"short","input":[1,2]}` + "\n" + `{"id":"nested","input":[[1,2]]}` + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run := func(in string, rejected int64) (map[string][]any, string) {
		out := filepath.Join(t.TempDir(), "out.parquet")
		p, err := batch.Run(context.Background(), testCore, batch.Options{Input: in, Output: out, Model: "mlp", IDColumns: []string{"id"}, ChunkRows: 128})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := readOutput(t, out)
		if p.Rows != rows || p.Rejected != rejected || len(got) != rows {
			t.Fatalf("%s: %+v, %d output rows; want %d and %d rejected", in, p, len(got), rows, rejected)
		}
		return got, out
	}
	lines, out := run(in, 2)
	pq, _ := run(gen(t, "in.parquet", batchgen.Options{Rows: rows, Vector: 256, Seed: 3}), 0)
	csv, _ := run(vectorCSV(t, rows, 3), 0)
	for i := range rows {
		id := fmt.Sprint("r", i)
		a, _ := lines[id][0].([]any)
		b, _ := pq[id][0].([]any)
		if len(a) != 10 || !reflect.DeepEqual(a, b) {
			t.Fatalf("row %d: JSON lines %v, Parquet %v", i, a, b)
		}
		if c, _ := csv[id][0].([]any); !reflect.DeepEqual(c, b) {
			t.Fatalf("row %d: CSV %v, Parquet %v", i, c, b)
		}
		if i%37 == 0 {
			want := score(t, "mlp", lane.Row{"input": batchgen.VectorAt(3, i, 256).Input})
			for k := range want {
				if !near(a[k].(float64), float64(want[k])) {
					t.Fatalf("row %d output %d: %v, online %v", i, k, a[k], want[k])
				}
			}
		}
	}
	for _, r := range rejects(t, out+".rejects.jsonl") {
		if !strings.Contains(r["error"].(string), "want 256 value(s)") {
			t.Errorf("reject %v: want the count named", r)
		}
	}
}
