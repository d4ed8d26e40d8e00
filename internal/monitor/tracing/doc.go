// Package tracing exports OpenTelemetry traces of Ferry's requests over OTLP (gRPC or
// HTTP/protobuf), configured only by the standard OTEL_* environment variables (Setup).
// It owns the SDK and the exporter, and the transports' server spans: HTTP (a layer that
// wraps the REST root) and gRPC (interceptors). Core makes the spans below them
// (InferRequest, queue, compute, ensemble steps) through the trace.Tracer it is given
// (Tracer), and the remote backend makes its client spans through the global provider.
// Where the sampler and the span limits leave the SDK nothing to decide per span, Tracer
// is a lean tracer of our own (lean.go) whose spans the same exporter writes.
//
// With no endpoint configured, tracing is off: Tracer returns nil, HTTP returns the
// handler it wraps, and the interceptors are not installed, so a request meets no span,
// no context value and no propagator.
package tracing
