package gctune

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/ferryml/ferry/internal/periodic"
)

// maxPercent bounds GOGC when the live heap is tiny.
const maxPercent = 10000

// Percent is the GOGC that leaves at least headroom bytes to allocate between collections
// over a live heap of live bytes: Go's default 100 once live is at least headroom, and
// never more than maxPercent.
func Percent(live, headroom uint64) int {
	if live >= headroom {
		return 100
	}
	p := headroom * 100 / max(live, 1)
	return int(min(max(p, 100), maxPercent))
}

// Run sets GOGC from the live heap every interval until ctx ends, then restores the
// setting it found. A headroom of 0 does nothing. Callers skip Run when the operator set
// GOGC: the process-wide setting is theirs.
func Run(ctx context.Context, headroom uint64, interval time.Duration) {
	if headroom == 0 {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := func() int {
		metrics.Read(sample)
		var live uint64
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live = sample[0].Value.Uint64()
		}
		return debug.SetGCPercent(Percent(live, headroom))
	}
	orig := set()
	defer debug.SetGCPercent(orig)
	periodic.Run(ctx, interval, func(context.Context) { set() })
}
