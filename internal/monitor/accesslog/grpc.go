package accesslog

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ferryml/ferry/internal/monitor/reqlog"
)

// GRPCServerOptions log each unary call and each stream (one line when it ends, its
// bytes the sum of its messages), giving each reqlog.Fields; add them before the other
// interceptors. None for a nil *Log.
func (l *Log) GRPCServerOptions() []grpc.ServerOption {
	if l == nil {
		return nil
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			start := time.Now()
			ctx, f := withFields(ctx)
			res, err := handler(ctx, req)
			e := l.grpcEntry(ctx, f, info.FullMethod, start, err)
			e.BytesIn, e.BytesOut = msgSize(req), msgSize(res)
			l.Add(e)
			return res, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			start := time.Now()
			ctx, f := withFields(ss.Context())
			cs := &countingStream{ServerStream: ss, ctx: ctx}
			err := handler(srv, cs)
			e := l.grpcEntry(cs.ctx, f, info.FullMethod, start, err)
			e.BytesIn, e.BytesOut = cs.in, cs.out
			l.Add(e)
			return err
		}),
	}
}

func (l *Log) grpcEntry(ctx context.Context, f *reqlog.Fields, fullMethod string, start time.Time, err error) Entry {
	_, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	e := Entry{Time: start, Protocol: "grpc", Method: method, Route: fullMethod, Status: int(status.Code(err)), Duration: time.Since(start)}
	e.RequestID, e.Model, e.Version, e.Tenant = f.Snapshot()
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		e.TraceID = sc.TraceID().String()
	}
	return e
}

func msgSize(m any) int64 {
	if pm, ok := m.(proto.Message); ok && pm != nil {
		return int64(proto.Size(pm))
	}
	return 0
}

// countingStream adds up the sizes of a stream's messages.
type countingStream struct {
	grpc.ServerStream
	ctx     context.Context //nolint:containedctx // a ServerStream's Context is how gRPC hands it on
	in, out int64
}

func (s *countingStream) Context() context.Context { return s.ctx }

func (s *countingStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.in += msgSize(m)
	}
	return err
}

func (s *countingStream) SendMsg(m any) error {
	s.out += msgSize(m)
	return s.ServerStream.SendMsg(m)
}
