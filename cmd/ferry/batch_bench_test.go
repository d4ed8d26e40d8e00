package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/batch"
	"github.com/ferryml/ferry/internal/batch/batchgen"
	"github.com/ferryml/ferry/internal/bench"
	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/modelconfig"
)

// BenchmarkBatchVsEngine prints, in one run, a batch job's rows/s over a Parquet file
// against the engine limit of the same model at the same batch size, measured by
// bench.RunEngine as `ferry bench --engine` measures it. The model is mlp (256 inputs
// -> 10 outputs): its compute per row is what a batch job exists to saturate; the
// tabular model's engine limit (~24M rows/s at batch 256) is far beyond what reading
// any file can feed, so its ratio would measure Parquet decoding, not the lane.
func BenchmarkBatchVsEngine(b *testing.B) {
	const rows, maxBatch = 120000, 64
	repo, _ := batchSetup(b) // examples/models/mlp: batches of up to 64 rows, one instance
	in := filepath.Join(b.TempDir(), "in.parquet")
	if err := batchgen.Write(in, batchgen.Options{Rows: rows, Vector: 256, RowGroupRows: 8192, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()

	log := slog.New(slog.DiscardHandler)
	cfg := batchConfig{serve: serveConfig{repository: repo, limits: core.DefaultLimits()}, opts: batch.Options{Model: "mlp"}}
	c, closeCore, err := batchCore(ctx, cfg, testRuntime, log)
	if err != nil {
		b.Fatal(err)
	}
	defer closeCore()
	b.ResetTimer()
	// Engine and job take turns, and each keeps its best: on shared cores, what other
	// processes take would otherwise decide the ratio.
	var best, engine, busy float64
	for range b.N {
		engine = max(engine, engineLimit(b, filepath.Join(repo, "mlp"), maxBatch))
		before := computeInfer(c)
		start := time.Now()
		p, err := batch.Run(ctx, c, batch.Options{Input: in, Output: filepath.Join(b.TempDir(), "out.parquet"), Model: "mlp", IDColumns: []string{"id"}})
		if err != nil || p.Rows != rows {
			b.Fatalf("%+v %v", p, err)
		}
		wall := time.Since(start)
		if r := float64(rows) / wall.Seconds(); r > best {
			best, busy = r, (computeInfer(c)-before).Seconds()/wall.Seconds()
		}
	}
	b.ReportMetric(best, "rows/s")
	b.ReportMetric(best/engine, "ratio")
	fmt.Printf("batch %0.f rows/s over %d rows of Parquet (the model computing %.0f%% of the job's time); engine limit at batch %d %0.f rows/s; ratio %.2f\n",
		best, rows, 100*busy, maxBatch, engine, best/engine)
}

// computeInfer is the time the model has spent computing so far.
func computeInfer(c *core.Server) time.Duration {
	var d time.Duration
	for _, s := range c.StatsSnapshot() {
		d += s.ComputeInfer.Total
	}
	return d
}

// engineLimit is the model's items/s at batch size n, by the code of `ferry bench --engine`.
func engineLimit(b *testing.B, dir string, n int) float64 {
	mcfg, _, err := engineConfig(dir)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "1", "model.onnx")
	mio, err := testRuntime.Inspect(path)
	if err != nil {
		b.Fatal(err)
	}
	m := bench.Model{Name: "mlp", Version: "1", MaxBatchSize: n}
	for _, in := range mio.Inputs {
		m.Inputs = append(m.Inputs, bench.Input{Name: in.Name, DType: in.DType, Shape: in.Shape})
	}
	opts, err := onnx.OptionsFromConfig(mcfg, 0, true)
	if err != nil {
		b.Fatal(err)
	}
	var engines []bench.Engine
	for range modelconfig.Instances(mcfg) {
		s, err := testRuntime.Open(path, opts)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		engines = append(engines, sessionEngine{s})
	}
	rep, err := bench.RunEngine(context.Background(), engines, m, bench.EngineOptions{BatchSizes: []int{n}, Duration: 2 * time.Second, Warmup: 500 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	return rep.Levels[0].ItemsPerSec
}
