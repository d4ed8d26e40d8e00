package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ferryml/ferry/internal/platform/background"
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
	failed  atomic.Uint64 // spans whose export failed: lost

	// The loop's failed exports are reported through report (otel.Handle, the log):
	// the first of a run of them, then at most one a minute while it lasts. A collector
	// that is down would otherwise either fill the log with ten errors a second or,
	// as before, leave no trace at all.
	report     func(error)
	failing    bool      // the last export failed
	reported   time.Time // when a failure was last reported
	unreported int       // failed exports since then

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
		stop:       make(chan struct{}), done: make(chan struct{}), report: otel.Handle}
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
		case now := <-t.C:
			background.Yield()
			n, err := b.export(b.loopCtx)
			b.noteExport(now, n, err)
		}
	}
}

// reportEvery is the most often a run of failed exports is reported.
const reportEvery = time.Minute

// noteExport reports the loop's export failures (see report). An export of nothing
// says nothing about the collector.
func (b *batcher) noteExport(now time.Time, spans int, err error) {
	if spans == 0 {
		return
	}
	if err == nil {
		b.failing = false
		return
	}
	b.unreported++
	if b.failing && now.Sub(b.reported) < reportEvery {
		return
	}
	b.report(fmt.Errorf("exporting spans failed (%d failed exports, %d spans lost in all; reported at most once a minute): %w",
		b.unreported, b.failed.Load(), err))
	b.failing, b.reported, b.unreported = true, now, 0
}

// SpansFailed counts the sampled spans lost because their export failed, over the
// latest Setup.
func SpansFailed() uint64 {
	if b := lastBatcher.Load(); b != nil {
		return b.failed.Load()
	}
	return 0
}

// export sends everything buffered, in batches of maxBatch, and returns how many spans
// it tried to send.
func (b *batcher) export(ctx context.Context) (int, error) {
	b.exportMu.Lock()
	defer b.exportMu.Unlock()
	b.mu.Lock()
	spans := b.spans
	b.spans = make([]sdktrace.ReadOnlySpan, 0, min(2*len(spans)+16, b.maxQueue))
	b.mu.Unlock()
	var errs []error
	tried := len(spans)
	for len(spans) > 0 {
		n := min(len(spans), b.maxBatch)
		ectx, cancel := context.WithTimeout(ctx, b.timeout)
		if err := b.exp.ExportSpans(ectx, spans[:n]); err != nil {
			b.failed.Add(uint64(n))
			errs = append(errs, err)
		}
		cancel()
		spans = spans[n:]
	}
	return tried, errors.Join(errs...)
}

func (b *batcher) ForceFlush(ctx context.Context) error {
	_, err := b.export(ctx)
	return err
}

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
		_, flushErr := b.export(ctx)
		err = errors.Join(flushErr, b.exp.Shutdown(ctx))
	})
	return err
}
