package tracing

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// leanTracer makes Ferry's own spans (the transports' server spans, InferRequest, queue,
// compute, ensemble steps) without the SDK's span machinery, for the one configuration
// where that machinery decides nothing: a parent-based always-on sampler (the default,
// and what parentbased_traceidratio becomes once the server layers have drawn the roots,
// rootSampler), the default span limits, and our batcher as the only processor.
//
// The SDK's span costs ~2.5 µs from Start to End: sampler parameters, a span of ~40
// fields, attribute de-duplication through a map when read, and a snapshot copied at End
// for the processors. A sampled request makes four spans, so at 10% sampling that was
// about a µs of every request, and at 100% a tenth of an identity model's throughput.
// A lean span is one allocation; it is its own read-only snapshot once ended (it takes
// no change after End), so the batcher and the exporter read it as they read the SDK's.
// What the exporter writes for it is what it writes for the SDK's span given the same
// calls (lean_test.go compares the two), and spans of other tracers (the remote
// backend's, through the global provider) join its traces through the context as usual.
//
// Left out, as Ferry makes none: nested attribute values (attribute.SLICE and MAP) are
// kept as given, where the SDK also de-duplicates keys inside maps.
type leanTracer struct {
	embedded.Tracer
	tp    *sdktrace.TracerProvider // the provider it belongs to: spans stop when it is no longer active
	b     *batcher
	res   *resource.Resource
	scope instrumentation.Scope
}

// The SDK's default limits (sdktrace.NewSpanLimits), which a lean span applies.
const (
	leanAttrLimit  = sdktrace.DefaultAttributeCountLimit
	leanEventLimit = sdktrace.DefaultEventCountLimit
	leanLinkLimit  = sdktrace.DefaultLinkCountLimit
	leanPerEvent   = sdktrace.DefaultAttributePerEventCountLimit
	leanPerLink    = sdktrace.DefaultAttributePerLinkCountLimit
)

// leanAllowed reports whether the environment leaves the SDK nothing to decide for
// Ferry's spans: the sampler is parent-based always-on (OTEL_TRACES_SAMPLER unset or
// parentbased_always_on) or parentbased_traceidratio (roots drawn before Start, see
// rootSampler), and no span-limit variable is set.
func leanAllowed() bool {
	switch strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")) {
	case "", "parentbased_always_on", "parentbased_traceidratio":
	default:
		return false
	}
	for _, kv := range os.Environ() {
		for _, p := range []string{"OTEL_SPAN_", "OTEL_EVENT_", "OTEL_LINK_", "OTEL_ATTRIBUTE_"} {
			if strings.HasPrefix(kv, p) {
				return false
			}
		}
	}
	return true
}

// Start starts a span as the SDK's tracer does under a parent-based always-on sampler:
// recording unless its parent is valid and not sampled, a new trace's ids for a root,
// the parent's trace id, flags and tracestate otherwise.
func (t *leanTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	var parent trace.SpanContext
	if !cfg.NewRoot() {
		parent = trace.SpanContextFromContext(ctx)
	}
	scc := trace.SpanContextConfig{TraceState: parent.TraceState(), TraceFlags: parent.TraceFlags() | trace.FlagsSampled}
	if parent.TraceID().IsValid() {
		scc.TraceID, scc.SpanID = parent.TraceID(), newSpanID()
	} else {
		scc.TraceID, scc.SpanID = randomIDs{}.NewIDs(ctx)
	}
	if parent.IsValid() && !parent.IsSampled() {
		scc.TraceFlags &^= trace.FlagsSampled
	}
	if p, ok := trace.SpanFromContext(ctx).(*leanSpan); ok {
		p.mu.Lock()
		if !p.ended {
			p.children++
		}
		p.mu.Unlock()
	}
	sc := trace.NewSpanContext(scc)
	if !sc.IsSampled() || active.Load() != t.tp {
		// Not sampled (or the provider has shut down): a span that records nothing but
		// carries its ids downstream.
		return trace.ContextWithSpanContext(ctx, sc), trace.SpanFromContext(trace.ContextWithSpanContext(context.Background(), sc))
	}
	s := &leanSpan{t: t, sc: sc, parent: parent, name: name, kind: trace.ValidateSpanKind(cfg.SpanKind()), start: cfg.Timestamp()}
	if s.start.IsZero() {
		s.start = time.Now()
	}
	s.attrs = addAttrs(s.attrBuf[:0], cfg.Attributes(), leanAttrLimit, &s.droppedAttrs)
	for _, l := range cfg.Links() {
		s.addLink(l)
	}
	return trace.ContextWithSpan(ctx, s), s
}

// leanSpan is a recording span of a leanTracer. Its fields change under mu until End;
// after End nothing changes them, so the batcher and the exporter read them unlocked.
type leanSpan struct {
	embedded.Span
	sdktrace.ReadOnlySpan // nil: makes leanSpan one (its unexported method); every method is leanSpan's own

	t      *leanTracer
	sc     trace.SpanContext
	parent trace.SpanContext
	kind   trace.SpanKind

	mu                                        sync.Mutex
	name                                      string
	start, end                                time.Time
	ended                                     bool
	attrs                                     []attribute.KeyValue
	events                                    []sdktrace.Event
	links                                     []sdktrace.Link
	status                                    sdktrace.Status
	droppedAttrs, droppedEvents, droppedLinks int
	children                                  int
	// attrBuf holds the first attributes, in the span's one allocation: Ferry's spans
	// have 4 to 10, which appending from nothing took four allocations to hold.
	attrBuf [8]attribute.KeyValue
}

// End ends the span (at the option's timestamp, else now) and hands it to the batcher.
func (s *leanSpan) End(opts ...trace.SpanEndOption) {
	end := s.start.Add(time.Since(s.start)) // monotonic, as the SDK's
	cfg := trace.NewSpanEndConfig(opts...)
	if ts := cfg.Timestamp(); !ts.IsZero() {
		end = ts
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended, s.end = true, end
	s.mu.Unlock()
	s.t.b.OnEnd(s)
}

func (s *leanSpan) IsRecording() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.ended
}

func (s *leanSpan) SpanContext() trace.SpanContext { return s.sc }

func (s *leanSpan) SetStatus(code codes.Code, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.status.Code > code { // Ok is final; Error outranks Unset
		return
	}
	s.status = sdktrace.Status{Code: code}
	if code == codes.Error {
		s.status.Description = description
	}
}

func (s *leanSpan) SetName(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.name = name
	}
}

func (s *leanSpan) SetAttributes(kv ...attribute.KeyValue) {
	if len(kv) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.attrs = addAttrs(s.attrs, kv, leanAttrLimit, &s.droppedAttrs)
	}
}

// addAttrs adds kv to attrs as the SDK's spans do: an invalid one is dropped, a key
// already there takes the new value in its first place, and past limit new keys are
// dropped; dropped counts the drops.
func addAttrs(attrs, kv []attribute.KeyValue, limit int, dropped *int) []attribute.KeyValue {
next:
	for _, a := range kv {
		if !a.Valid() {
			*dropped++
			continue
		}
		for i := range attrs {
			if attrs[i].Key == a.Key {
				attrs[i] = a
				continue next
			}
		}
		if len(attrs) >= limit {
			*dropped++
			continue
		}
		attrs = append(attrs, a)
	}
	return attrs
}

func (s *leanSpan) AddEvent(name string, opts ...trace.EventOption) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.addEvent(name, trace.NewEventConfig(opts...))
	}
}

// capped is an event's or a link's attributes as the SDK keeps them: as given (it
// neither de-duplicates nor drops invalid ones there), the first limit of them, and how
// many it left out.
func capped(kv []attribute.KeyValue, limit int) ([]attribute.KeyValue, int) {
	if len(kv) > limit {
		return kv[:limit:limit], len(kv) - limit
	}
	return kv, 0
}

// addEvent keeps the latest leanEventLimit events, as the SDK's queue does, and counts
// the ones it pushes out.
func (s *leanSpan) addEvent(name string, cfg trace.EventConfig) {
	e := sdktrace.Event{Name: name, Time: cfg.Timestamp()}
	e.Attributes, e.DroppedAttributeCount = capped(cfg.Attributes(), leanPerEvent)
	if len(s.events) == leanEventLimit {
		s.events = append(s.events[:0], s.events[1:]...)
		s.droppedEvents++
	}
	s.events = append(s.events, e)
}

// RecordError adds the exception event the SDK adds (type and message; a stack trace
// when asked); it does not change the status.
func (s *leanSpan) RecordError(err error, opts ...trace.EventOption) {
	if err == nil {
		return
	}
	opts = append(opts, trace.WithAttributes(attribute.String("exception.type", typeName(err)), attribute.String("exception.message", err.Error())))
	cfg := trace.NewEventConfig(opts...)
	if cfg.StackTrace() {
		opts = append(opts, trace.WithAttributes(attribute.String("exception.stacktrace", stack())))
		cfg = trace.NewEventConfig(opts...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.addEvent("exception", cfg)
	}
}

// typeName is the SDK's name for an error's type: package path and name, or the
// type's own string for an unnamed one.
func typeName(v any) string {
	t := reflect.TypeOf(v)
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String()
	}
	return fmt.Sprintf("%s.%s", t.PkgPath(), t.Name())
}

func (s *leanSpan) AddLink(l trace.Link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.addLink(l)
	}
}

// addLink keeps the latest leanLinkLimit links; a link with neither a valid span context
// nor attributes nor a tracestate says nothing and is not added.
func (s *leanSpan) addLink(l trace.Link) {
	if !l.SpanContext.IsValid() && len(l.Attributes) == 0 && l.SpanContext.TraceState().Len() == 0 {
		return
	}
	sl := sdktrace.Link{SpanContext: l.SpanContext}
	sl.Attributes, sl.DroppedAttributeCount = capped(l.Attributes, leanPerLink)
	if len(s.links) == leanLinkLimit {
		s.links = append(s.links[:0], s.links[1:]...)
		s.droppedLinks++
	}
	s.links = append(s.links, sl)
}

// stack is the calling goroutine's stack, as the SDK records it (at most 2 KB).
func stack() string {
	b := make([]byte, 2048)
	return string(b[:runtime.Stack(b, false)])
}

func (s *leanSpan) TracerProvider() trace.TracerProvider { return s.t.tp }

// The read-only view, which the batcher and the exporter use once the span has ended.

func (s *leanSpan) Name() string                     { return s.name }
func (s *leanSpan) Parent() trace.SpanContext        { return s.parent }
func (s *leanSpan) SpanKind() trace.SpanKind         { return s.kind }
func (s *leanSpan) StartTime() time.Time             { return s.start }
func (s *leanSpan) EndTime() time.Time               { return s.end }
func (s *leanSpan) Attributes() []attribute.KeyValue { return s.attrs }
func (s *leanSpan) Links() []sdktrace.Link           { return s.links }
func (s *leanSpan) Events() []sdktrace.Event         { return s.events }
func (s *leanSpan) Status() sdktrace.Status          { return s.status }
func (s *leanSpan) Resource() *resource.Resource     { return s.t.res }
func (s *leanSpan) DroppedAttributes() int           { return s.droppedAttrs }
func (s *leanSpan) DroppedLinks() int                { return s.droppedLinks }
func (s *leanSpan) DroppedEvents() int               { return s.droppedEvents }
func (s *leanSpan) ChildSpanCount() int              { return s.children }

func (s *leanSpan) InstrumentationScope() instrumentation.Scope { return s.t.scope }

//nolint:staticcheck // ReadOnlySpan still declares it
func (s *leanSpan) InstrumentationLibrary() instrumentation.Library { return s.t.scope }
