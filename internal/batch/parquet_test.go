package batch_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/ferryml/ferry/internal/batch"
	"github.com/ferryml/ferry/internal/batch/batchgen"
	"github.com/ferryml/ferry/internal/lane"
)

type optionalRow struct {
	ID           string   `parquet:"id"`
	Age          *float64 `parquet:"age,optional"`
	Income       float32  `parquet:"income,dict"` // dictionary-encoded floats take the slow way
	DebtRatio    float64  `parquet:"debt_ratio"`
	Tenure       int32    `parquet:"tenure"`
	LatePayments int64    `parquet:"late_payments"`
	Utilization  float32  `parquet:"utilization"`
}

type vectorRow struct {
	ID    string    `parquet:"id"`
	Input []float32 `parquet:"input,list"`
}

func writeParquet[T any](t *testing.T, rows []T, opts ...parquet.WriterOption) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[T](f, opts...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// TestParquetNullsDictionariesAndPages: null cells are rejected naming their column;
// dictionary-encoded and plain columns, and lists running across small pages and row
// groups, score as the same rows online.
func TestParquetNullsDictionariesAndPages(t *testing.T) {
	t.Run("tabular", func(t *testing.T) {
		var rows []optionalRow
		for i := range 1000 {
			r := batchgen.RowAt(21, i)
			age := float64(r.Age)
			row := optionalRow{ID: r.ID, Age: &age, Income: float32(i % 7), DebtRatio: r.DebtRatio, Tenure: r.Tenure, LatePayments: r.LatePayments, Utilization: r.Utilization}
			if i%10 == 3 {
				row.Age = nil
			}
			rows = append(rows, row)
		}
		in := writeParquet(t, rows, parquet.PageBufferSize(512), parquet.MaxRowsPerRowGroup(300))
		out := filepath.Join(t.TempDir(), "out.jsonl")
		p, err := batch.Run(context.Background(), testCore, batch.Options{Input: in, Output: out, Model: "tabular", Mapping: features, IDColumns: []string{"id"}, ChunkRows: 170})
		if err != nil || p.Rows != 900 || p.Rejected != 100 {
			t.Fatalf("%+v %v", p, err)
		}
		for _, r := range rejects(t, out+".rejects.jsonl") {
			if int(r["row"].(float64))%10 != 3 || !strings.Contains(r["error"].(string), `"age"`) {
				t.Fatalf("reject %v", r)
			}
		}
		got, _ := readOutput(t, out)
		for i := 0; i < 1000; i += 37 {
			if i%10 == 3 {
				continue
			}
			r := rows[i]
			want := score(t, "tabular", lane.Row{"age": *r.Age, "income": r.Income, "debt_ratio": r.DebtRatio, "tenure": r.Tenure, "late_payments": r.LatePayments, "utilization": r.Utilization})
			if v := got[r.ID]; len(v) != 1 || !near(v[0].(float64), float64(want[0])) {
				t.Fatalf("row %d: %v, online %v", i, v, want)
			}
		}
	})
	t.Run("vectors", func(t *testing.T) {
		var rows []vectorRow
		for i := range 600 {
			r := batchgen.VectorAt(23, i, 256)
			switch i % 7 {
			case 2:
				r.Input = r.Input[:255]
			case 5:
				r.Input = nil
			}
			rows = append(rows, vectorRow{ID: r.ID, Input: r.Input})
		}
		in := writeParquet(t, rows, parquet.PageBufferSize(3000), parquet.MaxRowsPerRowGroup(128))
		out := filepath.Join(t.TempDir(), "out.parquet")
		p, err := batch.Run(context.Background(), testCore, batch.Options{Input: in, Output: out, Model: "mlp", IDColumns: []string{"id"}, ChunkRows: 100})
		bad := 0
		for i := range 600 {
			if i%7 == 2 || i%7 == 5 {
				bad++
			}
		}
		if err != nil || p.Rows != int64(600-bad) || p.Rejected != int64(bad) {
			t.Fatalf("%+v %v", p, err)
		}
		got, header := readOutput(t, out)
		if strings.Join(header, ",") != "id,output" {
			t.Fatalf("columns %v", header)
		}
		for i := 0; i < 600; i += 11 {
			if i%7 == 2 || i%7 == 5 {
				if got[rows[i].ID] != nil {
					t.Fatalf("row %d was scored", i)
				}
				continue
			}
			want := score(t, "mlp", lane.Row{"input": rows[i].Input})
			v, _ := got[rows[i].ID][0].([]any)
			if len(v) != len(want) {
				t.Fatalf("row %d: %d outputs", i, len(v))
			}
			for k := range want {
				if !near(v[k].(float64), float64(want[k])) {
					t.Fatalf("row %d output %d: %v, online %v", i, k, v[k], want[k])
				}
			}
		}
	})
}

// score is one row scored alone, as an online request would.
func score(t testing.TB, model string, row lane.Row) []float32 {
	t.Helper()
	m := features
	if model != "tabular" {
		m = nil
	}
	s, err := lane.Describe(context.Background(), testCore, model, "", m)
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBuilder()
	if err := b.Add(row); err != nil {
		t.Fatal(err)
	}
	resp, err := testCore.Infer(context.Background(), b.Request("online"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := lane.Value(resp.Outputs[0])
	if err != nil {
		t.Fatal(err)
	}
	switch x := v.(type) {
	case float32:
		return []float32{x}
	case []float32:
		return x
	}
	t.Fatalf("output %T", v)
	return nil
}
