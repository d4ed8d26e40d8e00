package alert

import (
	"math"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/core"
)

// Requests is a Source of request metrics fed as a core.Tap: per model, over a
// sliding window of one-second slots, "error_rate" (failed / all requests),
// "latency_pNN" (the NNth percentile of core's request time, in seconds, e.g.
// latency_p99), "requests" and "request_rate" (per second). Shadow copies are not
// counted. Finished costs a few atomic adds and does not allocate.
//
// Latencies fall in buckets four to an octave, from 1µs to about 18 minutes; a
// quantile is its bucket's upper edge, at most 25% above the true one. Counts made at the moment a slot is reused
// for a new second may be lost: the numbers are for alerting, not accounting.
type Requests struct {
	slots  int
	window time.Duration // Value's window (ValueOver takes its own)
	mu     sync.Mutex    // serializes adding a model; readers load the map
	models atomic.Pointer[map[string]*series]
}

// Bucket layout: index 0 holds everything under 1µs; then four per octave.
const (
	latBuckets = 4*30 + 1
	minShift   = 10 // 2^10 ns ≈ 1µs
)

type slot struct {
	sec        atomic.Int64 // the Unix second the counts are for
	total, err atomic.Uint64
	lat        [latBuckets]atomic.Uint32
}

type series struct{ slots []slot }

var _ core.Tap = (*Requests)(nil)
var _ WindowSource = (*Requests)(nil)

// NewRequests keeps span of history (default 15 minutes, at least one: about 500
// bytes a second per model) and answers Value over window (default one minute); a
// rule's window is capped at span.
func NewRequests(span, window time.Duration) *Requests {
	if span <= 0 {
		span = 15 * time.Minute
	}
	span = max(span, time.Minute)
	if window <= 0 {
		window = time.Minute
	}
	r := &Requests{slots: int(span / time.Second), window: window}
	r.models.Store(&map[string]*series{})
	return r
}

// Finished implements core.Tap.
func (r *Requests) Finished(rec *core.Record) {
	if rec.Route == core.RouteShadow {
		return
	}
	s := (*r.models.Load())[rec.Model]
	if s == nil {
		s = r.add(rec.Model)
	}
	end := rec.Start.Add(rec.Total).Unix()
	sl := &s.slots[int(end%int64(len(s.slots)))]
	if old := sl.sec.Load(); old != end && sl.sec.CompareAndSwap(old, end) {
		sl.reset()
	}
	sl.total.Add(1)
	if rec.Err != nil {
		sl.err.Add(1)
	}
	sl.lat[bucketOf(rec.Total)].Add(1)
}

// add publishes a series for model: a copy of the map with it, swapped in.
func (r *Requests) add(model string) *series {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.models.Load()
	if s := old[model]; s != nil {
		return s
	}
	m := make(map[string]*series, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	s := &series{slots: make([]slot, r.slots)}
	m[model] = s
	r.models.Store(&m)
	return s
}

func (sl *slot) reset() {
	sl.total.Store(0)
	sl.err.Store(0)
	for i := range sl.lat {
		sl.lat[i].Store(0)
	}
}

// bucketOf is d's latency bucket: the octave from the leading bit, the quarter from
// the next two.
func bucketOf(d time.Duration) int {
	ns := uint64(max(d, 0))
	if ns < 1<<minShift {
		return 0
	}
	n := bits.Len64(ns) - 1 // 2^n <= ns
	quarter := int(ns>>(n-2)) & 3
	return min(1+4*(n-minShift)+quarter, latBuckets-1)
}

// upper is the upper edge of bucket i, in seconds.
func upper(i int) float64 {
	if i == 0 {
		return float64(1<<minShift) / 1e9
	}
	n, q := (i-1)/4+minShift, (i-1)%4
	return math.Ldexp(1+float64(q+1)/4, n) / 1e9
}

// Value implements Source over the default window.
func (r *Requests) Value(model, metric string) (float64, bool) {
	return r.ValueOver(model, metric, r.window)
}

// ValueOver implements WindowSource.
func (r *Requests) ValueOver(model, metric string, window time.Duration) (float64, bool) {
	return r.valueAt(time.Now(), model, metric, window)
}

func (r *Requests) valueAt(now time.Time, model, metric string, window time.Duration) (float64, bool) {
	s := (*r.models.Load())[model]
	if s == nil {
		return 0, false
	}
	secs := int64(min(max(window/time.Second, 1), time.Duration(len(s.slots)-1)))
	total, errs, lat := s.sum(now.Unix(), secs)
	switch {
	case metric == "requests":
		return float64(total), true
	case metric == "request_rate":
		return float64(total) / float64(secs), true
	case total == 0:
		return 0, false
	case metric == "error_rate":
		return float64(errs) / float64(total), true
	}
	if p, ok := strings.CutPrefix(metric, "latency_p"); ok {
		q, err := strconv.ParseFloat(p, 64)
		if err != nil || q <= 0 || q > 100 {
			return 0, false
		}
		return quantile(lat, total, q/100), true
	}
	return 0, false
}

// sum adds the slots of the secs seconds up to now.
// sum adds the slots of the second now is in and the secs whole seconds before it: a
// window that read only whole seconds back from now would hold nothing for an instant
// after every second starts, and an alert over it would resolve and fire again each
// second under steady traffic.
func (s *series) sum(now, secs int64) (total, errs uint64, lat [latBuckets]uint64) {
	for i := range s.slots {
		sl := &s.slots[i]
		if sec := sl.sec.Load(); sec > now || sec < now-secs {
			continue
		}
		total += sl.total.Load()
		errs += sl.err.Load()
		for b := range sl.lat {
			lat[b] += uint64(sl.lat[b].Load())
		}
	}
	return total, errs, lat
}

// quantile is the upper edge of the bucket that holds the q-th request.
func quantile(lat [latBuckets]uint64, total uint64, q float64) float64 {
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range lat {
		seen += c
		if seen >= rank && c > 0 {
			return upper(i)
		}
	}
	return upper(latBuckets - 1)
}
