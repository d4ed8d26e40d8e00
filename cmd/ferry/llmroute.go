package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/internal/router"
)

// llmroute.go routes the native LLM models' requests as core routes V2 requests
// (issue 20): a request naming no version goes where its endpoint's policy in the
// shared router.Table decides (match, sticky, weight), and the policy's shadow version
// gets a copy once the client has its answer. The registry's endpoint manager and the
// rollout controller then move LLM traffic exactly as they move V2 traffic.

const (
	// llmShadowSlots bounds the shadow copies running at once. A copy is a whole
	// generation on the shadow version's engine, far dearer than a V2 copy (core
	// allows 64), and it competes with live traffic for the cores.
	llmShadowSlots = 8
	// llmShadowTimeout bounds one shadow copy: a long generation is cut there.
	llmShadowTimeout = 2 * time.Minute
)

// llmRouter decides LLM requests' versions and runs their shadow copies.
type llmRouter struct {
	routes  *router.Table
	slots   chan struct{} // a copy holds one while it runs
	dropped prometheus.Counter
	shadows sync.WaitGroup // copies in flight; close waits for them
	stop    chan struct{}  // closed by close: copies in flight end now
	log     *slog.Logger
}

func newLLMRouter(routes *router.Table, log *slog.Logger) *llmRouter {
	return &llmRouter{routes: routes, slots: make(chan struct{}, llmShadowSlots), stop: make(chan struct{}), log: log,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_llm_shadow_dropped_total",
			Help: "Shadow copies of LLM requests dropped because every LLM shadow slot was busy."})}
}

// llmAttrs is an LLM request as the router reads it: its HTTP headers, and OpenAI's
// user field as the parameter "user".
type llmAttrs struct {
	header http.Header
	user   string
}

func (a llmAttrs) Header(name string) string {
	if a.header == nil {
		return ""
	}
	return a.header.Get(name)
}

func (a llmAttrs) Param(name string) string {
	if name == "user" {
		return a.user
	}
	return ""
}

// decision is where one request goes: its version ("" for the model's default), the
// route its record carries, and the version a copy goes to ("" for none).
type decision struct {
	policy         *router.Policy // the policy decided under; nil when none was asked
	version, route string
	shadow         string
}

// decide routes a request to model naming version ("" for none). A request that names
// a version, or whose model has no policy, is not routed: route routeLLM.
func (r *llmRouter) decide(model, version string, a llmAttrs) decision {
	if r == nil || version != "" {
		return decision{version: version, route: routeLLM}
	}
	p := r.routes.Get(model)
	if p == nil {
		return decision{route: routeLLM}
	}
	d := p.Decide(a)
	return decision{policy: p, version: d.Version, route: string(d.Route), shadow: d.Shadow}
}

// moved reports whether a request decided under d should be decided again: the
// version it went to is no longer served and the policy changed since (an endpoint
// publishes a move, then lets the old version go), as core does for V2.
func (r *llmRouter) moved(d decision, model string, err error) bool {
	e := llm.AsError(err)
	return r != nil && d.policy != nil && e != nil && e.Status == http.StatusNotFound && r.routes.Get(model) != d.policy
}

// mirror runs copy in the background if a shadow slot is free, and counts a drop
// otherwise; never on the caller's path, and cut short by close.
func (r *llmRouter) mirror(copy func(ctx context.Context)) {
	select {
	case r.slots <- struct{}{}:
	default:
		r.dropped.Inc()
		return
	}
	r.shadows.Go(func() {
		defer func() { <-r.slots }()
		ctx, cancel := context.WithTimeout(context.Background(), llmShadowTimeout)
		defer cancel()
		go func() {
			select {
			case <-r.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		copy(ctx)
	})
}

// close ends the shadow copies in flight and waits for them.
func (r *llmRouter) close() {
	if r == nil {
		return
	}
	close(r.stop)
	r.shadows.Wait()
}

// shadowOf is what a shadow copy's record compares with: the primary's version and
// its choices' texts (nil when it failed).
type shadowOf struct {
	primary string
	want    []string
}

// result is the copy's comparison, as core's for V2: Diff 0 when every choice's text
// equals the primary's, 1 otherwise (a text is a BYTES output); zero when either
// failed.
func (s *shadowOf) result(got []string, err error) *core.ShadowResult {
	res := &core.ShadowResult{Primary: s.primary, PrimaryFailed: s.want == nil}
	if err != nil || s.want == nil {
		return res
	}
	if len(got) != len(s.want) {
		res.Diff = 1
		return res
	}
	for i := range got {
		if got[i] != s.want[i] {
			res.Diff = 1
		}
	}
	return res
}
