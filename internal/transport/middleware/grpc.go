package middleware

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// LogUnary logs each call at debug level, as Triton logs its requests at
// log_verbose_level 1, so a client can turn the trail on and off through the logging
// extension. A failed call is logged with the code its client sees. When debug is off it
// costs one level check.
func LogUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !log.Enabled(ctx, slog.LevelDebug) {
			return handler(ctx, req)
		}
		log.DebugContext(ctx, "grpc request", "method", info.FullMethod)
		res, err := handler(ctx, req)
		if err != nil {
			log.DebugContext(ctx, "grpc request failed", "method", info.FullMethod, "code", status.Code(err).String(), "err", err)
		}
		return res, err
	}
}

// LogStream logs the start of each stream at debug level (not each message: a stream
// may carry thousands).
func LogStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		log.DebugContext(ss.Context(), "grpc stream", "method", info.FullMethod)
		return handler(srv, ss)
	}
}
