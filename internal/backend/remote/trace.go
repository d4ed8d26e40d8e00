package remote

import (
	"context"
	"net"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// traceScope is the instrumentation scope of the upstream calls' spans.
const traceScope = "github.com/ferryml/ferry/internal/backend/remote"

// startTry starts the CLIENT span of one try (a retry or a hedge is a try of its own)
// when the request is traced: the scheduler runs a request alone (or as the first of
// its batch) with the caller's context, which holds core's InferRequest span. v2client
// then injects this span as the traceparent the upstream sees. An untraced request
// costs one context lookup and gets end == nil, and so does an unsampled one.
func (u *upstream) startTry(ctx context.Context) (context.Context, func(error)) {
	if sc := trace.SpanContextFromContext(ctx); !sc.IsValid() || !sc.IsSampled() {
		return ctx, nil // unsampled: v2client still passes the ids on, marked so
	}
	host, port, _ := net.SplitHostPort(u.o.Addr)
	attrs := []attribute.KeyValue{attribute.String("server.address", host), attribute.String("ferry.upstream.model", u.o.Model)}
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, attribute.Int("server.port", p))
	}
	name := "POST"
	if u.o.Protocol == GRPC {
		name = "inference.GRPCInferenceService/ModelInfer"
		attrs = append(attrs, attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", "inference.GRPCInferenceService"),
			attribute.String("rpc.method", "ModelInfer"))
	} else {
		attrs = append(attrs, attribute.String("http.request.method", "POST"))
	}
	ctx, span := otel.GetTracerProvider().Tracer(traceScope).Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}
