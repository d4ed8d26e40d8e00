package inferlog

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
)

// discardSink takes everything at once: what is left to measure is the logger.
type discardSink struct{}

func (discardSink) name() string { return "discard" }
func (discardSink) write(_ context.Context, b []*capture) (int, error) {
	return len(b), nil
}
func (discardSink) tick(time.Time)              {}
func (discardSink) close(context.Context) error { return nil }

// BenchmarkFinished is the request path's cost at 100% sampling: copy into a pooled
// capture and a channel send. When the queue is half full the loop waits (untimed) for
// the dispatcher to empty it, as it keeps up at serving rates (25k req/s against ~1µs
// to encode an entry), so the captures recycle and nothing drops; ns/finished times
// the calls alone.
func BenchmarkFinished(b *testing.B) {
	for _, bc := range []struct {
		name  string
		elems int
	}{{"3+1 floats", 3}, {"64+1 floats", 64}, {"1024+1 floats", 1024}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := Config{Buffer: 4096}.withDefaults()
			l := newLogger(cfg, slog.New(slog.DiscardHandler), nil, []sink{discardSink{}})
			r := record("model", "1", "client-1", time.Now())
			r.Inputs = []*tensor.Tensor{fp32("x", tensor.Shape{1, int64(bc.elems)}, make([]float32, bc.elems)...)}
			var in time.Duration
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				l.Finished(r)
				in += time.Since(start)
				if len(l.queue) > cap(l.queue)/2 {
					for len(l.queue) > 0 {
						runtime.Gosched()
					}
				}
			}
			b.StopTimer()
			_ = l.Close(context.Background())
			b.ReportMetric(float64(in.Nanoseconds())/float64(b.N), "ns/finished")
			b.ReportMetric(float64(l.dropped.Load())/float64(b.N), "dropped/op")
		})
	}
}

// BenchmarkFinishedFlood calls Finished as fast as it can: the encoder cannot keep up,
// so most calls take the drop path.
func BenchmarkFinishedFlood(b *testing.B) {
	cfg := Config{Buffer: 4096}.withDefaults()
	l := newLogger(cfg, slog.New(slog.DiscardHandler), nil, []sink{discardSink{}})
	r := record("model", "1", "client-1", time.Now())
	b.ReportAllocs()
	for b.Loop() {
		l.Finished(r)
	}
	b.StopTimer()
	_ = l.Close(context.Background())
	b.ReportMetric(float64(l.dropped.Load())/float64(b.N), "dropped/op")
}

// BenchmarkEndToEnd: Finished as fast as it can through the encoder into the file
// sink, on the same two cores; written/s is what the log sustains (the rest drops).
func BenchmarkEndToEnd(b *testing.B) {
	l, err := New(Config{Dir: b.TempDir(), Buffer: 1 << 14}, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := record("model", "1", "client-1", time.Now())
	start := time.Now()
	for b.Loop() {
		l.Finished(r)
	}
	if err := l.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(l.sinks[0].records.Load())/time.Since(start).Seconds(), "written/s")
	b.ReportMetric(float64(l.dropped.Load())/float64(b.N), "dropped/op")
}

// BenchmarkPipeline is the log's whole cost per entry as a busy server pays it. Two
// goroutines (the cores) each do ~20 µs of stand-in request work and then call
// Finished, so the machine is saturated and never idles; the log's dispatcher and file
// sink share the cores with them. Runs with and without the log alternate, and
// log_cpu_ns/entry is the difference of the process's CPU time (getrusage: user and
// system, the close that writes the last entry included) divided by the entries;
// finished_ns/entry is the time in Finished alone (the clock reads around it taken out),
// the request path's share.
// Shapes: identity_fp32's 16 floats in and out, and mlp's 256 in and 10 out
// (BenchmarkMonitoring's two models).
func BenchmarkPipeline(b *testing.B) {
	for _, bc := range []struct {
		name    string
		in, out int
	}{{"16+16 floats", 16, 16}, {"256+10 floats", 256, 10}} {
		b.Run(bc.name, func(b *testing.B) {
			r := record("model", "1", "", time.Now())
			r.Inputs = []*tensor.Tensor{fp32("input", tensor.Shape{1, int64(bc.in)}, make([]float32, bc.in)...)}
			r.Outputs = []*tensor.Tensor{fp32("output", tensor.Shape{1, int64(bc.out)}, make([]float32, bc.out)...)}
			const entries = 50000
			var with, without time.Duration
			var dropped uint64
			var finished, none atomic.Int64 // ns in Finished (two clock reads each included); the same reads alone
			for range b.N {
				without += pipelineRun(b, nil, r, entries, &none)
				l, err := New(Config{Dir: b.TempDir()}, nil)
				if err != nil {
					b.Fatal(err)
				}
				with += pipelineRun(b, l, r, entries, &finished)
				dropped += l.dropped.Load() + l.sinks[0].dropped.Load()
			}
			b.ReportMetric(float64((with-without).Nanoseconds())/float64(b.N*entries), "log_cpu_ns/entry")
			b.ReportMetric(float64(without.Nanoseconds())/float64(b.N*entries), "work_cpu_ns/entry")
			b.ReportMetric(float64(dropped), "dropped")
			b.ReportMetric(float64(finished.Load()-none.Load())/float64(b.N*entries), "finished_ns/entry")
		})
	}
}

// pipelineRun does n units of stand-in work on two goroutines, logging each with l (if
// any) and adding the time each Finished took to in, closes l and returns the process
// CPU time it took.
func pipelineRun(b *testing.B, l *Logger, r *core.Record, n int, in *atomic.Int64) time.Duration {
	cpu0 := processCPU(b)
	var wg sync.WaitGroup
	var sink atomic.Uint64
	for range 2 {
		wg.Go(func() {
			x := uint64(1)
			for range n / 2 {
				for range 20000 { // ~20 µs
					x = x*6364136223846793005 + 1442695040888963407
				}
				start := time.Now() // both ways, so the difference leaves the clock out
				if l != nil {
					l.Finished(r)
				}
				in.Add(int64(time.Since(start)))
				runtime.Gosched() // a request goroutine blocks on its connection next
			}
			sink.Add(x)
		})
	}
	wg.Wait()
	if l != nil {
		if err := l.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	return processCPU(b) - cpu0
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
