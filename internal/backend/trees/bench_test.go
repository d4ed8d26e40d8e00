package trees_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferryml/ferry/internal/backend/trees"
	"github.com/ferryml/ferry/internal/tensor"
)

// BenchmarkExecuteVsLeaves: one goroutine, the benchmark model (100 trees of depth 6
// over 32 features): leaves' PredictDense on float64 rows against Instance.Execute on
// an FP32 batch (decode, predict, encode), per row.
func BenchmarkExecuteVsLeaves(b *testing.B) {
	_, path := generated(b, 100, 6, 32)
	in, err := trees.Open(path, trees.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	for _, rows := range []int{1, 16, 128, 1024} {
		data := randomRows(5, rows, 32)
		var vals []float64
		for _, r := range data {
			vals = append(vals, r...)
		}
		x := batch(tensor.FP32, data)
		preds := make([]float64, rows)
		b.Run(fmt.Sprintf("leaves/rows=%d", rows), func(b *testing.B) {
			for b.Loop() {
				if err := in.Model().Leaves().PredictDense(vals, rows, 32, preds, 0, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
		})
		b.Run(fmt.Sprintf("execute/rows=%d", rows), func(b *testing.B) {
			for b.Loop() {
				if _, err := in.Execute(context.Background(), []*tensor.Tensor{x}, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
		})
	}
}
