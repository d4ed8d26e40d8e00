package inferlog

import (
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"

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
