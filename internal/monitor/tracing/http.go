package tracing

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferryml/ferry/internal/core"
)

// HTTP returns the layer that gives each request a SERVER span, the parent of what core
// records for it. The span joins the trace of a valid incoming traceparent (and keeps
// its tracestate); an invalid one is ignored and a new trace starts. route names the
// request's low-cardinality route pattern, "POST /v2/models/{model}/infer" (a
// ServeMux's pattern); "" when none matched. The span is named after it, and is an
// Error only for a 5xx answer, as the HTTP semantic conventions say.
//
// Health checks and /metrics are not traced (probe). While tracing is off (Setup found no endpoint) the layer is the identity: next serves
// the request with nothing added.
func HTTP(route func(*http.Request) string) func(http.Handler) http.Handler {
	tr := Tracer()
	return func(next http.Handler) http.Handler {
		if tr == nil {
			return next
		}
		return &httpTracer{next: next, tr: tr, route: route}
	}
}

type httpTracer struct {
	next  http.Handler
	tr    trace.Tracer
	route func(*http.Request) string
}

var traceContext = propagation.TraceContext{}

func (h *httpTracer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if probe(r.URL.Path) {
		h.next.ServeHTTP(w, r)
		return
	}
	ctx := traceContext.Extract(r.Context(), headerCarrier(r.Header))
	if ctx, skip := skipRoot(ctx); skip {
		h.next.ServeHTTP(w, r.WithContext(ctx))
		return
	}
	ctx, span := h.tr.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	if !span.IsRecording() { // not sampled: the context still carries the ids downstream
		h.next.ServeHTTP(w, r.WithContext(ctx))
		return
	}
	method := methodName(r.Method)
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", method),
		attribute.String("url.path", r.URL.Path),
		attribute.String("url.scheme", scheme(r)),
		attribute.String("network.protocol.version", protoVersion(r)),
	}
	if host, port, err := net.SplitHostPort(r.Host); err == nil {
		attrs = append(attrs, attribute.String("server.address", host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("server.port", p))
		}
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, attribute.String("user_agent.original", ua))
	}
	if pattern := h.route(r); pattern != "" {
		path := pattern
		if _, p, ok := strings.Cut(pattern, " "); ok {
			path = p
		}
		attrs = append(attrs, attribute.String("http.route", path))
		span.SetName(method + " " + path)
	} else {
		span.SetName(method)
	}
	span.SetAttributes(attrs...)
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	h.next.ServeHTTP(sw, r.WithContext(ctx))
	span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
	if sw.status >= 500 {
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(sw.status)))
		span.SetStatus(codes.Error, http.StatusText(sw.status))
	}
}

// probe tells health checks and metric scrapes, which come every few seconds from
// machines and would swamp the traces; they get no span.
func probe(path string) bool {
	return path == "/v2/health/live" || path == "/v2/health/ready" || path == "/metrics"
}

// headerCarrier reads headers as a propagation carrier, each key's fields joined with
// commas as RFC 7230 combines them: several tracestate fields form one list, and two
// traceparent fields form no valid traceparent, so such a request starts a new trace.
// A traceparent is read as core.TraceParent reads it (checked).
type headerCarrier http.Header

func (c headerCarrier) Get(key string) string {
	return checked(key, strings.Join(http.Header(c).Values(key), ","))
}
func (c headerCarrier) Set(key, value string) { http.Header(c).Set(key, value) }
func (c headerCarrier) Keys() []string        { return propagation.HeaderCarrier(c).Keys() }

// checked passes a traceparent on only if core.TraceParent accepts it, so the span
// joins exactly the traces the taps see (TraceParent on core's records): the SDK's
// parser alone takes a version-00 header with a trailing dash, which the W3C rules
// (and core) refuse.
//
// Flag bits version 00 does not define are dropped rather than refused, as the W3C
// rules ask of a receiver (the SDK refuses the header instead).
func checked(key, value string) string {
	if !strings.EqualFold(key, "traceparent") {
		return value
	}
	value = core.TraceParent(value)
	if len(value) < 55 || value[:2] != "00" {
		return value
	}
	flags, err := strconv.ParseUint(value[53:55], 16, 8)
	if err != nil || flags <= 3 {
		return value
	}
	return value[:53] + fmt.Sprintf("%02x", flags&3)
}

// methodName is the method as the conventions want it: a known one, or _OTHER, so a
// client cannot mint span names.
func methodName(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead,
		http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func protoVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "2"
	case 3:
		return "3"
	}
	return "1." + strconv.Itoa(r.ProtoMinor)
}

// statusWriter remembers the status the handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 { // 1xx are interim answers
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
