package gctune

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/platform/periodic"
)

// DefaultHeadroom is the headroom ferry serve and ferry batch keep by default
// (--gc-headroom); benchmarks of code that runs inside them tune with it too.
const DefaultHeadroom = 64 << 20

// maxPercent bounds GOGC when the live heap is tiny.
const maxPercent = 10000

// minHeap is the runtime's smallest heap goal at GOGC=100 (defaultHeapMinimum in
// runtime/mgcpacer.go); at GOGC=p the goal is never below minHeap*p/100. Before the
// first collection, when nothing is marked yet, that floor is the whole goal: at
// GOGC=10000 it is 400 MiB.
const minHeap = 4 << 20

// Percent is the GOGC that leaves headroom bytes to allocate between collections, and
// not much more, over a heap whose last collection marked live bytes (0 before the first)
// and scanned roots bytes of stacks and globals: Go's default 100 once that leaves at
// least headroom, and never more than maxPercent.
//
// The runtime's heap goal at GOGC=p is max(live + (live+roots)*p/100, minHeap*p/100).
// Percent is the largest p that keeps both terms within live+headroom, so the goal stays
// within max(live+headroom, 2*live+roots, minHeap) whatever live is, including 0.
func Percent(live, roots, headroom uint64) int {
	p := min(headroom*100/max(live+roots, 1), (live+headroom)*100/minHeap)
	return int(min(max(p, 100), maxPercent))
}

// Run sets GOGC from the live heap after every collection, and every interval in case
// that signal is late, until ctx ends; then it restores the setting it found. A headroom
// of 0 does nothing. Callers skip Run when the operator set GOGC: the process-wide setting
// is theirs.
func Run(ctx context.Context, headroom uint64, interval time.Duration) {
	if headroom == 0 {
		return
	}
	t := &tuner{headroom: headroom, samples: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}}
	orig, _ := t.tune()
	t.armAfterGC()
	defer t.stop(orig)
	periodic.Run(ctx, interval, func(context.Context) { t.tune() })
}

// tuner is one Run's state. Its mutex orders the calls of Run's loop, of the collector's
// cleanups and of stop, so that no setting lands after stop restored the original.
type tuner struct {
	headroom uint64

	mu      sync.Mutex // guards stopped and samples
	stopped bool
	samples []metrics.Sample
}

// tune sets GOGC from the heap as the last collection left it, returning the previous
// setting; ok is false once stop has run.
func (t *tuner) tune() (prev int, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return 0, false
	}
	metrics.Read(t.samples)
	var v [3]uint64
	for i, s := range t.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	return debug.SetGCPercent(Percent(v[0], v[1]+v[2], t.headroom)), true
}

// sentinel is 16 bytes so that it gets its own slot: smaller pointer-free objects may
// share a tiny block whose cleanups run late or never.
type sentinel [16]byte

// armAfterGC has the next collection call tune, then arm again: the cleanup of an object
// unreachable from its allocation runs once a collection has freed it. The live heap
// Percent depends on changes only at a collection, which sets the next goal with the
// percent in force; until tune runs, a percent chosen for a smaller live heap lets the
// goal reach several times the headroom (32 MiB live at 1600 is a 550 MiB goal). Run's
// interval alone would leave that for up to a whole interval.
func (t *tuner) armAfterGC() {
	runtime.AddCleanup(new(sentinel), func(t *tuner) {
		if _, ok := t.tune(); ok {
			t.armAfterGC()
		}
	}, t)
}

func (t *tuner) stop(orig int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	debug.SetGCPercent(orig)
}
