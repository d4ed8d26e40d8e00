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
// from start, n of them at most, each of length d, or (count > 0) each until count
// requests have completed.
type timeline struct {
	begin, start time.Time
	d            time.Duration
	n            int
	count        int
}

func newTimeline(o Options) timeline {
	begin := time.Now()
	n := 1
	if o.Stability > 0 {
		n = max(cmp.Or(o.MaxWindows, DefaultMaxWindows), stableWindows)
	}
	return timeline{begin: begin, start: begin.Add(o.Warmup), d: o.Duration, n: n, count: o.WindowRequests}
}

// end is when time window k ends.
func (tl timeline) end(k int) time.Time { return tl.start.Add(time.Duration(k+1) * tl.d) }

// last is when the last possible time window ends; for count windows, when the last
// would end if each lasted d (an open loop plans its arrivals in spans of that length).
func (tl timeline) last() time.Time { return tl.end(tl.n - 1) }

// index is the time window holding t, or -1 when t is before the first or after the
// last. A window holds its end, so that the single window of a run without stability
// checks counts what completed on its last instant.
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
	// Count windows: the window open now, when each ended, and per window a channel
	// closed when it ends.
	cur    int
	ends   []time.Time
	filled []chan struct{}
}

func newRecorder(tl timeline) *recorder {
	r := &recorder{tl: tl, windows: make([]tally, tl.n)}
	if tl.count > 0 {
		r.ends = make([]time.Time, tl.n)
		r.filled = make([]chan struct{}, tl.n)
		for k := range r.filled {
			r.filled[k] = make(chan struct{})
		}
	}
	return r
}

// add files a request sent at t0 and completed at t1. A count window ends with the
// request that fills it, failed or not, so that a failing server still ends it.
func (r *recorder) add(t0, t1 time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.indexLocked(t1)
	if k < 0 {
		return
	}
	w := &r.windows[k]
	w.add(t1.Sub(t0), err)
	if r.tl.count > 0 && len(w.lat)+w.errors == r.tl.count {
		r.ends[k] = t1
		close(r.filled[k])
		r.cur++
	}
}

// index is the window an event at t falls in, or -1 outside the windows.
func (r *recorder) index(t time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.indexLocked(t)
}

func (r *recorder) indexLocked(t time.Time) int {
	if r.tl.count == 0 {
		return r.tl.index(t)
	}
	if t.Before(r.tl.start) || r.cur >= r.tl.n {
		return -1
	}
	return r.cur
}

// startLocked is when window k began.
func (r *recorder) startLocked(k int) time.Time {
	if r.tl.count == 0 || k == 0 {
		return r.tl.start.Add(time.Duration(k) * r.tl.d)
	}
	return r.ends[k-1]
}

// lengthLocked is how long the ended windows [lo, hi) lasted together.
func (r *recorder) lengthLocked(lo, hi int) time.Duration {
	if r.tl.count == 0 {
		return time.Duration(hi-lo) * r.tl.d
	}
	return r.ends[hi-1].Sub(r.startLocked(lo))
}

// wait waits for window k to end, telling o.Live how it goes; false means ctx ended
// first.
func (r *recorder) wait(ctx context.Context, k int, o Options, lv Level) bool {
	var filled <-chan struct{}
	var timeUp <-chan time.Time
	if r.tl.count > 0 {
		filled = r.filled[k]
	} else {
		timer := time.NewTimer(time.Until(r.tl.end(k)))
		defer timer.Stop()
		timeUp = timer.C
	}
	var tick <-chan time.Time
	if o.Live != nil && o.LiveEvery > 0 {
		t := time.NewTicker(o.LiveEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-filled:
		case <-timeUp:
		case <-tick:
			o.Live(r.live(k, lv, false))
			continue
		}
		if o.Live != nil {
			o.Live(r.live(k, lv, true))
		}
		return true
	}
}

// live is window k's progress so far.
func (r *recorder) live(k int, lv Level, done bool) Live {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.windows[k]
	l := Live{Level: lv, Window: k + 1, Windows: r.tl.n, Count: r.tl.count, Requests: len(w.lat), Errors: w.errors, Done: done}
	if done {
		l.Elapsed = r.lengthLocked(k, k+1)
	} else {
		l.Elapsed = time.Since(r.startLocked(k))
	}
	if s := l.Elapsed.Seconds(); s > 0 {
		l.PerSecond = float64(l.Requests) / s
	}
	if len(w.lat) > 0 {
		var sum time.Duration
		for _, d := range w.lat {
			sum += d
		}
		l.Mean = us(sum / time.Duration(len(w.lat)))
	}
	return l
}

// Live is the progress of the window being measured.
type Live struct {
	Level   Level // which level: its Concurrency or RequestRate, and BatchSize
	Window  int   // the window, from 1
	Windows int   // the most windows the level may measure
	// Count is the requests that end a count window; 0 for time windows.
	Count            int
	Requests, Errors int           // completed in the window so far
	Elapsed          time.Duration // since the window began
	PerSecond        float64       // successful requests per second so far
	Mean             float64       // their mean latency, µs
	Done             bool          // the window has ended
}

// merged is windows [lo, hi) together, and how long they lasted.
func (r *recorder) merged(lo, hi int) (tally, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var t tally
	for _, w := range r.windows[lo:hi] {
		t.merge(w) // copies the latencies: t's slice starts empty
	}
	return t, r.lengthLocked(lo, hi)
}

// stable reports whether windows [lo, hi) agree: each one's throughput and latency
// (percentile p, or the mean when p is 0) within pct percent of their average over the
// windows, as perf_analyzer's --stability-percentage judges them. A window without a
// success is never stable.
func (r *recorder) stable(lo, hi int, pct, p float64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rates, lats []float64
	for k := lo; k < hi; k++ {
		w := r.windows[k]
		if len(w.lat) == 0 {
			return false
		}
		l := Level{BatchSize: 1}
		l.measure(slices.Clone(w.lat), r.lengthLocked(k, k+1))
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
func watch(ctx context.Context, c Client, o Options, tl timeline, rec *recorder, lv Level) (span, bool) {
	if !sleepUntil(ctx, tl.start) {
		return span{}, false
	}
	snaps := []snapshot{takeSnapshot(ctx, c, o)}
	for k := range tl.n {
		if !rec.wait(ctx, k, o, lv) {
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
	t, length := rec.merged(sp.lo, sp.hi)
	l.Errors = t.errors
	if t.firstErr != nil {
		l.FirstError = t.firstErr.Error()
	}
	l.measure(t.lat, length)
	if o.Stability > 0 {
		l.Windows, l.Unstable = sp.windows, sp.unstable
	}
	b, a := sp.before, sp.after
	if b.statsErr == nil && a.statsErr == nil && a.stats.ExecutionCount > b.stats.ExecutionCount {
		l.ServerAvgBatch = float64(a.stats.InferenceCount-b.stats.InferenceCount) / float64(a.stats.ExecutionCount-b.stats.ExecutionCount)
	}
	if b.statsErr == nil && a.statsErr == nil {
		l.ServerQueue = a.stats.Queue.mean(b.stats.Queue)
		l.ServerComputeInput = a.stats.ComputeInput.mean(b.stats.ComputeInput)
		l.ServerComputeInfer = a.stats.ComputeInfer.mean(b.stats.ComputeInfer)
		l.ServerComputeOutput = a.stats.ComputeOutput.mean(b.stats.ComputeOutput)
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
