package tracing

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/ferryml/ferry/internal/monitor/tracing/otlptest"
)

// TestLeanMatchesTheSDK runs one script of span calls through the SDK's tracer and
// through the lean tracer, each exporting through the batcher and our exporter, and
// wants the same request up to the random ids (numbered in order of appearance):
// roots, children, a remote parent with a tracestate, an unsampled remote parent, a new
// root under a parent, attributes at start and later with repeated and invalid keys
// and past the limit, renaming, events past the limit with repeated keys, recorded
// errors, links, every status transition, explicit and implicit times, and calls after
// End.
func TestLeanMatchesTheSDK(t *testing.T) {
	clearEnv(t)
	var got [2]*collectorpb.ExportTraceServiceRequest
	var views [2][]string
	for i, lean := range []bool{false, true} {
		client := &captured{}
		exp, err := newOTLPExporter(context.Background(), client)
		if err != nil {
			t.Fatal(err)
		}
		bp := newBatcher(exp)
		bp.maxQueue = 1 << 16
		res := resource.NewSchemaless(attribute.String("service.name", "lean-test"))
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(bp), sdktrace.WithResource(res), sdktrace.WithIDGenerator(randomIDs{}))
		var tr trace.Tracer = tp.Tracer(ScopeName)
		if lean {
			tr = &leanTracer{tp: tp, b: bp, res: res, scope: instrumentation.Scope{Name: ScopeName}}
		}
		prev := active.Swap(tp)
		views[i] = spanScript(t, tr)
		active.Store(prev)
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(client.reqs) != 1 {
			t.Fatalf("lean %v: %d export requests, want 1", lean, len(client.reqs))
		}
		got[i] = numberedIDs(t, client.reqs[0])
	}
	if !proto.Equal(got[0], got[1]) {
		t.Fatalf("the lean tracer's export differs from the SDK's:\nlean: %s\nsdk:  %s", prototext.Format(got[1]), prototext.Format(got[0]))
	}
	if fmt.Sprint(views[0]) != fmt.Sprint(views[1]) {
		t.Fatalf("what the script saw differs:\nlean: %v\nsdk:  %v", views[1], views[0])
	}
	if n := len(got[0].ResourceSpans[0].ScopeSpans[0].Spans); n != 9 {
		t.Fatalf("%d spans exported, want 9", n)
	}
}

// spanScript makes the spans TestLeanMatchesTheSDK compares and returns what it saw of
// them on the way (recording or not, flags, which trace a span joined), which the
// export does not show.
func spanScript(t *testing.T, tr trace.Tracer) []string {
	t.Helper()
	at := func(s int) time.Time { return time.Unix(1_700_000_000+int64(s), 0) }
	var seen []string
	note := func(what string, s trace.Span, parent trace.SpanContext) {
		sc := s.SpanContext()
		seen = append(seen, fmt.Sprintf("%s: recording %v, sampled %v, same trace %v, tracestate %q, remote %v",
			what, s.IsRecording(), sc.IsSampled(), sc.TraceID() == parent.TraceID(), sc.TraceState().String(), sc.IsRemote()))
	}

	ctx, root := tr.Start(context.Background(), "root", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(at(0)),
		trace.WithAttributes(attribute.String("a", "1"), attribute.String("", "invalid"), attribute.Int("a", 2), attribute.Bool("b", true)))
	note("root", root, trace.SpanContext{})
	root.SetName("root renamed")
	root.SetAttributes(attribute.Float64("f", 0.25), attribute.String("a", "3"), attribute.Int64Slice("is", []int64{1, 2}))
	root.AddEvent("route", trace.WithTimestamp(at(1)), trace.WithAttributes(attribute.String("k", "v"), attribute.String("k", "w"), attribute.String("", "x")))
	root.RecordError(errors.New("boom"), trace.WithTimestamp(at(2)))
	root.RecordError(nil)
	root.SetStatus(codes.Error, "it broke")
	root.SetStatus(codes.Unset, "ignored")

	cctx, child := tr.Start(ctx, "child", trace.WithTimestamp(at(3)), trace.WithLinks(
		trace.Link{SpanContext: root.SpanContext(), Attributes: []attribute.KeyValue{attribute.String("why", "retry")}},
		trace.Link{}, // says nothing: not added
	))
	note("child", child, root.SpanContext())
	for i := range leanAttrLimit + 5 { // five new keys past the limit are dropped
		child.SetAttributes(attribute.Int("k"+strconv.Itoa(i), i))
	}
	child.SetAttributes(attribute.Int("k0", -1)) // an update at the limit still lands
	for i := range leanEventLimit + 3 {          // the oldest three are pushed out
		child.AddEvent("e"+strconv.Itoa(i), trace.WithTimestamp(at(4+i)))
	}
	child.AddLink(trace.Link{SpanContext: root.SpanContext()})
	child.SetStatus(codes.Ok, "the description of Ok is dropped")
	child.SetStatus(codes.Error, "Ok is final")

	_, grandchild := tr.Start(cctx, "grandchild", trace.WithTimestamp(at(200)), trace.WithAttributes(attribute.String("x", "y")))
	grandchild.End() // implicit end time: numberedIDs checks only that it is after the start
	child.End(trace.WithTimestamp(at(300)))
	child.SetAttributes(attribute.String("late", "ignored"))
	child.AddEvent("late")
	child.SetName("late")
	child.End(trace.WithTimestamp(at(400))) // a second End changes nothing
	note("ended child", child, root.SpanContext())

	_, newRoot := tr.Start(ctx, "new root", trace.WithNewRoot(), trace.WithTimestamp(at(500)))
	note("new root", newRoot, root.SpanContext())
	newRoot.End(trace.WithTimestamp(at(501)))

	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, _ := trace.ParseTraceState("vendor=value,other=x")
	for _, sampled := range []bool{true, false} {
		flags := trace.TraceFlags(0)
		if sampled {
			flags = trace.FlagsSampled
		}
		remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, TraceState: ts, Remote: true})
		rctx, s := tr.Start(trace.ContextWithRemoteSpanContext(context.Background(), remote), "from remote", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(at(600)))
		note("remote child, sampled "+strconv.FormatBool(sampled), s, remote)
		_, c := tr.Start(rctx, "its child", trace.WithTimestamp(at(601)))
		note("its child", c, remote)
		c.SetAttributes(attribute.String("only", "if sampled"))
		c.End(trace.WithTimestamp(at(602)))
		s.End(trace.WithTimestamp(at(603)))
	}

	root.End(trace.WithTimestamp(at(700)))
	for _, kind := range []trace.SpanKind{trace.SpanKindClient, trace.SpanKindProducer, trace.SpanKind(99)} {
		_, k := tr.Start(ctx, "kind", trace.WithSpanKind(kind), trace.WithTimestamp(at(800)))
		k.End(trace.WithTimestamp(at(801)))
	}
	return seen
}

// numberedIDs decodes an export request and replaces its trace and span ids by their
// order of first appearance, and an implicit end time (after its start, at or after
// 2020) by the start, so two runs with different random ids and clocks compare.
func numberedIDs(t *testing.T, b []byte) *collectorpb.ExportTraceServiceRequest {
	t.Helper()
	var req collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	ids := map[string][]byte{}
	number := func(id []byte) []byte {
		if len(id) == 0 {
			return id
		}
		n, ok := ids[string(id)]
		if !ok {
			n = []byte(strconv.Itoa(len(ids)))
			ids[string(id)] = n
		}
		return n
	}
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				s.TraceId, s.SpanId, s.ParentSpanId = number(s.TraceId), number(s.SpanId), number(s.ParentSpanId)
				for _, l := range s.Links {
					l.TraceId, l.SpanId = number(l.TraceId), number(l.SpanId)
				}
				if s.Name == "grandchild" {
					if end := time.Unix(0, int64(s.EndTimeUnixNano)); end.Year() < 2020 {
						t.Fatalf("grandchild's implicit end time %v", end)
					}
					s.EndTimeUnixNano = s.StartTimeUnixNano
				}
			}
		}
	}
	return &req
}

// TestLeanSpanConcurrentCalls calls a lean span's methods from several goroutines
// while it ends (go test -race checks the locking), and wants it exported once with
// every attribute set before End or none after.
func TestLeanSpanConcurrentCalls(t *testing.T) {
	clearEnv(t)
	client := &captured{}
	exp, err := newOTLPExporter(context.Background(), client)
	if err != nil {
		t.Fatal(err)
	}
	bp := newBatcher(exp)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(bp))
	tr := &leanTracer{tp: tp, b: bp, res: resource.Empty(), scope: instrumentation.Scope{Name: ScopeName}}
	prev := active.Swap(tp)
	defer active.Store(prev)
	ctx, s := tr.Start(context.Background(), "shared")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				s.SetAttributes(attribute.Int("g"+strconv.Itoa(g), i))
				s.AddEvent("e")
				s.SetStatus(codes.Error, "x")
				_, c := tr.Start(ctx, "child")
				c.End()
				if i == 100 && g == 0 {
					s.End()
				}
				_ = s.IsRecording()
			}
		})
	}
	wg.Wait()
	s.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := 0
	for _, b := range client.reqs {
		var req collectorpb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Fatal(err)
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					if sp.Name == "shared" {
						spans++
					}
				}
			}
		}
	}
	if spans != 1 {
		t.Fatalf("the shared span was exported %d times, want once", spans)
	}
}

// TestTracerIsLeanOnlyWhereAllowed: the default and parent-based samplers get the
// lean tracer; another sampler or a span limit gets the SDK's.
func TestTracerIsLeanOnlyWhereAllowed(t *testing.T) {
	rc := otlptest.Start(t)
	for _, tc := range []struct {
		env  []string
		lean bool
	}{
		{nil, true},
		{[]string{"OTEL_TRACES_SAMPLER", "parentbased_always_on"}, true},
		{[]string{"OTEL_TRACES_SAMPLER", "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG", "0.5"}, true},
		{[]string{"OTEL_TRACES_SAMPLER", "always_on"}, false},
		{[]string{"OTEL_TRACES_SAMPLER", "traceidratio"}, false},
		{[]string{"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "4"}, false},
		{[]string{"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "10"}, false},
	} {
		flush := setup(t, rc, "http/protobuf", tc.env...)
		_, lean := Tracer().(*leanTracer)
		flush()
		if lean != tc.lean {
			t.Errorf("%v: lean tracer %v, want %v", tc.env, lean, tc.lean)
		}
	}
}
