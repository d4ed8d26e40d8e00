package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/batch/batchgen"
	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/mgmtclient"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
)

// BenchmarkOnlineP99WithJob prints, in one run, online requests' p50 and p99 at a
// steady rate with a server-side batch job of the same model running (resubmitted
// while the window lasts) against the same traffic with none: the job's rows queue
// behind online ones (core.InferRequest.Background). Windows alternate, -benchrounds of
// each. The model is mlp (one instance, batches of up to 64): online rows and the job's
// batches meet in one queue and one instance.
func BenchmarkOnlineP99WithJob(b *testing.B) {
	const jobRows, rate, window = 60000, 1000, 4 * time.Second
	servingGC(b) // as ferry serve tunes it
	repo, _ := batchSetup(b)
	dir := b.TempDir()
	if err := batchgen.Write(filepath.Join(dir, "in.parquet"), batchgen.Options{Rows: jobRows, Vector: 256, RowGroupRows: 8192, Seed: 3}); err != nil {
		b.Fatal(err)
	}
	ts := startServer(b, repo, func(c *serveConfig) { c.mode, c.loadModels = "explicit", []string{"mlp"} }, withJobsDir(dir))
	mc, err := mgmtclient.New(ts.URL, nil)
	if err != nil {
		b.Fatal(err)
	}
	m := ts.grpc.Model("mlp", "")
	data := make([]byte, 0, 4*256)
	for i := range 256 {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(i%13)/13))
	}
	req := &v2client.Request{Inputs: []*tensor.Tensor{{Name: "input", DType: tensor.FP32, Shape: tensor.Shape{1, 256}, Data: data}}}
	b.ResetTimer()
	var without, with []time.Duration
	jobs := 0
	inferred := func() (n uint64) {
		for _, s := range ts.core.StatsSnapshot() {
			n += s.InferenceCount
		}
		return n
	}
	var jobRowsDone uint64
	var jobTime time.Duration
	for range *vsRounds {
		without = append(without, paced(b, m, req, rate, window, nil)...)
		before, start := inferred(), time.Now()
		lat := paced(b, m, req, rate, window, func(ctx context.Context) {
			for ctx.Err() == nil { // the job runs for the whole window
				jobs++
				j, err := mc.SubmitJob(context.Background(), mgmtapi.JobSpec{Model: "mlp", Input: "in.parquet", Output: "out-" + strconv.Itoa(jobs) + ".parquet", IDColumns: []string{"id"}, ChunkRows: 512})
				if err != nil {
					b.Error(err)
					return
				}
				for !j.Done() {
					if ctx.Err() != nil {
						mc.CancelJob(context.Background(), j.ID)
					}
					time.Sleep(20 * time.Millisecond)
					if j, err = mc.Job(context.Background(), j.ID); err != nil {
						b.Error(err)
						return
					}
				}
				if j.State == mgmtapi.JobFailed {
					b.Errorf("job: %s", j.Error)
					return
				}
			}
		})
		jobRowsDone += inferred() - before - uint64(len(lat))
		jobTime += time.Since(start)
		with = append(with, lat...)
	}
	p := func(ds []time.Duration, q float64) time.Duration {
		slices.Sort(ds)
		return ds[min(int(q*float64(len(ds))), len(ds)-1)]
	}
	b.ReportMetric(float64(p(with, 0.99))/float64(p(without, 0.99)), "p99_ratio")
	fmt.Printf("online mlp at %d req/s: p50 %v p99 %v alone; p50 %v p99 %v with a batch job running (%d jobs submitted, %.0f job rows/s); p99 ratio %.2f (goal <= 1.5)\n",
		rate, p(without, 0.5), p(without, 0.99), p(with, 0.5), p(with, 0.99), jobs, float64(jobRowsDone)/jobTime.Seconds(), float64(p(with, 0.99))/float64(p(without, 0.99)))
}

// paced sends req at rate per second for d (open loop: each request at its own time,
// whatever the earlier ones took) while background runs, and returns every latency.
func paced(b *testing.B, m v2model, req *v2client.Request, rate int, d time.Duration, background func(context.Context)) []time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	if background != nil {
		bg.Go(func() { background(ctx) })
		time.Sleep(500 * time.Millisecond) // the job is scoring before the window opens
	}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	end := time.After(d)
loop:
	for {
		select {
		case <-end:
			break loop
		case <-tick.C:
			wg.Go(func() {
				start := time.Now()
				if _, err := m.Infer(context.Background(), req); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(start))
				mu.Unlock()
			})
		}
	}
	tick.Stop()
	wg.Wait()
	cancel()
	bg.Wait()
	return lat
}
