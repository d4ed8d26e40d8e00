package admission

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
)

// Observer counts refusals (internal/monitor/metrics implements it).
type Observer interface {
	Refused(tenant string, kind Kind)
}

// Options configure a Controller.
type Options struct {
	// Limits are the tenants' and keys' rate limits and quotas; nil: none.
	Limits *Config
	// Quotas keep the quota counters; nil: in memory.
	Quotas QuotaStore
	// Shed is every model's load shedding, before its config's shed parameters.
	Shed     Shed
	Observer Observer // may be nil
	Logger   *slog.Logger
}

// Controller is core's Admission: the callers' limits, then the model's load shedding.
type Controller struct {
	limits   Config
	quotas   QuotaStore
	shed     Shed
	obs      Observer
	log      *slog.Logger
	callers  sync.Map // "tenant:NAME" or "key:ID" -> *caller
	limiters sync.Map // model + "\x00" + version -> *modelLimiter
}

var _ core.Admission = (*Controller)(nil)

// modelLimiter is the limiter built from one loaded config; a reload brings a new config.
type modelLimiter struct {
	cfg *inference.ModelConfig
	l   *Limiter // nil: shedding off for the model
}

// New builds a Controller; its options are checked.
func New(opts Options) (*Controller, error) {
	if err := opts.Shed.Validate(); err != nil {
		return nil, err
	}
	c := &Controller{shed: opts.Shed, quotas: opts.Quotas, obs: opts.Observer, log: opts.Logger}
	if opts.Limits != nil {
		if err := opts.Limits.Validate(); err != nil {
			return nil, err
		}
		c.limits = *opts.Limits
	}
	if c.quotas == nil {
		c.quotas = new(MemoryQuotas)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Admit implements core.Admission.
func (c *Controller) Admit(ctx context.Context, t core.Ticket) (func(time.Duration, error), error) {
	var cs [2]*caller
	if !c.limits.Empty() {
		cs = c.callersOf(t.Tenant, t.Key)
		if r := c.enter(ctx, cs, t.Items); r != nil {
			c.refused(t.Tenant, r)
			return nil, r
		}
	}
	var release func(time.Duration, error)
	if l := c.limiter(t); l != nil {
		var r *Refusal
		if release, r = l.Acquire(t.Priority); r != nil {
			leave(cs[:])
			c.refused(t.Tenant, r)
			return nil, r
		}
	}
	switch {
	case cs[0] == nil && cs[1] == nil && release != nil:
		return release, nil
	case cs[0] == nil && cs[1] == nil:
		return func(time.Duration, error) {}, nil
	}
	return func(d time.Duration, err error) {
		leave(cs[:])
		if release != nil {
			release(d, err)
		}
	}, nil
}

func (c *Controller) refused(tenant string, r *Refusal) {
	if c.obs != nil {
		c.obs.Refused(tenant, r.Kind)
	}
}

// limiter is the load-shedding limiter of t's model version, built on first use and
// again when the version was reloaded with another config. A bad shed parameter is
// logged and the server's defaults apply: a typo must not take a model off the air.
func (c *Controller) limiter(t core.Ticket) *Limiter {
	key := t.Model + "\x00" + t.Version
	if m, ok := c.limiters.Load(key); ok && m.(*modelLimiter).cfg == t.Config {
		return m.(*modelLimiter).l
	}
	s, err := ShedFor(t.Config, c.shed)
	if err != nil {
		c.log.Warn("model's shed parameters ignored", "model", t.Model, "version", t.Version, "err", err)
	}
	m := &modelLimiter{cfg: t.Config}
	if !s.Off {
		levels, deflt := priorityLevels(t.Config)
		m.l = NewLimiter(t.Model, s, levels, deflt)
	}
	c.limiters.Store(key, m)
	return m.l
}

// LimitStat is one model version's concurrency limit now.
type LimitStat struct {
	Model, Version  string
	Limit, InFlight int
}

// Limits reports each model version's concurrency limit (for the metrics).
func (c *Controller) Limits() []LimitStat {
	var out []LimitStat
	c.limiters.Range(func(k, v any) bool {
		if l := v.(*modelLimiter).l; l != nil {
			key := k.(string)
			i := len(key) - 1
			for i > 0 && key[i] != 0 {
				i--
			}
			limit, n := l.Limit()
			out = append(out, LimitStat{Model: key[:i], Version: key[i+1:], Limit: limit, InFlight: n})
		}
		return true
	})
	return out
}
