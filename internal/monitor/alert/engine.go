package alert

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Source gives the current value of a model's metric; false when there is none (no
// data yet), which counts as the condition being false. It must be quick and safe
// for concurrent use: the engine asks every rule's value at every evaluation.
type Source interface {
	Value(model, metric string) (float64, bool)
}

// WindowSource is a Source that measures over a span it is given; rules with a
// window use it.
type WindowSource interface {
	Source
	ValueOver(model, metric string, window time.Duration) (float64, bool)
}

// Config is the engine's rules and receivers; the hooks are the integrator's.
type Config struct {
	Interval Duration  `json:"interval,omitempty"` // between evaluations (default 1s)
	Rules    []Rule    `json:"rules,omitempty"`
	Webhooks []Webhook `json:"webhooks,omitempty"`
	Retrain  *Retrain  `json:"retrain,omitempty"`
	// ExternalURL is the server's address, the payloads' externalURL and the base of
	// each alert's generatorURL.
	ExternalURL string `json:"external_url,omitempty"`

	// OnFire is called once per firing of a rule with abort_rollout (the integrator
	// aborts the model's rollout); it runs off the evaluation loop, within a minute.
	OnFire func(ctx context.Context, rule Rule, model string) error `json:"-"`
	// DataURI names the logged data of model between start and end, for retraining.
	DataURI func(model string, start, end time.Time) string `json:"-"`
	// Version is the model version a retrain concerns (say, the stable one); optional.
	Version func(model string) string `json:"-"`
}

// The alert states.
const (
	StateInactive = "inactive"
	StatePending  = "pending"
	StateFiring   = "firing"
	StateResolved = "resolved"
)

// State is one rule's alert as the API shows it.
type State struct {
	Name        string            `json:"name"`
	Model       string            `json:"model"`
	Metric      string            `json:"metric"`
	Op          string            `json:"op"`
	Threshold   float64           `json:"threshold"`
	State       string            `json:"state"`
	Value       *float64          `json:"value,omitempty"` // the last value evaluated; nil when there was none
	ActiveAt    time.Time         `json:"active_at,omitzero"`
	FiredAt     time.Time         `json:"fired_at,omitzero"`
	ResolvedAt  time.Time         `json:"resolved_at,omitzero"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// alertState is a rule's live state; the engine's mutex guards it.
type alertState struct {
	rule     Rule
	labels   map[string]string
	state    string
	value    float64
	hasValue bool
	activeAt time.Time
	firedAt  time.Time
	resolved time.Time
	lastSent []time.Time // per webhook: the last firing notification
}

// Engine evaluates the rules and sends what they produce. Notifications and hooks go
// through bounded queues to goroutines of their own, so an evaluation never waits on
// a receiver; what does not fit is dropped and counted.
type Engine struct {
	cfg    Config
	src    Source
	log    *slog.Logger
	client *http.Client

	mu     sync.Mutex // guards alerts' states
	alerts []*alertState

	outbox []chan notification // one per webhook
	// aborts and retrains are the hook queues: apart, so a retrain that runs for
	// minutes never delays a rollout's abort.
	aborts, retrains chan func(context.Context)
	dropped          atomic.Uint64
}

// Queue sizes: a burst of alerts larger than these is dropped (and counted).
const (
	outboxSize = 256
	hookQueue  = 64
)

// New validates cfg and builds the engine; it starts nothing (Run does).
func New(cfg Config, src Source, log *slog.Logger) (*Engine, error) {
	if src == nil {
		return nil, fmt.Errorf("alert: no Source of values")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("alert: %w", err)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = Duration(time.Second)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, src: src, log: log,
		aborts: make(chan func(context.Context), hookQueue), retrains: make(chan func(context.Context), hookQueue),
		// Each attempt has its own deadline (Webhook.Timeout); this bounds the rest.
		client: &http.Client{Timeout: 10 * time.Minute}}
	for _, r := range cfg.Rules {
		e.alerts = append(e.alerts, &alertState{rule: r, labels: labelsOf(r), state: StateInactive,
			lastSent: make([]time.Time, len(cfg.Webhooks))})
	}
	for range cfg.Webhooks {
		e.outbox = append(e.outbox, make(chan notification, outboxSize))
	}
	return e, nil
}

func labelsOf(r Rule) map[string]string {
	ls := map[string]string{"alertname": r.Name, "model": r.Model}
	for k, v := range r.Labels {
		ls[k] = v
	}
	return ls
}

// Run evaluates the rules every interval until ctx ends, then stops its senders
// (undelivered notifications are dropped) and returns once they have.
func (e *Engine) Run(ctx context.Context) error {
	wait := e.start(ctx)
	defer wait()
	t := time.NewTicker(time.Duration(e.cfg.Interval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			e.evaluate(now)
		}
	}
}

// start runs one sender per webhook and a runner per hook queue until ctx ends; the
// func it returns waits for them.
func (e *Engine) start(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	for i, ch := range e.outbox {
		wg.Go(func() { e.send(ctx, e.cfg.Webhooks[i], ch) })
	}
	for _, q := range []chan func(context.Context){e.aborts, e.retrains} {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case job := <-q:
					job(ctx)
				}
			}
		})
	}
	return wg.Wait
}

// evaluate moves every alert one step at time now.
func (e *Engine) evaluate(now time.Time) {
	for _, a := range e.alerts {
		v, ok := e.value(a.rule)
		e.mu.Lock()
		e.step(a, now, v, ok)
		e.mu.Unlock()
	}
}

func (e *Engine) value(r Rule) (float64, bool) {
	if ws, ok := e.src.(WindowSource); ok && r.Window > 0 {
		return ws.ValueOver(r.Model, r.Metric, time.Duration(r.Window))
	}
	return e.src.Value(r.Model, r.Metric)
}

// step is the state machine (Prometheus's): a true condition makes an alert pending,
// and firing once it has held for the rule's for; a false one drops a pending alert
// and resolves a firing one. e.mu is held.
func (e *Engine) step(a *alertState, now time.Time, v float64, ok bool) {
	ok = ok && !math.IsNaN(v)
	a.value, a.hasValue = v, ok
	cond := ok && ops[a.rule.Op](v, a.rule.Threshold)
	switch {
	case cond && (a.state == StateInactive || a.state == StateResolved):
		a.state, a.activeAt, a.firedAt, a.resolved = StatePending, now, time.Time{}, time.Time{}
		if a.rule.For == 0 {
			e.fire(a, now)
		}
	case cond && a.state == StatePending:
		if now.Sub(a.activeAt) >= time.Duration(a.rule.For) {
			e.fire(a, now)
		}
	case cond && a.state == StateFiring:
		e.repeat(a, now)
	case !cond && a.state == StatePending:
		a.state, a.activeAt = StateInactive, time.Time{}
	case !cond && a.state == StateFiring:
		a.state, a.resolved = StateResolved, now
		e.notifyAll(a, now)
		e.log.Info("alert resolved", "alert", a.rule.Name, "model", a.rule.Model)
	}
}

// fire makes a firing: one notification per webhook, and the rule's hooks once.
func (e *Engine) fire(a *alertState, now time.Time) {
	a.state, a.firedAt = StateFiring, now
	e.log.Warn("alert firing", "alert", a.rule.Name, "model", a.rule.Model, "value", a.value, "threshold", a.rule.Threshold)
	e.notifyAll(a, now)
	if a.rule.AbortRollout {
		rule, model := a.rule, a.rule.Model
		e.hook(e.aborts, func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := e.cfg.OnFire(ctx, rule, model); err != nil {
				e.log.Warn("alert's rollout abort failed", "alert", rule.Name, "model", model, "err", err)
			}
		})
	}
	if a.rule.Retrain {
		req := e.retrainRequest(a)
		e.hook(e.retrains, func(ctx context.Context) { e.retrain(ctx, req) })
	}
}

// repeat re-sends a firing alert to the webhooks whose repeat interval has passed.
func (e *Engine) repeat(a *alertState, now time.Time) {
	for i, w := range e.cfg.Webhooks {
		if w.RepeatInterval > 0 && now.Sub(a.lastSent[i]) >= time.Duration(w.RepeatInterval) {
			e.enqueue(i, a, now)
		}
	}
}

func (e *Engine) notifyAll(a *alertState, now time.Time) {
	for i := range e.cfg.Webhooks {
		e.enqueue(i, a, now)
	}
}

func (e *Engine) enqueue(i int, a *alertState, now time.Time) {
	a.lastSent[i] = now
	n := e.notification(e.cfg.Webhooks[i], a)
	select {
	case e.outbox[i] <- n:
	default:
		e.dropped.Add(1)
		e.log.Warn("alert notification dropped: the webhook's queue is full", "webhook", e.cfg.Webhooks[i].URL, "alert", a.rule.Name)
	}
}

func (e *Engine) hook(q chan<- func(context.Context), job func(context.Context)) {
	select {
	case q <- job:
	default:
		e.dropped.Add(1)
		e.log.Warn("alert hook dropped: the hook queue is full")
	}
}

// Alerts returns every rule's alert, in the rules' order.
func (e *Engine) Alerts() []State {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]State, 0, len(e.alerts))
	for _, a := range e.alerts {
		s := State{Name: a.rule.Name, Model: a.rule.Model, Metric: a.rule.Metric, Op: a.rule.Op, Threshold: a.rule.Threshold,
			State: a.state, ActiveAt: a.activeAt, FiredAt: a.firedAt, ResolvedAt: a.resolved,
			Labels: a.labels, Annotations: a.rule.Annotations}
		if a.hasValue && !math.IsInf(a.value, 0) {
			v := a.value
			s.Value = &v
		}
		out = append(out, s)
	}
	return out
}

// Dropped counts notifications and hook calls dropped because their queue was full.
func (e *Engine) Dropped() uint64 { return e.dropped.Load() }

// states lists the states the ferry_alerts gauge reports.
var states = []string{StateInactive, StatePending, StateFiring, StateResolved}
