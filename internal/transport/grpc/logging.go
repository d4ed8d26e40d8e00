package grpcapi

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
)

// logUnary logs each call at debug level, as Triton logs its requests at
// log_verbose_level 1, so a client can turn the trail on and off through the logging
// extension. When debug is off it costs one level check.
func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !s.log.Enabled(ctx, slog.LevelDebug) {
		return handler(ctx, req)
	}
	s.log.DebugContext(ctx, "grpc request", "method", info.FullMethod)
	res, err := handler(ctx, req)
	if err != nil {
		s.log.DebugContext(ctx, "grpc request failed", "method", info.FullMethod, "code", codeOf(err).String(), "err", err)
	}
	return res, err
}

// logStream logs the start of each stream at debug level (not each message: a stream
// may carry thousands).
func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	s.log.DebugContext(ss.Context(), "grpc stream", "method", info.FullMethod)
	return handler(srv, ss)
}
