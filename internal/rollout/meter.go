package rollout

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/core"
)

// Meter measures what a rollout's analysis reads: per (model, version) requests,
// errors and a latency histogram, plus shadow comparisons, for the current interval.
// It is a core.Tap; models without an active rollout cost one atomic load and a map
// miss, so it can sit on every request.
type Meter struct {
	mu      sync.Mutex                                      // serialises Watch/Unwatch
	watched atomic.Pointer[map[string]map[string]*counters] // model -> version; never mutated after Store
}

var _ core.Tap = (*Meter)(nil)

// counters are one version's running interval. The request counters are atomics so
// Finished takes no lock; shadow comparisons are rarer and carry a float, so they use a
// mutex.
type counters struct {
	requests, errors atomic.Uint64
	buckets          [numBuckets]atomic.Uint64

	shadowMu            sync.Mutex
	shadows, shadowErrs uint64
	shadowDiffSum       float64
	shadowDiffN         uint64
}

// NewMeter returns a Meter that counts nothing until Watch.
func NewMeter() *Meter { return &Meter{} }

// Watch starts counting model's versions (keeping counts of versions already watched).
func (m *Meter) Watch(model string, versions ...string) {
	m.update(func(w map[string]map[string]*counters) {
		vs := make(map[string]*counters)
		for v, c := range w[model] {
			vs[v] = c
		}
		for _, v := range versions {
			if vs[v] == nil {
				vs[v] = new(counters)
			}
		}
		w[model] = vs
	})
}

// Unwatch stops counting model.
func (m *Meter) Unwatch(model string) {
	m.update(func(w map[string]map[string]*counters) { delete(w, model) })
}

// update publishes a changed copy of the watch table: readers never lock.
func (m *Meter) update(change func(map[string]map[string]*counters)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := make(map[string]map[string]*counters)
	if old := m.watched.Load(); old != nil {
		for k, v := range *old {
			w[k] = v
		}
	}
	change(w)
	m.watched.Store(&w)
}

func (m *Meter) lookup(model, version string) *counters {
	w := m.watched.Load()
	if w == nil {
		return nil
	}
	return (*w)[model][version]
}

// Finished counts one request (core.Tap).
func (m *Meter) Finished(r *core.Record) {
	c := m.lookup(r.Model, r.Version)
	if c == nil {
		return
	}
	c.requests.Add(1)
	if r.Err != nil {
		c.errors.Add(1)
	}
	c.buckets[bucketOf(r.Total)].Add(1)
	if s := r.Shadow; s != nil { // a shadow copy: also a comparison with the primary
		diff := s.Diff
		if s.PrimaryFailed {
			diff = math.NaN() // nothing to compare with
		}
		m.ObserveShadow(r.Model, s.Primary, r.Version, diff, r.Err)
	}
}

// ObserveShadow counts one shadow comparison: a copy of a request to primaryVersion
// also ran on shadowVersion, whose answer differed by diff (err: the shadow failed).
func (m *Meter) ObserveShadow(model, primaryVersion, shadowVersion string, diff float64, err error) {
	c := m.lookup(model, shadowVersion)
	if c == nil {
		return
	}
	c.shadowMu.Lock()
	defer c.shadowMu.Unlock()
	c.shadows++
	switch {
	case err != nil:
		c.shadowErrs++
	case !math.IsNaN(diff):
		c.shadowDiffSum += diff
		c.shadowDiffN++
	}
}

// Snapshot returns what model's version did since the previous Snapshot of it and
// starts a new interval. A request that lands during the swap counts in one interval
// or the next, never in both.
func (m *Meter) Snapshot(model, version string) Window {
	var w Window
	c := m.lookup(model, version)
	if c == nil {
		return w
	}
	w.Requests, w.Errors = c.requests.Swap(0), c.errors.Swap(0)
	for i := range c.buckets {
		w.Latency[i] = c.buckets[i].Swap(0)
	}
	c.shadowMu.Lock()
	w.Shadows, w.ShadowErrors, w.ShadowDiffSum, w.shadowDiffN = c.shadows, c.shadowErrs, c.shadowDiffSum, c.shadowDiffN
	c.shadows, c.shadowErrs, c.shadowDiffSum, c.shadowDiffN = 0, 0, 0, 0
	c.shadowMu.Unlock()
	return w
}

// Window is one version's interval.
type Window struct {
	Requests, Errors      uint64
	Latency               Histogram
	Shadows, ShadowErrors uint64
	ShadowDiffSum         float64
	shadowDiffN           uint64
}

// ErrorRate is Errors/Requests (NaN without requests).
func (w Window) ErrorRate() float64 { return float64(w.Errors) / float64(w.Requests) }

// ShadowDiff is the mean difference of the shadow comparisons that ran (NaN: none).
func (w Window) ShadowDiff() float64 { return w.ShadowDiffSum / float64(w.shadowDiffN) }

// value is metric name's value in w and the samples behind it; ok is false when the
// metric does not apply (latency while mirroring, shadow_diff otherwise). Latencies are
// in seconds.
func (w Window) value(name string, mirroring bool) (v float64, n uint64, ok bool) {
	switch {
	case name == ShadowDiff:
		return w.ShadowDiff(), w.shadowDiffN, mirroring
	case name == ErrorRate && mirroring:
		return float64(w.ShadowErrors) / float64(w.Shadows), w.Shadows, true
	case mirroring:
		return 0, 0, false
	case name == ErrorRate:
		return w.ErrorRate(), w.Requests, true
	}
	q := map[string]float64{LatencyP50: 0.5, LatencyP90: 0.9, LatencyP99: 0.99}[name]
	return w.Latency.Quantile(q).Seconds(), w.Requests, true
}

// Histogram counts latencies in log-spaced buckets: 8 per power of two of
// microseconds, so a quantile is within about 6% of the truth (half a bucket) from 1µs
// to hours, in a fixed array that costs no allocation to fill.
type Histogram [numBuckets]uint64

const (
	subBits    = 3
	sub        = 1 << subBits
	numBuckets = (64 - subBits + 1) * sub
)

// bucketOf maps d to its bucket: microseconds below 8 exactly, then 8 buckets per
// doubling (the exponent and the 3 bits below the leading one).
func bucketOf(d time.Duration) int {
	x := uint64(max(d, 0)) >> 10 // ~µs: a shift, not a division
	if x < sub {
		return int(x)
	}
	e := bits.Len64(x) - 1
	return (e-subBits+1)*sub + int((x>>(e-subBits))&(sub-1))
}

// lower is bucket i's smallest duration.
func lower(i int) time.Duration {
	if i < sub {
		return time.Duration(uint64(i) << 10)
	}
	e := i/sub + subBits - 1
	return time.Duration((uint64(sub+i%sub) << (e - subBits)) << 10)
}

// Count is the number of latencies in h.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h {
		n += c
	}
	return n
}

// Quantile is the q-quantile (0..1) of h: the middle of the bucket holding it; 0 when h
// is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h {
		seen += c
		if seen >= rank {
			if i+1 >= numBuckets {
				return lower(i)
			}
			return lower(i) + (lower(i+1)-lower(i))/2
		}
	}
	return 0
}
