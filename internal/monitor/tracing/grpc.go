package tracing

import (
	"context"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/grpcmeta"
)

// GRPCServerOptions are the interceptors that give each RPC a SERVER span (rpc.system
// grpc, rpc.service, rpc.method), joined to a valid traceparent in the call's metadata;
// none while tracing is off. A stream (ModelStreamInfer) is one span, its requests'
// InferRequest spans under it; the V2 health checks get none (grpcProbe).
func GRPCServerOptions() []grpc.ServerOption {
	tr := Tracer()
	if tr == nil {
		return nil
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if grpcProbe(info.FullMethod) {
				return handler(ctx, req)
			}
			ctx, span := startRPC(ctx, tr, info.FullMethod)
			defer span.End()
			res, err := handler(ctx, req)
			endRPC(span, err)
			return res, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			ctx, span := startRPC(ss.Context(), tr, info.FullMethod)
			defer span.End()
			err := handler(srv, &tracedStream{ServerStream: ss, ctx: ctx})
			endRPC(span, err)
			return err
		}),
	}
}

// grpcProbe tells the V2 health checks, which get no span (as REST's, probe).
func grpcProbe(fullMethod string) bool {
	return fullMethod == "/inference.GRPCInferenceService/ServerLive" || fullMethod == "/inference.GRPCInferenceService/ServerReady"
}

// startRPC starts the span of a call to fullMethod ("/package.Service/Method").
func startRPC(ctx context.Context, tr trace.Tracer, fullMethod string) (context.Context, trace.Span) {
	// One copy of the metadata, which the layers below (authentication, the V2
	// transport) read too: asking for an absent key alone scans every key.
	ctx, md := grpcmeta.Copy(ctx)
	if tp := md["traceparent"]; len(tp) > 0 {
		tc := metadata.MD{"traceparent": tp}
		if ts := md["tracestate"]; len(ts) > 0 {
			tc["tracestate"] = ts
		}
		ctx = traceContext.Extract(ctx, metadataCarrier(tc))
	}
	if ctx, skip := skipRoot(ctx); skip {
		return ctx, trace.SpanFromContext(ctx) // a non-recording span: End and the rest do nothing
	}
	n := rpcNameOf(fullMethod)
	ctx, span := tr.Start(ctx, n.name, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() { // most requests are not sampled: they skip building these
		span.SetAttributes(n.attrs...)
	}
	return ctx, span
}

// rpcName is a method's span name and attributes, made once per method.
type rpcName struct {
	name  string
	attrs []attribute.KeyValue
}

var rpcNames sync.Map // full method -> *rpcName

func rpcNameOf(fullMethod string) *rpcName {
	if n, ok := rpcNames.Load(fullMethod); ok {
		return n.(*rpcName)
	}
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	n := &rpcName{name: service + "/" + method, attrs: []attribute.KeyValue{
		attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", service), attribute.String("rpc.method", method)}}
	rpcNames.Store(fullMethod, n)
	return n
}

// endRPC records the call's status code; the codes the conventions count as the
// server's fault make the span an Error.
func endRPC(span trace.Span, err error) {
	if !span.IsRecording() {
		return
	}
	code := status.Code(err)
	span.SetAttributes(attribute.Int("rpc.grpc.status_code", int(code)))
	switch code {
	case grpccodes.Unknown, grpccodes.DeadlineExceeded, grpccodes.Unimplemented, grpccodes.Internal,
		grpccodes.Unavailable, grpccodes.DataLoss:
		span.SetAttributes(attribute.String("error.type", code.String()))
		span.SetStatus(codes.Error, status.Convert(err).Message())
	}
}

// tracedStream hands the stream's handler the context that holds its span.
type tracedStream struct {
	grpc.ServerStream
	ctx context.Context //nolint:containedctx // a ServerStream's Context is how gRPC hands it on
}

func (s *tracedStream) Context() context.Context { return s.ctx }

// metadataCarrier reads gRPC metadata as a propagation carrier. Several values of a
// key (tracestate sent as several fields) are joined with commas, as RFC 7230 combines
// header fields.
type metadataCarrier metadata.MD

func (c metadataCarrier) Get(key string) string {
	return checked(key, strings.Join(metadata.MD(c).Get(key), ","))
}

func (c metadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
