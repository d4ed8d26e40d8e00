package tracing

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestBatcherExportsEverySpanOnceAndDropsPastItsQueue: spans reach the exporter within
// the flush interval, a Shutdown flushes the rest, and a full buffer drops (and counts)
// instead of blocking the span's End.
func TestBatcherExportsEverySpanOnceAndDropsPastItsQueue(t *testing.T) {
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")
	exp := tracetest.NewInMemoryExporter()
	b := newBatcher(exp)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))
	tr := tp.Tracer("test")
	for range 50 {
		_, s := tr.Start(context.Background(), "one")
		s.End()
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(exp.GetSpans()) < 50 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(exp.GetSpans()); n != 50 {
		t.Fatalf("exported %d spans within 5s, want 50", n)
	}
	b.exportMu.Lock() // hold the loop's export: the buffer fills
	for range 150 {
		_, s := tr.Start(context.Background(), "two")
		s.End()
	}
	b.exportMu.Unlock()
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, d := len(exp.GetSpans()), b.dropped.Load(); n+int(d) != 200 || d < 50 {
		t.Fatalf("exported %d and dropped %d of 200 spans, want all accounted for and at least 50 dropped", n, d)
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
