package bench

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// DefaultMaxWindows bounds a level measured until stable, as perf_analyzer's
// --max-trials does.
const DefaultMaxWindows = 10

// stableWindows is how many consecutive windows must agree, as in perf_analyzer.
const stableWindows = 3

// timeline is one level's time: load from begin, then back-to-back measurement windows
// of length d from start, n of them at most.
type timeline struct {
	begin, start time.Time
	d            time.Duration
	n            int
}

func newTimeline(o Options) timeline {
	begin := time.Now()
	n := 1
	if o.Stability > 0 {
		n = max(cmp.Or(o.MaxWindows, DefaultMaxWindows), stableWindows)
	}
	return timeline{begin: begin, start: begin.Add(o.Warmup), d: o.Duration, n: n}
}

// end is when window k ends.
func (tl timeline) end(k int) time.Time { return tl.start.Add(time.Duration(k+1) * tl.d) }

// last is when the last possible window ends.
func (tl timeline) last() time.Time { return tl.end(tl.n - 1) }

// index is the window holding t, or -1 when t is before the first or after the last.
// A window holds its end, so that the single window of a run without stability checks
// counts what completed on its last instant.
func (tl timeline) index(t time.Time) int {
	if t.Before(tl.start) || t.After(tl.last()) {
		return -1
	}
	return min(int(t.Sub(tl.start)/tl.d), tl.n-1)
}

// recorder files each request's result under the window it completed in. Safe for
// concurrent use.
type recorder struct {
	tl      timeline
	mu      sync.Mutex
	windows []tally
}

func newRecorder(tl timeline) *recorder { return &recorder{tl: tl, windows: make([]tally, tl.n)} }

func (r *recorder) add(t0, t1 time.Time, err error) {
	k := r.tl.index(t1)
	if k < 0 {
		return
	}
	r.mu.Lock()
	r.windows[k].add(t1.Sub(t0), err)
	r.mu.Unlock()
}

// merged is windows [lo, hi) together.
func (r *recorder) merged(lo, hi int) tally {
	r.mu.Lock()
	defer r.mu.Unlock()
	var t tally
	for _, w := range r.windows[lo:hi] {
		t.merge(w) // copies the latencies: t's slice starts empty
	}
	return t
}

// stable reports whether windows [lo, hi) agree: each one's throughput and latency
// (percentile p, or the mean when p is 0) within pct percent of their average over the
// windows, as perf_analyzer's --stability-percentage judges them. A window without a
// success is never stable.
func (r *recorder) stable(lo, hi int, pct, p float64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rates, lats []float64
	for _, w := range r.windows[lo:hi] {
		if len(w.lat) == 0 {
			return false
		}
		l := Level{BatchSize: 1}
		l.measure(slices.Clone(w.lat), r.tl.d)
		rates = append(rates, l.PerSecond)
		lats = append(lats, l.latency(p))
	}
	return within(rates, pct) && within(lats, pct)
}

// within reports whether every value is within pct percent of their average.
func within(vs []float64, pct float64) bool {
	var avg float64
	for _, v := range vs {
		avg += v / float64(len(vs))
	}
	for _, v := range vs {
		if math.Abs(v-avg) > pct/100*avg {
			return false
		}
	}
	return true
}

// snapshot is what a level reads at a window boundary besides the latencies: the
// server's statistics and CPU time, and this process's CPU time.
type snapshot struct {
	stats         Stats
	statsErr      error
	server, own   time.Duration
	srvErr, owErr error
}

func takeSnapshot(ctx context.Context, c Client, o Options) snapshot {
	var s snapshot
	s.stats, s.statsErr = stats(ctx, c)
	s.server, s.srvErr = serverCPU(ctx, o)
	s.own, s.owErr = processCPU()
	return s
}

// span is the windows a level reports, [lo, hi), with the snapshots at their edges.
type span struct {
	lo, hi        int
	before, after snapshot
	windows       int  // windows measured
	unstable      bool // stability was asked for and not reached
}

// watch waits out a level's windows, taking a snapshot at each boundary. Without a
// stability percentage it measures one window. With one, it stops as soon as the last
// three windows agree, or after the last window, and reports the last three. false
// means ctx ended first.
func watch(ctx context.Context, c Client, o Options, tl timeline, rec *recorder) (span, bool) {
	if !sleepUntil(ctx, tl.start) {
		return span{}, false
	}
	snaps := []snapshot{takeSnapshot(ctx, c, o)}
	for k := range tl.n {
		if !sleepUntil(ctx, tl.end(k)) {
			return span{}, false
		}
		snaps = append(snaps, takeSnapshot(ctx, c, o))
		done := k+1 == tl.n
		if o.Stability > 0 && k+1 >= stableWindows && rec.stable(k+1-stableWindows, k+1, o.Stability, o.Percentile) {
			return span{lo: k + 1 - stableWindows, hi: k + 1, before: snaps[k+1-stableWindows], after: snaps[k+1], windows: k + 1}, true
		}
		if done {
			lo := 0
			if o.Stability > 0 {
				lo = max(k+1-stableWindows, 0)
			}
			return span{lo: lo, hi: k + 1, before: snaps[lo], after: snaps[k+1], windows: k + 1, unstable: o.Stability > 0}, true
		}
	}
	return span{}, false // not reached: tl.n >= 1
}

// level fills l with the span's results: throughput and latency of the requests that
// completed in it, the server's average batch size (Δinference_count /
// Δexecution_count) and the CPU per request, the server's and this process's.
func (sp span) level(l Level, rec *recorder, o Options) Level {
	t := rec.merged(sp.lo, sp.hi)
	l.Errors = t.errors
	if t.firstErr != nil {
		l.FirstError = t.firstErr.Error()
	}
	l.measure(t.lat, time.Duration(sp.hi-sp.lo)*rec.tl.d)
	if o.Stability > 0 {
		l.Windows, l.Unstable = sp.windows, sp.unstable
	}
	b, a := sp.before, sp.after
	if b.statsErr == nil && a.statsErr == nil && a.stats.ExecutionCount > b.stats.ExecutionCount {
		l.ServerAvgBatch = float64(a.stats.InferenceCount-b.stats.InferenceCount) / float64(a.stats.ExecutionCount-b.stats.ExecutionCount)
	}
	if l.Requests > 0 {
		if b.srvErr == nil && a.srvErr == nil {
			l.ServerCPUPerRequest = us((a.server - b.server) / time.Duration(l.Requests))
		}
		if b.owErr == nil && a.owErr == nil {
			l.ClientCPUPerRequest = us((a.own - b.own) / time.Duration(l.Requests))
		}
	}
	return l
}
