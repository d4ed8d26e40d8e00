package tracing

import (
	"context"
	"fmt"
	"math"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// exporter is the OTLP span exporter: the SDK's clients (otlptracegrpc, otlptracehttp,
// which read the OTLP variables: endpoint, headers, TLS, compression, timeout, retries)
// fed by an encoder of our own. The SDK's exporter turns each span into protobuf structs
// (15 allocations a span of ours) which the client then marshals by reflection: 2.5-3 µs
// a span, the largest piece of tracing's cost at 10% sampling. This one writes the
// protobuf wire form of each ResourceSpans straight from the spans into one buffer,
// and hands the client ResourceSpans structs that hold those bytes as their unknown
// fields: protobuf marshals unknown fields verbatim, so the request on the wire is the
// one the SDK's structs would have made (export_test.go decodes and compares both).
type exporter struct {
	client otlptrace.Client
	buf    []byte // reused: UploadTraces has marshalled it by the time it returns
	// The encoded resources and scopes, made once each.
	resources map[attribute.Distinct][]byte
	scopes    map[instrumentation.Scope][]byte
}

// newOTLPExporter starts client and exports through it.
func newOTLPExporter(ctx context.Context, client otlptrace.Client) (*exporter, error) {
	if err := client.Start(ctx); err != nil {
		return nil, err
	}
	return &exporter{client: client, resources: map[attribute.Distinct][]byte{}, scopes: map[instrumentation.Scope][]byte{}}, nil
}

// ExportSpans sends spans in one request. The batcher calls it one export at a time,
// which the buffer and the caches rely on.
func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	rss := e.encode(spans)
	if len(rss) == 0 {
		return nil
	}
	if err := e.client.UploadTraces(ctx, rss); err != nil {
		return fmt.Errorf("traces export: %w", err)
	}
	return nil
}

func (e *exporter) Shutdown(ctx context.Context) error { return e.client.Stop(ctx) }

// The field numbers of opentelemetry/proto/trace/v1, common/v1 and resource/v1.
const (
	fResourceSpansResource, fResourceSpansScopeSpans, fResourceSpansSchemaURL = 1, 2, 3
	fScopeSpansScope, fScopeSpansSpans, fScopeSpansSchemaURL                  = 1, 2, 3
	fScopeName, fScopeVersion, fScopeAttributes                               = 1, 2, 3
	fResourceAttributes                                                       = 1

	fSpanTraceID, fSpanSpanID, fSpanTraceState, fSpanParentSpanID, fSpanName, fSpanKind = 1, 2, 3, 4, 5, 6
	fSpanStart, fSpanEnd, fSpanAttributes, fSpanDroppedAttributes, fSpanEvents          = 7, 8, 9, 10, 11
	fSpanDroppedEvents, fSpanLinks, fSpanDroppedLinks, fSpanStatus, fSpanFlags          = 12, 13, 14, 15, 16
	fEventTime, fEventName, fEventAttributes, fEventDroppedAttributes                   = 1, 2, 3, 4
	fLinkTraceID, fLinkSpanID, fLinkAttributes, fLinkDroppedAttributes, fLinkFlags      = 1, 2, 4, 5, 6
	fStatusMessage, fStatusCode                                                         = 2, 3

	fKeyValueKey, fKeyValueValue                                                = 1, 2
	fAnyString, fAnyBool, fAnyInt, fAnyDouble, fAnyArray, fAnyKvlist, fAnyBytes = 1, 2, 3, 4, 5, 6, 7
	fListValues                                                                 = 1 // ArrayValue.values, KeyValueList.values
)

// encode groups spans by resource, then by scope, in the order they first appear, and
// returns one ResourceSpans per resource carrying its encoding.
func (e *exporter) encode(spans []sdktrace.ReadOnlySpan) []*tracepb.ResourceSpans {
	type scopeKey struct {
		res   attribute.Distinct
		scope instrumentation.Scope
	}
	var resources []*resource.Resource
	var scopes []scopeKey
	for _, sd := range spans {
		if sd == nil {
			continue
		}
		k := scopeKey{sd.Resource().Equivalent(), sd.InstrumentationScope()}
		if !slices.Contains(scopes, k) {
			scopes = append(scopes, k)
		}
		if !slices.ContainsFunc(resources, func(r *resource.Resource) bool { return r.Equivalent() == k.res }) {
			resources = append(resources, sd.Resource())
		}
	}
	b := e.buf[:0]
	ends := make([]int, 0, len(resources))
	for _, res := range resources {
		b = appendMessage(b, fResourceSpansResource, func(b []byte) []byte { return append(b, e.resource(res)...) })
		for _, k := range scopes {
			if k.res != res.Equivalent() {
				continue
			}
			b = appendMessage(b, fResourceSpansScopeSpans, func(b []byte) []byte {
				if k.scope != (instrumentation.Scope{}) { // the SDK leaves the empty scope out
					b = appendMessage(b, fScopeSpansScope, func(b []byte) []byte { return append(b, e.scope(k.scope)...) })
				}
				for _, sd := range spans {
					if sd != nil && sd.InstrumentationScope() == k.scope && sd.Resource().Equivalent() == k.res {
						b = appendMessage(b, fScopeSpansSpans, func(b []byte) []byte { return appendSpan(b, sd) })
					}
				}
				return appendString(b, fScopeSpansSchemaURL, k.scope.SchemaURL)
			})
		}
		b = appendString(b, fResourceSpansSchemaURL, res.SchemaURL())
		ends = append(ends, len(b))
	}
	e.buf = b
	out := make([]*tracepb.ResourceSpans, len(ends))
	start := 0
	for i, end := range ends {
		out[i] = new(tracepb.ResourceSpans)
		out[i].ProtoReflect().SetUnknown(protoreflect.RawFields(b[start:end:end]))
		start = end
	}
	return out
}

// resource is res's Resource message body, encoded once.
func (e *exporter) resource(res *resource.Resource) []byte {
	k := res.Equivalent()
	if b, ok := e.resources[k]; ok {
		return b
	}
	var b []byte
	for it := res.Iter(); it.Next(); {
		b = appendKeyValue(b, fResourceAttributes, it.Attribute())
	}
	e.resources[k] = b
	return b
}

// scope is s's InstrumentationScope message body, encoded once.
func (e *exporter) scope(s instrumentation.Scope) []byte {
	if b, ok := e.scopes[s]; ok {
		return b
	}
	b := appendString(nil, fScopeName, s.Name)
	b = appendString(b, fScopeVersion, s.Version)
	for it := s.Attributes.Iter(); it.Next(); {
		b = appendKeyValue(b, fScopeAttributes, it.Attribute())
	}
	e.scopes[s] = b
	return b
}

// appendSpan appends sd's Span message body.
func appendSpan(b []byte, sd sdktrace.ReadOnlySpan) []byte {
	sc, parent := sd.SpanContext(), sd.Parent()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendBytes(b, fSpanTraceID, tid[:])
	b = appendBytes(b, fSpanSpanID, sid[:])
	b = appendString(b, fSpanTraceState, sc.TraceState().String())
	if psid := parent.SpanID(); psid.IsValid() {
		b = appendBytes(b, fSpanParentSpanID, psid[:])
	}
	b = appendString(b, fSpanName, sd.Name())
	b = appendVarint(b, fSpanKind, uint64(spanKind(sd.SpanKind())))
	b = appendFixed64(b, fSpanStart, unixNano(sd.StartTime().UnixNano()))
	b = appendFixed64(b, fSpanEnd, unixNano(sd.EndTime().UnixNano()))
	for _, kv := range sd.Attributes() {
		b = appendKeyValue(b, fSpanAttributes, kv)
	}
	b = appendVarint(b, fSpanDroppedAttributes, uint64(clampUint32(sd.DroppedAttributes())))
	for _, ev := range sd.Events() {
		b = appendMessage(b, fSpanEvents, func(b []byte) []byte {
			b = appendFixed64(b, fEventTime, unixNano(ev.Time.UnixNano()))
			b = appendString(b, fEventName, ev.Name)
			for _, kv := range ev.Attributes {
				b = appendKeyValue(b, fEventAttributes, kv)
			}
			return appendVarint(b, fEventDroppedAttributes, uint64(clampUint32(ev.DroppedAttributeCount)))
		})
	}
	b = appendVarint(b, fSpanDroppedEvents, uint64(clampUint32(sd.DroppedEvents())))
	for _, l := range sd.Links() {
		b = appendMessage(b, fSpanLinks, func(b []byte) []byte { return appendLink(b, l) })
	}
	b = appendVarint(b, fSpanDroppedLinks, uint64(clampUint32(sd.DroppedLinks())))
	st := sd.Status()
	b = appendMessage(b, fSpanStatus, func(b []byte) []byte { // always present, as the SDK sets it
		b = appendString(b, fStatusMessage, st.Description)
		return appendVarint(b, fStatusCode, uint64(statusCode(st.Code)))
	})
	return appendFixed32(b, fSpanFlags, spanFlags(sc.TraceFlags(), parent))
}

func appendLink(b []byte, l sdktrace.Link) []byte {
	tid, sid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
	b = appendBytes(b, fLinkTraceID, tid[:])
	b = appendBytes(b, fLinkSpanID, sid[:])
	for _, kv := range l.Attributes {
		b = appendKeyValue(b, fLinkAttributes, kv)
	}
	b = appendVarint(b, fLinkDroppedAttributes, uint64(clampUint32(l.DroppedAttributeCount)))
	return appendFixed32(b, fLinkFlags, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext))
}

// appendKeyValue appends kv as field num, a KeyValue.
func appendKeyValue(b []byte, num protowire.Number, kv attribute.KeyValue) []byte {
	return appendMessage(b, num, func(b []byte) []byte {
		b = appendString(b, fKeyValueKey, string(kv.Key))
		return appendMessage(b, fKeyValueValue, func(b []byte) []byte { return appendValue(b, kv.Value) })
	})
}

// appendValue appends v's AnyValue message body. A oneof member is written even when it
// holds its zero value: that is how it says which member is set.
func appendValue(b []byte, v attribute.Value) []byte {
	switch v.Type() {
	case attribute.STRING:
		return protowire.AppendString(protowire.AppendTag(b, fAnyString, protowire.BytesType), v.AsString())
	case attribute.BOOL:
		return protowire.AppendVarint(protowire.AppendTag(b, fAnyBool, protowire.VarintType), protowire.EncodeBool(v.AsBool()))
	case attribute.INT64:
		return protowire.AppendVarint(protowire.AppendTag(b, fAnyInt, protowire.VarintType), uint64(v.AsInt64()))
	case attribute.FLOAT64:
		return protowire.AppendFixed64(protowire.AppendTag(b, fAnyDouble, protowire.Fixed64Type), math.Float64bits(v.AsFloat64()))
	case attribute.BYTESLICE:
		return protowire.AppendBytes(protowire.AppendTag(b, fAnyBytes, protowire.BytesType), v.AsByteSlice())
	case attribute.BOOLSLICE:
		return appendArray(b, v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		return appendArray(b, v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		return appendArray(b, v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		return appendArray(b, v.AsStringSlice(), attribute.StringValue)
	case attribute.SLICE:
		return appendArray(b, v.AsSlice(), func(v attribute.Value) attribute.Value { return v })
	case attribute.MAP:
		return appendMessage(b, fAnyKvlist, func(b []byte) []byte {
			for _, kv := range v.AsMap() {
				b = appendKeyValue(b, fListValues, kv)
			}
			return b
		})
	case attribute.EMPTY:
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, fAnyString, protowire.BytesType), "INVALID")
}

func appendArray[T any](b []byte, xs []T, wrap func(T) attribute.Value) []byte {
	return appendMessage(b, fAnyArray, func(b []byte) []byte {
		for _, x := range xs {
			b = appendMessage(b, fListValues, func(b []byte) []byte { return appendValue(b, wrap(x)) })
		}
		return b
	})
}

// appendMessage appends field num holding the message body body appends. The length
// goes before the body, so one byte is kept for it (most bodies are shorter than 128
// bytes) and the body moves up when its length needs more.
func appendMessage(b []byte, num protowire.Number, body func([]byte) []byte) []byte {
	b = append(protowire.AppendTag(b, num, protowire.BytesType), 0)
	start := len(b)
	b = body(b)
	n := len(b) - start
	if n < 0x80 {
		b[start-1] = byte(n)
		return b
	}
	extra := protowire.SizeVarint(uint64(n)) - 1
	b = append(b, make([]byte, extra)...)
	copy(b[start+extra:], b[start:start+n])
	protowire.AppendVarint(b[start-1:start-1], uint64(n))
	return b
}

// The scalar fields of proto3: a zero value is not written, as protobuf's marshaller
// does not write it.
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

func appendFixed64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendFixed64(protowire.AppendTag(b, num, protowire.Fixed64Type), v)
}

func appendFixed32(b []byte, num protowire.Number, v uint32) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendFixed32(protowire.AppendTag(b, num, protowire.Fixed32Type), v)
}

// spanFlags are the W3C trace flags in the low byte, and whether the parent is remote,
// which OTLP marks as known.
func spanFlags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	flags := uint32(tf) | uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
	if parent.IsRemote() {
		flags |= uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
	}
	return flags
}

func spanKind(k trace.SpanKind) tracepb.Span_SpanKind {
	switch k {
	case trace.SpanKindInternal:
		return tracepb.Span_SPAN_KIND_INTERNAL
	case trace.SpanKindServer:
		return tracepb.Span_SPAN_KIND_SERVER
	case trace.SpanKindClient:
		return tracepb.Span_SPAN_KIND_CLIENT
	case trace.SpanKindProducer:
		return tracepb.Span_SPAN_KIND_PRODUCER
	case trace.SpanKindConsumer:
		return tracepb.Span_SPAN_KIND_CONSUMER
	}
	return tracepb.Span_SPAN_KIND_UNSPECIFIED
}

func statusCode(c codes.Code) tracepb.Status_StatusCode {
	switch c {
	case codes.Ok:
		return tracepb.Status_STATUS_CODE_OK
	case codes.Error:
		return tracepb.Status_STATUS_CODE_ERROR
	}
	return tracepb.Status_STATUS_CODE_UNSET
}

func unixNano(ns int64) uint64 { return uint64(max(0, ns)) }

func clampUint32(v int) uint32 { return uint32(min(max(v, 0), math.MaxUint32)) }
