package tracing

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
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

// TestExportFailuresAreReportedOnceAMinute: with no collector at the endpoint, the
// spans lost are counted and the failure is logged once, not at every 100 ms export,
// and the empty exports between spans do not count as the collector being back (it was
// not logged at all: a soak ran 5 minutes against a dead endpoint in silence).
func TestExportFailuresAreReportedOnceAMinute(t *testing.T) {
	clearEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+dead)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_BSP_EXPORT_TIMEOUT", "100")                // ms: the exporter's retries give up within it
	logs, err := os.Create(filepath.Join(t.TempDir(), "log")) // written by the loop, read here
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	shutdown, err := Setup(context.Background(), "ferry-test", "v0.0.1", slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for time.Since(start) < 1500*time.Millisecond { // flushes of a span, then of nothing
		_, s := Tracer().Start(context.Background(), "lost")
		s.End()
		time.Sleep(250 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = shutdown(ctx) // its flush fails too, and says so to the caller
	b, err := os.ReadFile(logs.Name())
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if n := strings.Count(out, "exporting spans failed"); n != 1 {
		t.Errorf("%d reports of failed exports in 1.5 s, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, dead) && !strings.Contains(out, "context deadline exceeded") {
		t.Errorf("the report does not say what failed:\n%s", out)
	}
	if SpansFailed() == 0 {
		t.Error("no span counted as lost")
	}
}
