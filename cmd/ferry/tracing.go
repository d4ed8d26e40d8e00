package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"

	"github.com/ferryml/ferry/internal/monitor/tracing"
	"github.com/ferryml/ferry/internal/settings"
	"github.com/ferryml/ferry/internal/transport/middleware"
)

// tracing.go wires OpenTelemetry into ferry serve. Tracing has no flag: the OTEL_*
// environment turns it on (tracing.Setup), before the server is built, since core, the
// REST root and the gRPC server take their tracer when they are built and make no span
// at all without one.

// traceFlushTimeout bounds the flush of queued spans at stop, after the drain.
const traceFlushTimeout = 5 * time.Second

// startTracing turns tracing on if the environment asks for it; stop flushes the spans
// still queued (call it once the server has drained) and turns it off.
func startTracing(ctx context.Context, log *slog.Logger) (stop func(), err error) {
	shutdown, err := tracing.Setup(ctx, "ferry", version, log.With("component", "tracing"))
	if err != nil {
		return nil, err
	}
	return func() {
		fctx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
		defer cancel()
		if err := shutdown(fctx); err != nil {
			log.Warn("spans lost at stop", "err", err)
		}
	}, nil
}

// traceHTTP is the REST root's outermost layer: a SERVER span per request, named by the
// mux's pattern for it; the identity while tracing is off.
func traceHTTP(mux *http.ServeMux) middleware.Layer {
	return tracing.HTTP(func(r *http.Request) string {
		_, pattern := mux.Handler(r)
		return pattern
	})
}

// traceDefaults are the trace extension's startup settings. With OpenTelemetry on, every
// request is offered to the OTEL_TRACES_SAMPLER (TIMESTAMPS, rate 1, no count), so that
// /v2/trace/setting tells the truth; a client that sets trace_level OFF or a trace_rate
// for a model (or globally) then thins core's spans further (core.Options.Trace). Off,
// they are Triton's defaults (trace_level OFF), which then gate nothing.
func traceDefaults() settings.TraceSetting {
	if !tracing.Enabled() {
		return settings.DefaultTrace()
	}
	return settings.TraceSetting{Level: settings.TraceTimestamps, Rate: 1, Count: -1}
}

// traceGRPC are the gRPC server's outermost interceptors (none while tracing is off).
func traceGRPC() []grpc.ServerOption { return tracing.GRPCServerOptions() }
