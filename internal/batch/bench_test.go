package batch_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/batch"
	"github.com/ferryml/ferry/internal/batch/batchgen"
	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/tensor"
)

// BenchmarkRun scores a file of the tabular model's rows, Parquet and JSON lines, and
// reports rows/s.
func BenchmarkRun(b *testing.B) {
	for _, name := range []string{"in.parquet", "in.jsonl", "in.csv"} {
		b.Run(name, func(b *testing.B) { runTabular(b, name) })
	}
}

func runTabular(b *testing.B, name string) {
	const rows = 200000
	in := gen(b, name, batchgen.Options{Rows: rows, Seed: 1})
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

// BenchmarkRunVectors scores a file of 256-number lists with the mlp model, Parquet
// and JSON lines.
func BenchmarkRunVectors(b *testing.B) {
	for _, name := range []string{"in.parquet", "in.jsonl"} {
		b.Run(name, func(b *testing.B) { runVectors(b, testCore, name, 30000) })
	}
}

// BenchmarkRunVectorsLane is BenchmarkRunVectors with an instant model: the lane's cost
// per row (reading, batching, splitting, writing), which on a busy machine takes
// cores from the model.
func BenchmarkRunVectorsLane(b *testing.B) { runVectors(b, headCore{testCore}, "in.parquet", 60000) }

func runVectors(b *testing.B, c lane.Core, name string, rows int) {
	in := gen(b, name, batchgen.Options{Rows: rows, Vector: 256, RowGroupRows: 8192, Seed: 1})
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		start := time.Now()
		if _, err := batch.Run(context.Background(), c, batch.Options{Input: in, Output: filepath.Join(b.TempDir(), "out.parquet"), Model: "mlp", IDColumns: []string{"id"}}); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(rows*b.N)/total.Seconds(), "rows/s")
	b.ReportMetric(total.Seconds()*1e6/float64(rows*b.N), "µs/row")
}

// headCore is the example models' core with an instant model: mlp's output for a row
// is the row's first ten inputs. A job over it spends its time in the lane's own
// work, which is what a benchmark of that work wants.
type headCore struct{ lane.Core }

func (c headCore) Infer(_ context.Context, req *core.InferRequest) (*core.InferResponse, error) {
	in := req.Inputs[0]
	if in.DType != tensor.FP32 || len(in.Shape) != 2 || in.Shape[1] != 256 {
		return nil, fmt.Errorf("%w: input %q is %s %v, want FP32 [n 256]", core.ErrInvalid, in.Name, in.DType, in.Shape)
	}
	n := in.Shape[0]
	out := make([]byte, 0, n*40)
	for r := range n {
		out = append(out, in.Data[r*1024:r*1024+40]...)
	}
	return &core.InferResponse{Model: req.Model, Outputs: []*tensor.Tensor{{Name: "output", DType: tensor.FP32, Shape: tensor.Shape{n, 10}, Data: out}}}, nil
}
