package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of every span Ferry makes.
const ScopeName = "github.com/ferryml/ferry"

// active is the provider Setup installed; nil while tracing is off. The OpenTelemetry
// API keeps its provider and propagator globally, and Setup's signature (a shutdown
// func, nothing else) leaves the rest of the server to find the tracer here.
var active atomic.Pointer[sdktrace.TracerProvider]

// Enabled reports whether Setup turned tracing on (and its shutdown has not run).
func Enabled() bool { return active.Load() != nil }

// lastBatcher is the span processor of the latest Setup, for SpansDropped.
var lastBatcher atomic.Pointer[batcher]

// SpansDropped counts the sampled spans dropped because the export buffer was full
// (OTEL_BSP_MAX_QUEUE_SIZE), over the latest Setup.
func SpansDropped() uint64 {
	if b := lastBatcher.Load(); b != nil {
		return b.dropped.Load()
	}
	return 0
}

// ferryTracer is the tracer Setup made for Ferry's own spans: a leanTracer when the
// environment allows one (leanAllowed), else the SDK's.
var ferryTracer atomic.Pointer[trace.Tracer]

// Tracer is the tracer core and the transports start spans with, or nil while tracing is
// off: a nil tracer is the signal to make no span at all.
func Tracer() trace.Tracer {
	if active.Load() == nil {
		return nil
	}
	if tr := ferryTracer.Load(); tr != nil {
		return *tr
	}
	return nil
}

// Setup turns tracing on when the environment names an OTLP endpoint
// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT), unless
// OTEL_SDK_DISABLED is true or OTEL_TRACES_EXPORTER is none. The protocol is
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL: grpc or
// http/protobuf (the default, as the specification says). The SDK reads the sampler
// (OTEL_TRACES_SAMPLER, _ARG; parent-based always-on by default) and the exporters read
// the rest (headers, timeout, TLS); OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
// override serviceName and add to the resource.
//
// Spans are exported in batches from a bounded queue: a slow or absent collector drops
// spans, never delays a request. shutdown flushes what is queued within its context and
// turns tracing off again; it is never nil (a no-op when tracing stayed off).
func Setup(ctx context.Context, serviceName, version string, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	off := func(context.Context) error { return nil }
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	on, why, err := wanted()
	if err != nil {
		return off, err
	}
	if !on {
		log.Debug("tracing off", "reason", why)
		return off, nil
	}
	exp, proto, err := newExporter(ctx)
	if err != nil {
		return off, err
	}
	res, err := newResource(ctx, serviceName, version, log)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return off, err
	}
	bp := newBatcher(exp)
	opts := []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(bp), sdktrace.WithResource(res), sdktrace.WithIDGenerator(randomIDs{})}
	if s := rootSampler(); s != nil {
		opts = append(opts, sdktrace.WithSampler(s))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	var tr trace.Tracer = tp.Tracer(ScopeName)
	if leanAllowed() {
		tr = &leanTracer{tp: tp, b: bp, res: res, scope: instrumentation.Scope{Name: ScopeName}}
	}
	ferryTracer.Store(&tr)
	lastBatcher.Store(bp)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing", "err", err) }))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	active.Store(tp)
	log.Info("tracing on", "protocol", proto, "endpoint", endpoint())
	return func(ctx context.Context) error {
		if !active.CompareAndSwap(tp, nil) {
			return nil
		}
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("tracing: flushing spans: %w", err)
		}
		return nil
	}, nil
}

// wanted reads whether the environment asks for traces, and why not when it does not.
func wanted() (bool, string, error) {
	if v := strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")); strings.EqualFold(v, "true") {
		return false, "OTEL_SDK_DISABLED=true", nil
	}
	switch v := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")); strings.ToLower(v) {
	case "none":
		return false, "OTEL_TRACES_EXPORTER=none", nil
	case "", "otlp":
	default:
		return false, "", fmt.Errorf("OTEL_TRACES_EXPORTER %q: Ferry exports traces over otlp or none", v)
	}
	if endpoint() == "" {
		return false, "no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", nil
	}
	return true, "", nil
}

func endpoint() string {
	return envOr("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
}

// envOr is the first of the variables that is set, trimmed.
func envOr(keys ...string) string {
	for _, k := range keys {
		if v := strings.TrimSpace(os.Getenv(k)); v != "" {
			return v
		}
	}
	return ""
}

// newExporter builds the OTLP exporter the protocol variables name: the SDK's client,
// which reads its endpoint, headers, timeout and TLS from the environment itself, behind
// our transform (export.go).
func newExporter(ctx context.Context) (sdktrace.SpanExporter, string, error) {
	proto := envOr("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	var client otlptrace.Client
	switch proto {
	case "grpc":
		client = otlptracegrpc.NewClient()
	case "http/protobuf", "":
		proto = "http/protobuf"
		client = otlptracehttp.NewClient()
	default:
		return nil, "", fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: want grpc or http/protobuf", proto)
	}
	exp, err := newOTLPExporter(ctx, client)
	if err != nil {
		return nil, "", fmt.Errorf("tracing: OTLP %s exporter: %w", proto, err)
	}
	return exp, proto, nil
}

// newResource describes this process: service.name and service.version, which
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override (later options win).
// A malformed OTEL_RESOURCE_ATTRIBUTES entry is skipped with a warning, as the SDK does.
func newResource(ctx context.Context, serviceName, version string, log *slog.Logger) (*resource.Resource, error) {
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", serviceName), attribute.String("service.version", version)),
		resource.WithFromEnv(),
	)
	if errors.Is(err, resource.ErrPartialResource) {
		log.Warn("tracing: part of OTEL_RESOURCE_ATTRIBUTES ignored", "err", err)
	} else if err != nil {
		return nil, fmt.Errorf("tracing: resource from OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	return res, nil
}
