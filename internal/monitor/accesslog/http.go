package accesslog

import (
	"context"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ferryml/ferry/internal/monitor/reqlog"
)

// HTTP returns the layer that logs each request through it, and gives each one
// reqlog.Fields for the transport to fill in. route names the request's route pattern
// (a ServeMux's, such as "POST /v2/models/{model}/infer"); the path is not logged, so a
// line holds no client-chosen text but the model name and request id, which are escaped.
// A nil *Log (no --access-log) returns next itself.
func (l *Log) HTTP(route func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if l == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ctx, f := withFields(r.Context())
			cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
			var body *countingBody
			if r.Body != nil && r.Body != http.NoBody {
				body = &countingBody{ReadCloser: r.Body}
				r.Body = body
			}
			r = r.WithContext(ctx)
			next.ServeHTTP(cw, r)
			e := Entry{Time: start, Protocol: "http", Method: r.Method, Route: route(r), Status: cw.status,
				Duration: time.Since(start), BytesOut: cw.n}
			if body != nil {
				e.BytesIn = body.n
			}
			e.RequestID, e.Model, e.Version, e.Tenant = f.Snapshot()
			if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
				e.TraceID = sc.TraceID().String()
			}
			l.Add(e)
		})
	}
}

// withFields returns the request's Fields, giving it new ones if it has none.
func withFields(ctx context.Context) (context.Context, *reqlog.Fields) {
	if f := reqlog.FromContext(ctx); f != nil {
		return ctx, f
	}
	f := &reqlog.Fields{}
	return reqlog.NewContext(ctx, f), f
}

// countingWriter counts the body bytes written and remembers the status.
type countingWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	n      int64
}

func (w *countingWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts the request body bytes the handler read.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
