package reqlog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func decode(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not one JSON object: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestHandlerAddsTheRequestsFields(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(Handler(slog.NewJSONHandler(&b, nil))).With("component", "http")
	f := &Fields{}
	ctx := NewContext(context.Background(), f)
	f.Request("id-1\n{\"forged\":true}", "mlp", "")
	f.Answered("2")
	f.SetTenant("acme")
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))

	log.ErrorContext(ctx, "request failed", "err", "boom")
	log.WarnContext(ctx, "stream failed", "model", "other") // the line's own model wins
	log.Info("no request")                                  // no context: nothing added
	var nilFields *Fields
	nilFields.Request("x", "y", "z") // a request without Fields logs the same way
	log.InfoContext(NewContext(context.Background(), nilFields), "nil fields")

	lines := decode(t, &b)
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4 (a field forged one?)", len(lines))
	}
	want := map[string]any{"request_id": "id-1\n{\"forged\":true}", "model": "mlp", "version": "2", "tenant": "acme",
		"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7", "component": "http"}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("first line: %s = %v, want %v", k, lines[0][k], v)
		}
	}
	if lines[1]["model"] != "other" {
		t.Errorf("a line's own model was replaced: %v", lines[1])
	}
	for _, l := range lines[2:] {
		for _, k := range []string{"request_id", "model", "trace_id"} {
			if _, ok := l[k]; ok {
				t.Errorf("line %v without a request's context has %s", l, k)
			}
		}
	}
}

// BenchmarkHandlerWithoutRequest is the cost the wrapper adds to a line logged without
// a request's context (most lines of a server).
func BenchmarkHandlerWithoutRequest(b *testing.B) {
	log := slog.New(Handler(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx := context.Background()
	for b.Loop() {
		log.DebugContext(ctx, "not logged")
	}
}

// BenchmarkHTTPLayers is what every REST request pays for its log fields, tracing or
// not: the Fields layer, the tenant layer and the transport's two updates.
func BenchmarkHTTPLayers(b *testing.B) {
	h := HTTP(TenantHTTP(func(context.Context) string { return "" })(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := FromContext(r.Context())
		f.Request("1", "identity_fp32", "")
		f.Answered("1")
	})))
	req := httptest.NewRequest(http.MethodPost, "/v2/models/identity_fp32/infer", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
