package remote

import (
	"slices"
	"sync"
	"time"
)

const (
	windowSize = 1000 // recent tries whose latencies set the hedge delay
	minSamples = 20   // no hedging on fewer: a quantile of a handful of tries is noise
	resortEach = 16   // observations between re-sorting the window
)

// window keeps the latencies of the most recent tries and answers quantiles of them. The
// sorted copy is refreshed every few observations, so a quantile costs no sort on the
// request path most of the time.
type window struct {
	mu      sync.Mutex
	ring    []time.Duration
	next    int
	sorted  []time.Duration
	pending int // observations since sorted was built
}

func (w *window) observe(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ring) < windowSize {
		w.ring = append(w.ring, d)
	} else {
		w.ring[w.next] = d
		w.next = (w.next + 1) % windowSize
	}
	w.pending++
}

// quantile returns the q-quantile (0 < q < 1) of the window, or false while it holds
// fewer than minSamples latencies.
func (w *window) quantile(q float64) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ring) < minSamples {
		return 0, false
	}
	if w.sorted == nil || w.pending >= resortEach {
		w.sorted = append(w.sorted[:0], w.ring...)
		slices.Sort(w.sorted)
		w.pending = 0
	}
	i := min(int(q*float64(len(w.sorted))), len(w.sorted)-1)
	return w.sorted[i], true
}
