package tracing

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// rootBound, when set, is the decision for a request with no trace context of its own
// under OTEL_TRACES_SAMPLER=parentbased_traceidratio: a random 63-bit draw below it is
// traced. The server layers make that decision before any span exists, so the 1-ratio
// of requests not traced cost no SDK span at all (its sampler, options, allocations:
// ~1 µs a request at 30,000 requests a second); the SDK then samples what it is given
// by its parent. Nil for every other sampler, which the SDK applies as configured.
var rootBound atomic.Pointer[uint64]

// rootSampler is the SDK sampler Setup installs: ParentBased(AlwaysSample) when the
// server layers decide roots (their ratio in rootBound), else nil (the SDK reads the
// environment itself).
func rootSampler() sdktrace.Sampler {
	rootBound.Store(nil)
	if strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")) != "parentbased_traceidratio" {
		return nil
	}
	ratio := 1.0 // the SDK's default when the argument is missing or bad
	if arg := strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER_ARG")); arg != "" {
		if v, err := strconv.ParseFloat(arg, 64); err == nil && v >= 0 && v <= 1 {
			ratio = v
		}
	}
	bound := uint64(ratio * (1 << 63))
	if ratio >= 1 {
		bound = math.MaxUint64
	}
	rootBound.Store(&bound)
	return sdktrace.ParentBased(sdktrace.AlwaysSample())
}

// skipRoot reports whether a request whose context is ctx (its incoming trace
// context already extracted) is a root the ratio leaves untraced; then it returns the
// context carrying fresh, unsampled ids, which downstream calls pass on.
func skipRoot(ctx context.Context) (context.Context, bool) {
	b := rootBound.Load()
	if b == nil || trace.SpanContextFromContext(ctx).IsValid() || rand.Uint64()>>1 < *b {
		return ctx, false
	}
	tid, sid := randomIDs{}.NewIDs(ctx)
	return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid})), true
}
