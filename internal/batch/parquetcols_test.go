package batch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/lane"
)

// mixedCore describes a model whose inputs take every way a plan fills one: a list of
// FLOAT as FP32, a list of INT32 as INT8 (out of range: rejected), two scalars (DOUBLE,
// INT64) as an INT32 pair (a fraction: rejected), a dictionary-encoded FLOAT as FP16.
type mixedCore struct{}

func (mixedCore) ModelMetadata(context.Context, string, string) (*core.ModelMetadata, error) {
	return &core.ModelMetadata{Name: "mixed", Inputs: []core.TensorMetadata{
		{Name: "vec", DataType: "FP32", Shape: []int64{-1, 4}},
		{Name: "ints", DataType: "INT8", Shape: []int64{-1, 3}},
		{Name: "pair", DataType: "INT32", Shape: []int64{-1, 2}},
		{Name: "one", DataType: "FP16", Shape: []int64{-1, 1}},
	}, Outputs: []core.TensorMetadata{{Name: "y", DataType: "FP32", Shape: []int64{-1, 1}}}}, nil
}

func (mixedCore) ModelConfig(context.Context, string, string) (*inference.ModelConfig, error) {
	return &inference.ModelConfig{MaxBatchSize: 8}, nil
}

func (mixedCore) Infer(context.Context, *core.InferRequest) (*core.InferResponse, error) {
	return nil, errors.New("mixedCore scores nothing")
}

var mixedMapping = lane.Mapping{"pair": {"a", "b"}}

// writeMixed writes rows for mixedCore, about a third of them bad in one way or
// another, in small pages (lists run across them) and row groups of 64 rows.
func writeMixed(t *testing.T, rows int) string {
	t.Helper()
	schema := parquet.NewSchema("mixed", parquet.Group{
		"id":   parquet.Optional(parquet.String()),
		"vec":  parquet.Optional(parquet.List(parquet.Optional(parquet.Leaf(parquet.FloatType)))),
		"ints": parquet.List(parquet.Leaf(parquet.Int32Type)),
		"a":    parquet.Optional(parquet.Leaf(parquet.DoubleType)),
		"b":    parquet.Optional(parquet.Leaf(parquet.Int64Type)),
		"one":  parquet.Encoded(parquet.Optional(parquet.Leaf(parquet.FloatType)), &parquet.RLEDictionary),
	})
	col := map[string]int{}
	for i, path := range schema.Columns() {
		col[path[0]] = i
	}
	path := filepath.Join(t.TempDir(), "mixed.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := parquet.NewWriter(f, schema, parquet.PageBufferSize(256), parquet.MaxRowsPerRowGroup(64))
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range rows {
		var row parquet.Row
		if i%13 != 4 {
			row = append(row, parquet.ByteArrayValue([]byte(fmt.Sprint("r", i))).Level(0, 1, col["id"]))
		} else {
			row = append(row, parquet.Value{}.Level(0, 0, col["id"]))
		}
		row = append(row, mixedList(rng, col["vec"])...)
		row = append(row, mixedInts(rng, col["ints"])...)
		row = append(row, mixedScalar(rng, col["a"], func() parquet.Value { return parquet.DoubleValue(float64(rng.IntN(9)) + float64(rng.IntN(16)/15)/2) }))
		row = append(row, mixedScalar(rng, col["b"], func() parquet.Value { return parquet.Int64Value(int64(rng.IntN(9)) << (31 * (rng.IntN(30) / 29))) }))
		row = append(row, mixedScalar(rng, col["one"], func() parquet.Value { return parquet.FloatValue(float32(rng.IntN(5)) / 4) }))
		sortByColumn(row)
		if _, err := w.WriteRows([]parquet.Row{row}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// mixedList is an optional list of optional floats: mostly 4 of them, sometimes null,
// empty, 3 or 5 long, or holding a null.
func mixedList(rng *rand.Rand, c int) []parquet.Value {
	switch rng.IntN(40) {
	case 0:
		return []parquet.Value{parquet.Value{}.Level(0, 0, c)} // null list
	case 1:
		return []parquet.Value{parquet.Value{}.Level(0, 1, c)} // empty list
	}
	n := 4
	if k := rng.IntN(30); k < 2 {
		n = 3 + 2*k
	}
	nullAt := -1
	if rng.IntN(30) == 0 {
		nullAt = rng.IntN(n)
	}
	var out []parquet.Value
	for k := range n {
		v := parquet.FloatValue(rng.Float32()).Level(min(k, 1), 3, c)
		if k == nullAt {
			v = parquet.Value{}.Level(min(k, 1), 2, c)
		}
		out = append(out, v)
	}
	return out
}

// mixedInts is a required list of 3 int32s, now and then one out of INT8's range or a
// fourth.
func mixedInts(rng *rand.Rand, c int) []parquet.Value {
	n := 3 + rng.IntN(20)/19
	var out []parquet.Value
	for k := range n {
		x := int32(rng.IntN(200) - 100)
		if rng.IntN(40) == 0 {
			x = 300
		}
		out = append(out, parquet.Int32Value(x).Level(min(k, 1), 1, c))
	}
	return out
}

func mixedScalar(rng *rand.Rand, c int, v func() parquet.Value) parquet.Value {
	if rng.IntN(20) == 0 {
		return parquet.Value{}.Level(0, 0, c)
	}
	return v().Level(0, 1, c)
}

// sortByColumn orders a row's values by column, as WriteRows wants them; the
// order of a column's values is kept.
func sortByColumn(row parquet.Row) {
	byCol := map[int][]parquet.Value{}
	maxCol := 0
	for _, v := range row {
		byCol[v.Column()] = append(byCol[v.Column()], v)
		maxCol = max(maxCol, v.Column())
	}
	row = row[:0]
	for c := range maxCol + 1 {
		row = append(row, byCol[c]...)
	}
}

// readAll reads a shard from pos, n rows at a time, by plan (nil: the row path).
func readAll(t *testing.T, src *parquetSource, plan *colPlan, sh Shard, pos position, n int) []record {
	t.Helper()
	src.plan = plan
	rd, err := src.Read(sh, pos)
	if err != nil {
		t.Fatal(err)
	}
	var all []record
	for {
		recs, _, err := rd.Next(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return all
		}
		all = append(all, recs...)
	}
}

// asRequest is what a record becomes: its inputs' bytes in one request, or its error.
func asRequest(s *lane.Schema, r *record) (string, error) {
	if r.err != nil {
		return "", r.err
	}
	b := s.NewBuilder()
	if err := r.addTo(b); err != nil {
		return "", err
	}
	var out bytes.Buffer
	for _, in := range b.Request("").Inputs {
		fmt.Fprintf(&out, "%s %s %v %x\n", in.Name, in.DType, in.Shape, in.Data)
	}
	return out.String(), nil
}

// TestColumnsReadAsRows: a Parquet file read column by column gives every row the
// request bytes the row path gives it, or the same error, and the same ids, from the
// start and from a resumed position, whole or sharded.
func TestColumnsReadAsRows(t *testing.T) {
	const rows = 700
	s, err := lane.Describe(context.Background(), mixedCore{}, "mixed", "", mixedMapping)
	if err != nil {
		t.Fatal(err)
	}
	src, err := openParquet(writeMixed(t, rows))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.wanted = append(s.Fields(), "id")
	plan := planColumns(s, src, 1)
	if plan == nil {
		t.Fatal("no plan for inputs a plan takes")
	}
	for _, c := range []struct {
		name string
		sh   Shard
		pos  position
		n    int
	}{
		{"whole file, chunks across row groups", Shard{}, position{}, 37},
		{"resumed mid row group", Shard{}, position{Row: 101}, 50},
		{"second of three shards", Shard{1, 3}, position{}, 64},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := c.pos
			if start == (position{}) {
				start, _, _ = src.Span(c.sh)
			}
			want := readAll(t, src, nil, c.sh, start, c.n)
			got := readAll(t, src, plan, c.sh, start, c.n)
			if len(got) != len(want) || len(want) == 0 {
				t.Fatalf("%d records by column, %d by row", len(got), len(want))
			}
			bad, kinds := 0, map[string]int{}
			for i := range want {
				g, w := &got[i], &want[i]
				gotReq, gotErr := asRequest(s, g)
				wantReq, wantErr := asRequest(s, w)
				if g.index != w.index || fmt.Sprint(g.id(0, "id")) != fmt.Sprint(w.id(0, "id")) || gotReq != wantReq || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
					t.Fatalf("row %d by column: index %d id %v\n%s%v\nby row: index %d id %v\n%s%v", w.index, g.index, g.id(0, "id"), gotReq, gotErr, w.index, w.id(0, "id"), wantReq, wantErr)
				}
				if wantErr != nil {
					bad++
					var re *lane.RowError
					if errors.As(wantErr, &re) {
						kinds[re.Input+": "+re.Reason[:min(len(re.Reason), 12)]]++
					}
				}
			}
			t.Logf("%d of %d rows bad: %v", bad, len(want), kinds)
			if bad < len(want)/10 || bad > len(want)/2 {
				t.Fatalf("%d of %d rows bad: the file should hold good and bad rows both", bad, len(want))
			}
		})
	}
}
