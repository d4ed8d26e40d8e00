package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// benchSpans are n traces as a sampled gRPC request makes them: the server span,
// InferRequest, queue and compute, with their attributes.
func benchSpans(b *testing.B, n int) []sdktrace.ReadOnlySpan {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := tp.Tracer(ScopeName)
	for range n {
		ctx, srv := tr.Start(context.Background(), "inference.GRPCInferenceService/ModelInfer", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", "inference.GRPCInferenceService"), attribute.String("rpc.method", "ModelInfer")))
		ctx, inf := tr.Start(ctx, "InferRequest", trace.WithAttributes(attribute.String("ferry.model.name", "identity_fp32")))
		inf.SetAttributes(attribute.String("ferry.request.id", "bench"), attribute.String("ferry.model.version", "1"), attribute.Int("ferry.request.items", 1))
		now := time.Now()
		_, q := tr.Start(ctx, "queue", trace.WithTimestamp(now))
		q.End(trace.WithTimestamp(now.Add(time.Microsecond)))
		_, c := tr.Start(ctx, "compute", trace.WithTimestamp(now), trace.WithAttributes(attribute.Int("ferry.batch.size", 4),
			attribute.Float64("ferry.compute.input_s", 1e-6), attribute.Float64("ferry.compute.infer_s", 1e-5), attribute.Float64("ferry.compute.output_s", 1e-6)))
		c.End()
		inf.End()
		srv.SetAttributes(attribute.Int("rpc.grpc.status_code", 0))
		srv.End()
	}
	return rec.Ended()
}

// BenchmarkExport is the time of exporting a span over OTLP/HTTP to a collector that
// discards it (the collector's own work included), through the SDK's exporter and
// through ours (export.go): same client, our transform.
//
//	go test -run=NONE -bench=Export -benchtime=200x ./internal/monitor/tracing/
func BenchmarkExport(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(sink.Close)
	b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.URL)
	spans := benchSpans(b, 128) // 512 spans: OTEL_BSP_MAX_EXPORT_BATCH_SIZE's default
	sdk, err := otlptracehttp.New(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	ours, err := newOTLPExporter(context.Background(), otlptracehttp.NewClient())
	if err != nil {
		b.Fatal(err)
	}
	for _, side := range []struct {
		name string
		exp  sdktrace.SpanExporter
	}{{"sdk", sdk}, {"ferry", ours}} {
		b.Run(side.name, func(b *testing.B) {
			exportLoop(b, side.exp, spans)
		})
	}
}

func exportLoop(b *testing.B, exp sdktrace.SpanExporter, spans []sdktrace.ReadOnlySpan) {
	{
		b.ReportAllocs()
		for b.Loop() {
			if err := exp.ExportSpans(context.Background(), spans); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
	}
}
