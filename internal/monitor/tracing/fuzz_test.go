package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/ferryml/ferry/internal/core"
)

// FuzzTraceHeaders: whatever traceparent and tracestate a client sends, over REST or
// gRPC metadata, the request is served (no panic) and its span joins the client's trace
// exactly when core.TraceParent, Ferry's own reading of the W3C rules, accepts it.
func FuzzTraceHeaders(f *testing.F) {
	f.Add(traceparent, "vendor=x")
	f.Add("ff-"+incomingTrace+"-"+incomingSpan+"-01", "")
	f.Add("00-"+incomingTrace+"-"+incomingSpan+"-01-", "a=1,,b=2")
	f.Add("01-"+incomingTrace+"-"+incomingSpan+"-01-future", strings.Repeat("k=v,", 40))
	f.Add("00-"+strings.ToUpper(incomingTrace)+"-"+incomingSpan+"-01", "=")
	f.Add("00-00000000000000000000000000000000-"+incomingSpan+"-01", "k=\x00")
	tp := sdktrace.NewTracerProvider() // samples everything, exports nowhere
	f.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := tp.Tracer(ScopeName)
	f.Fuzz(func(t *testing.T, tp, ts string) {
		h := &httpTracer{next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			checkJoined(t, r.Context(), r.Header.Get("traceparent"))
		}), tr: tr, route: func(*http.Request) string { return "" }}
		req := httptest.NewRequest(http.MethodPost, "/v2/models/m/infer", nil)
		req.Header["Traceparent"] = []string{tp}
		req.Header["Tracestate"] = []string{ts}
		h.ServeHTTP(httptest.NewRecorder(), req)

		md := metadata.MD{"traceparent": {tp}, "tracestate": {ts}}
		ctx, span := startRPC(metadata.NewIncomingContext(context.Background(), md), tr, "/s/m")
		checkJoined(t, ctx, tp)
		endRPC(span, nil)
		span.End()
	})
}

// checkJoined fails unless ctx's span is in the incoming trace exactly when tp is valid.
func checkJoined(t testing.TB, ctx context.Context, tp string) {
	sc := trace.SpanContextFromContext(ctx)
	joined := sc.TraceID().String() == tp[min(3, len(tp)):min(35, len(tp))]
	if valid := core.TraceParent(tp) != ""; joined != valid {
		t.Fatalf("traceparent %q: joined the trace = %v, core.TraceParent accepts it = %v", tp, joined, valid)
	}
}
