package tracing

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// captured is an otlptrace.Client that keeps, marshalled, what it is given: the
// request bytes a collector would receive.
type captured struct {
	mu   sync.Mutex
	reqs [][]byte
}

func (c *captured) Start(context.Context) error { return nil }
func (c *captured) Stop(context.Context) error  { return nil }
func (c *captured) UploadTraces(_ context.Context, rss []*tracepb.ResourceSpans) error {
	b, err := proto.Marshal(&collectorpb.ExportTraceServiceRequest{ResourceSpans: rss})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, b)
	c.mu.Unlock()
	return nil
}

// TestExportMatchesTheSDK exports the same spans through the SDK's exporter and ours
// and wants the same request, up to the order of resources (the SDK's comes from a
// map): two resources, two scopes, every attribute type, events, links, an error
// status, a remote parent with a trace state, and a span still carrying dropped
// counts.
func TestExportMatchesTheSDK(t *testing.T) {
	spans := variedSpans(t)
	var sdk, ours captured
	if err := otlptrace.NewUnstarted(&sdk).ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	exp, err := newOTLPExporter(context.Background(), &ours)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time from the cached resource and scope structs
		if err := exp.ExportSpans(context.Background(), spans); err != nil {
			t.Fatal(err)
		}
	}
	want := normalized(t, sdk.reqs[0])
	for i, got := range ours.reqs {
		if g := normalized(t, got); !proto.Equal(g, want) {
			t.Fatalf("export %d differs from the SDK's:\nours: %s\nsdk:  %s", i, prototext.Format(g), prototext.Format(want))
		}
	}
	if n := len(want.ResourceSpans); n != 2 {
		t.Fatalf("%d resources, want 2", n)
	}
	if err := exp.ExportSpans(context.Background(), nil); err != nil || len(ours.reqs) != 2 {
		t.Fatalf("no spans: %v, %d requests (an empty export sends nothing)", err, len(ours.reqs))
	}
}

// normalized is a request with its resources in the order of their first span's id.
func normalized(t *testing.T, b []byte) *collectorpb.ExportTraceServiceRequest {
	t.Helper()
	var req collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(req.ResourceSpans, func(a, b *tracepb.ResourceSpans) int {
		return cmp.Compare(string(a.ScopeSpans[0].Spans[0].SpanId), string(b.ScopeSpans[0].Spans[0].SpanId))
	})
	return &req
}

func variedSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	rec := tracetest.NewSpanRecorder()
	var all []sdktrace.ReadOnlySpan
	for _, svc := range []string{"a", "b"} {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSpanLimits(sdktrace.SpanLimits{
			AttributeCountLimit: 12, EventCountLimit: 2, LinkCountLimit: 1, AttributePerEventCountLimit: 4, AttributePerLinkCountLimit: 4, AttributeValueLengthLimit: -1}),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", svc), attribute.Int("n", 1))))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		tid, _ := trace.TraceIDFromHex("0102030405060708090a0b0c0d0e0f10")
		sid, _ := trace.SpanIDFromHex("0102030405060708")
		ts, _ := trace.ParseTraceState("k=v,x=y")
		remote := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true}))
		for _, scope := range []string{"one", "two"} {
			tr := tp.Tracer(scope, trace.WithInstrumentationVersion("1.0"), trace.WithSchemaURL("https://opentelemetry.io/schemas/1.26.0"))
			ctx, s := tr.Start(remote, "server", trace.WithSpanKind(trace.SpanKindServer), trace.WithLinks(
				trace.Link{SpanContext: trace.SpanContextFromContext(remote), Attributes: []attribute.KeyValue{attribute.String("l", "v")}},
				trace.Link{SpanContext: trace.SpanContextFromContext(remote)})) // one over the limit
			s.SetAttributes(attribute.String("s", "v"), attribute.Int("i", -3), attribute.Float64("f", 0.5), attribute.Bool("b", true),
				attribute.StringSlice("ss", []string{"x", "y"}), attribute.IntSlice("is", []int{1, 2}), attribute.Float64Slice("fs", []float64{1.5}),
				attribute.BoolSlice("bs", []bool{true, false}))
			s.SetAttributes(attribute.String("long", strings.Repeat("x", 300)), attribute.ByteSlice("bytes", []byte{0, 1}),
				attribute.Map("map", attribute.String("k", ""), attribute.Bool("f", false)), attribute.Slice("mixed", attribute.IntValue(0), attribute.StringValue("s")),
				attribute.String("over", "the limit"))
			s.AddEvent("e1", trace.WithTimestamp(time.Unix(1, 2)), trace.WithAttributes(attribute.String("k", "v"), attribute.Int("n", 2)))
			s.AddEvent("e2")
			s.AddEvent("e3") // over the limit
			s.RecordError(errors.New("boom"))
			s.SetStatus(codes.Error, "it broke")
			_, c := tr.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindClient))
			c.SetStatus(codes.Ok, "")
			c.End()
			_, p := tr.Start(ctx, "producer", trace.WithSpanKind(trace.SpanKindProducer), trace.WithNewRoot())
			p.End()
			s.End()
		}
	}
	all = append(all, rec.Ended()...)
	return all
}
