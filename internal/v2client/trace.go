package v2client

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
)

// traceContext writes W3C traceparent and tracestate; it is used directly rather than
// through the global propagator so a traced caller always passes its trace on.
var traceContext = propagation.TraceContext{}

// injectHeader adds the traceparent (and tracestate) of the span in ctx to h, when ctx
// holds one: an upstream Ferry then continues the caller's trace.
func injectHeader(ctx context.Context, h http.Header) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		traceContext.Inject(ctx, propagation.HeaderCarrier(h))
	}
}

// injectMetadata is injectHeader for a gRPC call's outgoing metadata.
func injectMetadata(ctx context.Context) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	kv := make([]string, 0, 2*len(c))
	for k, v := range c {
		kv = append(kv, k, v)
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}
