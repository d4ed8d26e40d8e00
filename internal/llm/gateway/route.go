package gateway

import (
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/llm"
)

// route is one alias's targets, built once by New and never changed after.
type route struct {
	alias        string
	strategy     string
	fallbacks    []string
	retries      int
	allowedFails int
	failWindow   time.Duration
	cooldown     time.Duration
	targets      []*target // primaries
	shadows      []*target
}

// target is one (upstream, model) a route may call. Its cooldown state is shared by
// every route naming the same canonical id.
type target struct {
	up        *upstream
	modelID   string
	canonical string // "upstream/model": the key of the spend ledger and of cooldowns
	weight    float64
	cool      *cooldown
}

type cooldown struct {
	mu    sync.Mutex
	fails []time.Time // within the route's fail window
	until time.Time
}

func (g *Gateway) buildRoutes(cfg *Config) {
	cools := map[string]*cooldown{}
	mk := func(uName, model, alias string, weight float64) *target {
		u := g.ups[uName]
		id := model
		if id == "" {
			if id = u.cfg.Models[alias]; id == "" {
				id = alias
			}
		}
		if weight == 0 {
			weight = u.cfg.Weight
		}
		if weight == 0 {
			weight = 1
		}
		t := &target{up: u, modelID: id, canonical: uName + "/" + id, weight: weight}
		if t.cool = cools[t.canonical]; t.cool == nil {
			t.cool = &cooldown{}
			cools[t.canonical] = t.cool
		}
		return t
	}
	for _, rc := range cfg.Routes {
		r := newRoute(rc)
		for _, tc := range rc.Targets {
			t := mk(tc.Upstream, tc.Model, rc.Model, tc.Weight)
			if tc.Shadow {
				r.shadows = append(r.shadows, t)
			} else {
				r.targets = append(r.targets, t)
			}
		}
		g.routes[rc.Model] = r
	}
	// A model no route names but exactly one upstream serves routes there.
	for _, uc := range cfg.Upstreams {
		for alias := range uc.Models {
			if g.routes[alias] == nil && servedBy(cfg.Upstreams, alias) == 1 {
				r := newRoute(Route{Model: alias})
				r.targets = []*target{mk(uc.Name, "", alias, 0)}
				g.routes[alias] = r
			}
		}
	}
}

func newRoute(rc Route) *route {
	r := &route{alias: rc.Model, strategy: rc.Strategy, fallbacks: rc.Fallbacks, retries: rc.Retries,
		allowedFails: rc.AllowedFails, failWindow: time.Duration(rc.FailWindow), cooldown: time.Duration(rc.Cooldown)}
	if r.allowedFails == 0 {
		r.allowedFails = 3
	}
	if r.failWindow == 0 {
		r.failWindow = time.Minute
	}
	if r.cooldown == 0 {
		r.cooldown = 30 * time.Second
	}
	return r
}

// chain is the alias's route followed by the fallbacks the key may use.
func (g *Gateway) chain(alias string, k *keyEntry) ([]*route, error) {
	r := g.routes[alias]
	if r == nil || !k.allowed(alias) {
		return nil, reject("model_not_found", llm.ModelNotFound(alias))
	}
	out := []*route{r}
	for _, f := range r.fallbacks {
		if fr := g.routes[f]; fr != nil && k.allowed(f) {
			out = append(out, fr)
		}
	}
	return out, nil
}

// order is the sequence in which a route's targets are tried: weighted random
// without replacement, or least busy first.
func (r *route) order() []*target {
	ts := append([]*target(nil), r.targets...)
	if r.strategy == StrategyLeastBusy {
		scores := make(map[*target]float64, len(ts))
		rand.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] }) // ties go to a random one
		for _, t := range ts {
			scores[t] = t.up.busy()
		}
		sort.SliceStable(ts, func(i, j int) bool { return scores[ts[i]] < scores[ts[j]] })
		return ts
	}
	out := make([]*target, 0, len(ts))
	for len(ts) > 0 {
		total := 0.0
		for _, t := range ts {
			total += t.weight
		}
		x, i := rand.Float64()*total, 0
		for ; i < len(ts)-1; i++ {
			if x -= ts[i].weight; x < 0 {
				break
			}
		}
		out = append(out, ts[i])
		ts = append(ts[:i], ts[i+1:]...)
	}
	return out
}

// coolingUntil is when the target may be tried again; zero or past means now.
func (t *target) coolingUntil(now time.Time) time.Time {
	t.cool.mu.Lock()
	defer t.cool.mu.Unlock()
	if now.Before(t.cool.until) {
		return t.cool.until
	}
	return time.Time{}
}

// fail records a failure and reports whether it started a cooldown.
func (t *target) fail(r *route, now time.Time) bool {
	c := t.cool
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.fails[:0]
	for _, f := range c.fails {
		if now.Sub(f) < r.failWindow {
			kept = append(kept, f)
		}
	}
	c.fails = append(kept, now)
	if len(c.fails) < r.allowedFails {
		return false
	}
	c.fails = c.fails[:0]
	c.until = now.Add(r.cooldown)
	return true
}

// coolFor cools the target until now+d unless it already cools longer, and reports
// whether it changed anything.
func (t *target) coolFor(now time.Time, d time.Duration) bool {
	t.cool.mu.Lock()
	defer t.cool.mu.Unlock()
	if until := now.Add(d); until.After(t.cool.until) {
		t.cool.until = until
		return true
	}
	return false
}
