package reqlog

import (
	"context"
	"log/slog"
	"sync"

	"go.opentelemetry.io/otel/trace"
)

// Log keys of what Handler adds, snake_case as every key of Ferry's log.
const (
	KeyRequestID = "request_id"
	KeyModel     = "model"
	KeyVersion   = "version"
	KeyTenant    = "tenant"
	KeyTraceID   = "trace_id"
	KeySpanID    = "span_id"
)

// Fields are what the log knows of one request. The request's goroutine writes them;
// a line may be logged from another (a hedge, a stream's sender), so they are guarded.
// A nil *Fields ignores every call: code logs the same way with or without them.
type Fields struct {
	mu                                sync.Mutex
	requestID, model, version, tenant string
}

type fieldsKey struct{}

// NewContext returns ctx carrying f.
func NewContext(ctx context.Context, f *Fields) context.Context {
	return context.WithValue(ctx, fieldsKey{}, f)
}

// FromContext returns the request's Fields, nil when its context holds none.
func FromContext(ctx context.Context) *Fields {
	f, _ := ctx.Value(fieldsKey{}).(*Fields)
	return f
}

// Request records what the request asked for: its id (the V2 "id") and the model and
// version it named (version "" when it named none).
func (f *Fields) Request(id, model, version string) {
	f.set(func() { f.requestID, f.model, f.version = id, model, version })
}

// Answered records the version that answered (routing may pick one the request did not name).
func (f *Fields) Answered(version string) { f.set(func() { f.version = version }) }

// SetTenant records the tenant authentication found for the request.
func (f *Fields) SetTenant(tenant string) { f.set(func() { f.tenant = tenant }) }

// set runs change under the lock; nothing for nil Fields.
func (f *Fields) set(change func()) {
	if f == nil {
		return
	}
	f.mu.Lock()
	change()
	f.mu.Unlock()
}

// Snapshot returns the fields as they are now.
func (f *Fields) Snapshot() (requestID, model, version, tenant string) {
	if f == nil {
		return "", "", "", ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requestID, f.model, f.version, f.tenant
}

// Handler wraps h so that each record logged with a request's context carries the
// request's Fields (those set) and its trace and span ids (when it is traced). Records
// logged without such a context pass through unchanged.
func Handler(h slog.Handler) slog.Handler { return &handler{next: h} }

type handler struct{ next slog.Handler }

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return h.next.Handle(ctx, r)
	}
	f := FromContext(ctx)
	sc := trace.SpanContextFromContext(ctx)
	if f == nil && !sc.IsValid() {
		return h.next.Handle(ctx, r)
	}
	var has map[string]bool // keys the line sets itself keep its values (a stream's model)
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case KeyRequestID, KeyModel, KeyVersion, KeyTenant:
			if has == nil {
				has = map[string]bool{}
			}
			has[a.Key] = true
		}
		return true
	})
	add := func(key, value string) {
		if value != "" && !has[key] {
			r.AddAttrs(slog.String(key, value))
		}
	}
	id, model, version, tenant := f.Snapshot()
	add(KeyRequestID, id)
	add(KeyModel, model)
	add(KeyVersion, version)
	add(KeyTenant, tenant)
	if sc.IsValid() {
		r.AddAttrs(slog.String(KeyTraceID, sc.TraceID().String()), slog.String(KeySpanID, sc.SpanID().String()))
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler { return &handler{next: h.next.WithAttrs(as)} }
func (h *handler) WithGroup(name string) slog.Handler    { return &handler{next: h.next.WithGroup(name)} }
