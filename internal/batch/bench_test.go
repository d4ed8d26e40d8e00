package batch_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/batch"
	"github.com/ferryml/ferry/internal/batch/batchgen"
)

// BenchmarkRun scores a Parquet file of the tabular model's rows and reports rows/s.
func BenchmarkRun(b *testing.B) {
	const rows = 200000
	in := gen(b, "in.parquet", batchgen.Options{Rows: rows, Seed: 1})
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		out := filepath.Join(b.TempDir(), "out.parquet")
		start := time.Now()
		if _, err := batch.Run(context.Background(), testCore, batch.Options{Input: in, Output: out, Model: "tabular", Mapping: features}); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(rows*b.N)/total.Seconds(), "rows/s")
}

// BenchmarkRunVectors scores a Parquet file of 256-number lists with the mlp model.
func BenchmarkRunVectors(b *testing.B) {
	const rows = 30000
	in := gen(b, "in.parquet", batchgen.Options{Rows: rows, Vector: 256, RowGroupRows: 8192, Seed: 1})
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		start := time.Now()
		if _, err := batch.Run(context.Background(), testCore, batch.Options{Input: in, Output: filepath.Join(b.TempDir(), "out.parquet"), Model: "mlp", IDColumns: []string{"id"}}); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(rows*b.N)/total.Seconds(), "rows/s")
}
