package tracing

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// batcher is the span processor: ended spans are appended to a buffer under a mutex,
// and one goroutine exports what the buffer holds every flushEvery. The SDK's batch
// processor hands every span to its goroutine through a channel, which wakes that
// goroutine for each span: at 10% sampling of 30,000 requests/s, twelve thousand
// wake-ups a second on a serving machine's cores. A full buffer drops spans (counted).
//
// The OTEL_BSP_* variables keep their meaning: OTEL_BSP_MAX_QUEUE_SIZE (2048) bounds
// the buffer, OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512) one export, OTEL_BSP_EXPORT_TIMEOUT
// (30 s) its time, and OTEL_BSP_SCHEDULE_DELAY (5 s) is the longest a span waits, though
// the buffer is exported every 100 ms.
type batcher struct {
	exp        sdktrace.SpanExporter
	maxQueue   int
	maxBatch   int
	timeout    time.Duration
	flushEvery time.Duration

	mu      sync.Mutex
	spans   []sdktrace.ReadOnlySpan
	dropped atomic.Uint64

	exportMu sync.Mutex // one export at a time: the loop's, a ForceFlush's
	loopCtx  context.Context
	cancel   context.CancelFunc // ends the loop's export when Shutdown cannot wait
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// flushEvery's default: a span waits at most this long in the buffer.
const defaultFlushEvery = 100 * time.Millisecond

func newBatcher(exp sdktrace.SpanExporter) *batcher {
	b := &batcher{exp: exp, maxQueue: envInt("OTEL_BSP_MAX_QUEUE_SIZE", 2048), maxBatch: envInt("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
		timeout:    time.Duration(envInt("OTEL_BSP_EXPORT_TIMEOUT", 30000)) * time.Millisecond,
		flushEvery: min(defaultFlushEvery, time.Duration(envInt("OTEL_BSP_SCHEDULE_DELAY", 5000))*time.Millisecond),
		stop:       make(chan struct{}), done: make(chan struct{})}
	b.maxBatch = min(b.maxBatch, b.maxQueue)
	b.loopCtx, b.cancel = context.WithCancel(context.Background())
	go b.run()
	return b
}

// envInt reads a positive integer variable, else def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func (b *batcher) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (b *batcher) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	b.mu.Lock()
	if len(b.spans) < b.maxQueue {
		b.spans = append(b.spans, s)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	b.dropped.Add(1)
}

func (b *batcher) run() {
	defer close(b.done)
	t := time.NewTicker(b.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			_ = b.export(b.loopCtx)
		}
	}
}

// export sends everything buffered, in batches of maxBatch.
func (b *batcher) export(ctx context.Context) error {
	b.exportMu.Lock()
	defer b.exportMu.Unlock()
	b.mu.Lock()
	spans := b.spans
	b.spans = make([]sdktrace.ReadOnlySpan, 0, min(2*len(spans)+16, b.maxQueue))
	b.mu.Unlock()
	var errs []error
	for len(spans) > 0 {
		n := min(len(spans), b.maxBatch)
		ectx, cancel := context.WithTimeout(ctx, b.timeout)
		errs = append(errs, b.exp.ExportSpans(ectx, spans[:n]))
		cancel()
		spans = spans[n:]
	}
	return errors.Join(errs...)
}

func (b *batcher) ForceFlush(ctx context.Context) error { return b.export(ctx) }

func (b *batcher) Shutdown(ctx context.Context) error {
	var err error
	b.once.Do(func() {
		close(b.stop)
		select {
		case <-b.done:
		case <-ctx.Done(): // the loop's export is stuck on a dead collector
			b.cancel()
			<-b.done
		}
		b.cancel()
		err = errors.Join(b.export(ctx), b.exp.Shutdown(ctx))
	})
	return err
}
