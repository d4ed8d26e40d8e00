package admission

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Shed configures one model's adaptive concurrency limit (doc.go says why AIMD, and
// why these defaults).
type Shed struct {
	// Off turns load shedding off for the model.
	Off bool
	// Objective is the admitted requests' latency objective. The limit backs off when a
	// request takes more than Target = Objective/2, leaving the other half for the
	// limit's overshoot between two backoffs and for the time outside core.
	Objective time.Duration
	// InitialLimit, MinLimit, MaxLimit bound the concurrency limit.
	InitialLimit, MinLimit, MaxLimit int
	// Backoff is the factor a request slower than the target multiplies the limit by
	// (see done for how often); one far slower cuts it by target/latency, at most by half.
	Backoff float64
	// RetryAfter is what an overload refusal tells the client.
	RetryAfter time.Duration
}

// DefaultShed is conservative: it refuses nothing until requests take over a second
// (the limit starts at its maximum, 1000 in flight), and never goes below 8 concurrent
// requests, so a model that is slow but not overloaded keeps its throughput.
func DefaultShed() Shed {
	return Shed{Objective: 2 * time.Second, InitialLimit: 1000, MinLimit: 8, MaxLimit: 1000, Backoff: 0.9, RetryAfter: time.Second}
}

// Validate names every bad field.
func (s Shed) Validate() error {
	switch {
	case s.Off:
		return nil
	case s.Objective <= 0:
		return fmt.Errorf("shed objective: must be > 0, got %s", s.Objective)
	case s.MinLimit < 1 || s.MaxLimit < s.MinLimit:
		return fmt.Errorf("shed limits: want 1 <= min (%d) <= max (%d)", s.MinLimit, s.MaxLimit)
	case s.InitialLimit < s.MinLimit || s.InitialLimit > s.MaxLimit:
		return fmt.Errorf("shed initial limit: want %d from min %d to max %d", s.InitialLimit, s.MinLimit, s.MaxLimit)
	case !(s.Backoff > 0 && s.Backoff < 1):
		return fmt.Errorf("shed backoff: want a factor strictly between 0 and 1, got %v", s.Backoff)
	case s.RetryAfter < 0:
		return fmt.Errorf("shed retry after: must be >= 0, got %s", s.RetryAfter)
	}
	return nil
}

// Limiter is one model's adaptive concurrency limit (AIMD on latency): it admits a
// request while fewer than its limit are in flight, grows the limit by 1/limit per
// request that finished within the target while the limit was in use (one per round of
// requests, as TCP does), and multiplies it by Backoff when one took longer. Priority
// levels share the limit unevenly: level k of n may fill only share(k) of it, so under
// overload the lowest priorities are refused first and the highest last.
type Limiter struct {
	shed     Shed
	target   time.Duration
	levels   int
	deflt    int // the level of priority 0
	release  func(time.Duration, error)
	refusals []*Refusal // per level, prebuilt: refusing allocates nothing

	mu       sync.Mutex
	limit    float64
	inflight int
	lastCut  time.Time // requests admitted before it came back slow because of the old limit
}

// NewLimiter builds the limiter of model with levels priority levels (at least 1),
// deflt the level of priority 0.
func NewLimiter(model string, s Shed, levels, deflt int) *Limiter {
	levels = max(levels, 1)
	if deflt < 1 || deflt > levels {
		deflt = levels
	}
	l := &Limiter{shed: s, target: s.Objective / 2, levels: levels, deflt: deflt, limit: float64(s.InitialLimit)}
	for k := 1; k <= levels; k++ {
		reason := fmt.Sprintf("model '%s' is overloaded: shedding load to keep latency within %s", model, s.Objective)
		if levels > 1 {
			reason = fmt.Sprintf("model '%s' is overloaded: shedding priority %d load to keep latency within %s", model, k, s.Objective)
		}
		l.refusals = append(l.refusals, &Refusal{Kind: Overloaded, Reason: reason, RetryAfter: s.RetryAfter})
	}
	l.release = l.done
	return l
}

// share is the part of the limit level k may fill: 1 for the highest level, down to
// 1/2 for the lowest.
func (l *Limiter) share(k int) float64 {
	if l.levels == 1 {
		return 1
	}
	return 1 - 0.5*float64(k-1)/float64(l.levels-1)
}

// Acquire admits a request of priority (0: the model's default; out of range: the
// lowest) or refuses it at once. An admitted request calls release exactly once with
// its latency and error.
func (l *Limiter) Acquire(priority int) (release func(latency time.Duration, err error), _ *Refusal) {
	k := priority
	if k == 0 {
		k = l.deflt
	} else if k < 0 || k > l.levels {
		k = l.levels
	}
	l.mu.Lock()
	if float64(l.inflight) >= math.Max(l.limit*l.share(k), 1) {
		l.mu.Unlock()
		return nil, l.refusals[k-1]
	}
	l.inflight++
	l.mu.Unlock()
	return l.release, nil
}

// done is every admitted request's release. A failed request's latency still says how
// loaded the model is when it is over the target; a fast failure says nothing. A slow
// request admitted before the last cut says nothing new either (it queued behind the
// old limit's requests; its admission time is now - latency, no per-request state), so
// it cuts again only once a target has passed since the last cut: a limit far too
// high comes down by halves every target, not every round of its whole backlog.
func (l *Limiter) done(latency time.Duration, err error) {
	slow := latency > l.target
	var now time.Time
	if slow {
		now = time.Now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	used := float64(l.inflight)*2 >= l.limit
	l.inflight--
	switch {
	case slow && now.Sub(l.lastCut) > min(latency, l.target):
		cut := min(l.shed.Backoff, max(0.5, float64(l.target)/float64(latency))) // far over: cut deeper, at most by half
		l.limit = math.Max(l.limit*cut, float64(l.shed.MinLimit))
		l.lastCut = now
	case !slow && err == nil && used:
		l.limit = math.Min(l.limit+1/l.limit, float64(l.shed.MaxLimit))
	}
}

// Limit is the current limit, and the requests in flight.
func (l *Limiter) Limit() (limit, inflight int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit), l.inflight
}
