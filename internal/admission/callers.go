package admission

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// caller is one tenant's or key's state: its buckets and requests in flight.
type caller struct {
	subject       string // "tenant:NAME" or "key:ID"
	lim           Limits
	reqs, items   *rate.Limiter // nil: no such limit
	inflight      atomic.Int64
	concurrencyRx *Refusal
}

func newCaller(subject string, l Limits) *caller {
	c := &caller{subject: subject, lim: l}
	if l.RequestsPerSecond > 0 {
		c.reqs = rate.NewLimiter(rate.Limit(l.RequestsPerSecond), burst(l.RequestBurst, l.RequestsPerSecond))
	}
	if l.ItemsPerSecond > 0 {
		c.items = rate.NewLimiter(rate.Limit(l.ItemsPerSecond), burst(l.ItemBurst, l.ItemsPerSecond))
	}
	c.concurrencyRx = &Refusal{Kind: RateLimited, RetryAfter: time.Second,
		Reason: fmt.Sprintf("%s has %d requests in flight, its concurrency limit", subject, l.Concurrency)}
	return c
}

// burst is b, or one second's worth of rate (at least 1).
func burst(b int, perSecond float64) int {
	if b > 0 {
		return b
	}
	return int(max(1, math.Ceil(min(perSecond, math.MaxInt32))))
}

// callersOf are the tenant's and (when the key has limits of its own) the key's state.
func (c *Controller) callersOf(tenant, key string) [2]*caller {
	var cs [2]*caller
	cs[0] = c.caller("tenant:"+tenant, c.limits.For(tenant))
	if l, ok := c.limits.Keys[key]; ok && key != "" {
		cs[1] = c.caller("key:"+key, l)
	}
	return cs
}

func (c *Controller) caller(subject string, l Limits) *caller {
	if v, ok := c.callers.Load(subject); ok {
		return v.(*caller)
	}
	v, _ := c.callers.LoadOrStore(subject, newCaller(subject, l))
	return v.(*caller)
}

// enter takes what a request of items needs from each caller: tokens, a concurrency
// slot, one request of each quota. On a refusal it gives back what it took.
func (c *Controller) enter(ctx context.Context, cs [2]*caller, items int) *Refusal {
	now := time.Now()
	var taken []*rate.Reservation
	undo := func(upto int) {
		for _, r := range taken {
			r.CancelAt(now)
		}
		leave(cs[:upto])
	}
	for i, cl := range cs {
		if cl == nil {
			continue
		}
		for _, b := range []struct {
			l    *rate.Limiter
			n    int
			what string
		}{{cl.reqs, 1, "requests"}, {cl.items, items, "items"}} {
			if b.l == nil {
				continue
			}
			r := b.l.ReserveN(now, b.n)
			if !r.OK() {
				undo(i)
				return &Refusal{Kind: RateLimited, RetryAfter: time.Second,
					Reason: fmt.Sprintf("%s: a request of %d %s exceeds its burst of %d", cl.subject, b.n, b.what, b.l.Burst())}
			}
			taken = append(taken, r)
			if d := r.DelayFrom(now); d > 0 {
				undo(i)
				return &Refusal{Kind: RateLimited, RetryAfter: d,
					Reason: fmt.Sprintf("%s is over its rate limit of %g %s/s", cl.subject, float64(b.l.Limit()), b.what)}
			}
		}
		if n := int64(cl.lim.Concurrency); n > 0 && cl.inflight.Add(1) > n {
			cl.inflight.Add(-1)
			undo(i)
			return cl.concurrencyRx
		} else if n == 0 {
			cl.inflight.Add(1)
		}
	}
	if r := c.takeQuotas(ctx, cs, now); r != nil {
		undo(len(cs))
		return r
	}
	return nil
}

// leave gives back the callers' concurrency slots.
func leave(cs []*caller) {
	for _, cl := range cs {
		if cl != nil {
			cl.inflight.Add(-1)
		}
	}
}

// takeQuotas counts the request against each caller's daily and monthly quotas. The
// store failing lets the request through (logged): a registry outage must not become a
// serving outage; the count is off by what passed meanwhile.
func (c *Controller) takeQuotas(ctx context.Context, cs [2]*caller, now time.Time) *Refusal {
	day, month, dayEnd, monthEnd := periods(now)
	type taken struct{ subject, period string }
	var done []taken
	giveBack := func() {
		for _, t := range done {
			_, _ = c.quotas.Add(ctx, t.subject, t.period, -1)
		}
	}
	for _, cl := range cs {
		if cl == nil {
			continue
		}
		for _, q := range []struct {
			quota  int64
			period string
			end    time.Time
			name   string
		}{{cl.lim.DailyQuota, day, dayEnd, "daily"}, {cl.lim.MonthlyQuota, month, monthEnd, "monthly"}} {
			if q.quota <= 0 {
				continue
			}
			total, err := c.quotas.Add(ctx, cl.subject, q.period, 1)
			if err != nil {
				c.log.Warn("quota store failed; request let through", "subject", cl.subject, "period", q.period, "err", err)
				continue
			}
			done = append(done, taken{cl.subject, q.period})
			if total > q.quota {
				giveBack()
				return &Refusal{Kind: QuotaExceeded, RetryAfter: q.end.Sub(now),
					Reason: fmt.Sprintf("%s has used its %s quota of %d requests (%s)", cl.subject, q.name, q.quota, q.period)}
			}
		}
	}
	return nil
}
