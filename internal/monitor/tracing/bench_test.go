package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// BenchmarkHTTPLayer is the CPU one request spends in the HTTP layer (and a child span,
// as core's InferRequest), by sampler: what tracing adds to a request besides export.
func BenchmarkHTTPLayer(b *testing.B) {
	for _, tc := range []struct {
		name    string
		sampler trace.Sampler
	}{{"unsampled", trace.NeverSample()}, {"sampled", trace.AlwaysSample()}, {"ratio 0.1", trace.TraceIDRatioBased(0.1)}} {
		b.Run(tc.name, func(b *testing.B) {
			tp := trace.NewTracerProvider(trace.WithSampler(tc.sampler), trace.WithBatcher(tracetest.NewNoopExporter()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			tr := tp.Tracer(ScopeName)
			mux := http.NewServeMux()
			mux.HandleFunc("POST /v2/models/{model}/infer", func(w http.ResponseWriter, r *http.Request) {
				_, span := tr.Start(r.Context(), "InferRequest")
				span.End()
			})
			h := &httpTracer{next: mux, tr: tr, route: func(r *http.Request) string { _, p := mux.Handler(r); return p }}
			req := httptest.NewRequest(http.MethodPost, "/v2/models/m/infer", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkSampledRequestSpans is the spans of one sampled gRPC request (the server span,
// InferRequest, queue and compute, with Ferry's attributes) from Start to the batcher,
// export aside (BenchmarkExport), through the SDK's tracer and the lean one.
func BenchmarkSampledRequestSpans(b *testing.B) {
	for _, lean := range []bool{false, true} {
		b.Run(map[bool]string{false: "sdk", true: "lean"}[lean], func(b *testing.B) {
			// Exported (to nothing) every millisecond, so that the spans waiting in the
			// buffer are as few as a server's at 10% sampling, not a heap's worth for the
			// collector to mark.
			b.Setenv("OTEL_BSP_SCHEDULE_DELAY", "1")
			bp := newBatcher(tracetest.NewNoopExporter())
			bp.maxQueue = 1 << 16
			res := resource.Empty()
			tp := trace.NewTracerProvider(trace.WithSpanProcessor(bp), trace.WithResource(res), trace.WithIDGenerator(randomIDs{}))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			var tr oteltrace.Tracer = tp.Tracer(ScopeName)
			if lean {
				tr = &leanTracer{tp: tp, b: bp, res: res, scope: instrumentation.Scope{Name: ScopeName}}
			}
			prev := active.Swap(tp)
			b.Cleanup(func() { active.Store(prev) })
			rpc := rpcNameOf("/inference.GRPCInferenceService/ModelInfer")
			b.ReportAllocs()
			for b.Loop() {
				ctx, srv := tr.Start(context.Background(), rpc.name, oteltrace.WithSpanKind(oteltrace.SpanKindServer))
				srv.SetAttributes(rpc.attrs...)
				ctx, inf := tr.Start(ctx, "InferRequest", oteltrace.WithAttributes(attribute.String("ferry.model.name", "identity_fp32")))
				inf.SetAttributes(attribute.String("ferry.request.id", "bench"))
				inf.SetAttributes(attribute.String("ferry.model.version", "1"), attribute.Int("ferry.request.items", 1))
				now := time.Now()
				_, q := tr.Start(ctx, "queue", oteltrace.WithTimestamp(now))
				q.End(oteltrace.WithTimestamp(now.Add(time.Microsecond)))
				_, c := tr.Start(ctx, "compute", oteltrace.WithTimestamp(now), oteltrace.WithAttributes(attribute.Int("ferry.batch.size", 4),
					attribute.Float64("ferry.compute.input_s", 1e-6), attribute.Float64("ferry.compute.infer_s", 1e-5), attribute.Float64("ferry.compute.output_s", 1e-6)))
				c.End(oteltrace.WithTimestamp(now.Add(2 * time.Microsecond)))
				inf.End()
				srv.SetAttributes(attribute.Int("rpc.grpc.status_code", 0))
				srv.End()
			}
		})
	}
}
