package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
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
