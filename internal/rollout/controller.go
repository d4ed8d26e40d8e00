package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Store persists rollouts; the registry implements exactly this. SaveRollout writes an
// endpoint's whole status and the event that produced it in one transaction.
type Store interface {
	SaveRollout(ctx context.Context, endpoint string, status []byte, event []byte) error
	Rollouts(ctx context.Context) (map[string][]byte, error)
}

// Traffic changes an endpoint's routing in one step (the router's table).
type Traffic interface {
	SetTraffic(ctx context.Context, endpoint string, weights map[string]int, mirror *Mirror) error
}

// Models loads and unloads versions. Load returns when the version is ready or failed.
type Models interface {
	Load(ctx context.Context, model, version string) error
	Unload(model, version string)
}

// Observer hears every change (metrics: ferry_rollout_state and the weights are
// Status.State and Status.Weights). It runs on the controller's goroutine: be quick.
type Observer interface {
	RolloutChanged(endpoint string, s Status, c Change)
}

// Change is one entry of a rollout's history.
type Change struct {
	Time     time.Time      `json:"time"`
	Endpoint string         `json:"endpoint"`
	Event    EventKind      `json:"event"`
	From     State          `json:"from"`
	To       State          `json:"to"`
	Message  string         `json:"message,omitempty"`
	Weights  map[string]int `json:"weights"`
}

// Errors the management API maps to statuses.
var (
	ErrConflict = errors.New("endpoint has a rollout in progress") // 409
	ErrNotFound = errors.New("no rollout for endpoint")            // 404
	ErrStopped  = errors.New("rollout controller is not running")  // 503
	// ErrInvalidAction is an action Act does not know (400).
	ErrInvalidAction = errors.New("unknown rollout action")
)

// Config is what New needs. Store, Traffic, Models and Meter are required.
type Config struct {
	Store   Store
	Traffic Traffic
	Models  Models
	Meter   *Meter
	// Observer is optional.
	Observer Observer
	// EventHooks are URLs every Change is POSTed to as JSON; failures are only logged.
	EventHooks []string
	// HTTPClient calls gates and hooks (default: a client with a 10s timeout).
	HTTPClient *http.Client
	Now        func() time.Time
	Logger     *slog.Logger
}

// retryAfter is how soon a routing change, or a transition the store refused, is
// tried again.
const retryAfter = time.Second

// historyLimit bounds the changes kept in memory per endpoint (the store has them all).
const historyLimit = 500

// Controller runs every endpoint's rollout: one goroutine (Run) owns the statuses and
// is the only caller of Next; the methods hand it requests.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	inbox chan request
	done  chan struct{} // closed when Run returns

	mu      sync.Mutex // guards view and history, the copies readers see
	view    map[string]Status
	history map[string][]Change

	bg    sync.WaitGroup // loads, gate calls, delayed unloads, hooks
	hooks chan Change
}

type request struct {
	endpoint string
	ev       Event
	start    bool // a Start: refused when a rollout is in progress
	reply    chan error
}

// live is the loop's own state for one endpoint.
type live struct {
	status      Status
	measuring   bool
	lastMeasure time.Time
	pending     *SetTraffic // a routing change that failed, retried until it lands
	retryAt     time.Time   // a transition the store refused waits till then
	// resuming holds the clocks of a stored rollout until its Restart event is applied:
	// time that passed while the controller was down moves nothing unchecked.
	resuming bool
}

// New checks cfg and builds a Controller; it starts nothing.
func New(cfg Config) (*Controller, error) {
	if cfg.Store == nil || cfg.Traffic == nil || cfg.Models == nil || cfg.Meter == nil {
		return nil, errors.New("rollout: Config needs Store, Traffic, Models and Meter")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Controller{cfg: cfg, log: cfg.Logger, inbox: make(chan request), done: make(chan struct{}),
		view: map[string]Status{}, history: map[string][]Change{}, hooks: make(chan Change, hookQueue)}, nil
}

// Start begins rolling r out; ErrConflict when its endpoint has a rollout in progress.
func (c *Controller) Start(ctx context.Context, r Rollout) error {
	n, err := r.Normalize()
	if err != nil {
		return fmt.Errorf("rollout %s: %w", r.Endpoint, err)
	}
	return c.send(ctx, request{endpoint: n.Endpoint, ev: Event{Kind: NewCandidate, Rollout: &n}, start: true})
}

// Promote sends the candidate to 100% now (then the final bake). Idempotent.
func (c *Controller) Promote(ctx context.Context, endpoint string) error {
	return c.send(ctx, request{endpoint: endpoint, ev: Event{Kind: Promote}})
}

// Pause holds the rollout where it is. Idempotent.
func (c *Controller) Pause(ctx context.Context, endpoint string) error {
	return c.send(ctx, request{endpoint: endpoint, ev: Event{Kind: Pause}})
}

// Resume continues a paused rollout, or passes an indefinite pause step.
func (c *Controller) Resume(ctx context.Context, endpoint string) error {
	return c.send(ctx, request{endpoint: endpoint, ev: Event{Kind: Resume}})
}

// Abort sends everything back to the stable version. Idempotent.
func (c *Controller) Abort(ctx context.Context, endpoint string) error {
	return c.send(ctx, request{endpoint: endpoint, ev: Event{Kind: Abort, Reason: "requested"}})
}

// Alarm reports an alert on endpoint: the rollout aborts if the candidate has traffic.
// Actions are the manual actions Act takes, by name.
var Actions = []string{"promote", "pause", "resume", "abort"}

// Act takes a manual action by name (one of Actions), as the management API and the
// CLI name them; an unknown name is ErrInvalidAction.
func (c *Controller) Act(ctx context.Context, endpoint, action string) error {
	switch action {
	case "promote":
		return c.Promote(ctx, endpoint)
	case "pause":
		return c.Pause(ctx, endpoint)
	case "resume":
		return c.Resume(ctx, endpoint)
	case "abort":
		return c.Abort(ctx, endpoint)
	}
	return fmt.Errorf("%w %q: want %s", ErrInvalidAction, action, strings.Join(Actions, ", "))
}

func (c *Controller) Alarm(ctx context.Context, endpoint, reason string) error {
	return c.send(ctx, request{endpoint: endpoint, ev: Event{Kind: AlarmFired, Reason: reason}})
}

func (c *Controller) send(ctx context.Context, r request) error {
	r.reply = make(chan error, 1)
	select {
	case c.inbox <- r:
	case <-c.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.reply:
		return err
	case <-c.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status is endpoint's rollout and its history (oldest first).
func (c *Controller) Status(endpoint string) (Status, []Change, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.view[endpoint]
	return s, append([]Change(nil), c.history[endpoint]...), ok
}

// List is every endpoint's rollout, by endpoint.
func (c *Controller) List() []Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Status, 0, len(c.view))
	for _, s := range c.view {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Rollout.Endpoint, b.Rollout.Endpoint) })
	return out
}

// Run resumes the stored rollouts and drives them until ctx ends; it returns after
// the work it started (loads, gate calls, hooks) has stopped.
func (c *Controller) Run(ctx context.Context) error {
	defer close(c.done)
	bg, stop := context.WithCancel(ctx)
	defer c.bg.Wait()
	defer stop()
	c.bg.Go(func() { c.sendHooks(bg) })
	results := make(chan request)
	rs, err := c.resume(bg, results)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting: a clean stop, like one after start
		}
		return err
	}
	l := &loop{c: c, ctx: bg, results: results, rs: rs}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(l.nextWake())
		select {
		case <-ctx.Done():
			return nil
		case r := <-c.inbox:
			r.reply <- l.request(r)
		case r := <-results:
			l.result(r)
		case <-timer.C:
			l.wake()
		}
	}
}

// resume reads the stored rollouts and re-derives what they need (level-triggered):
// those whose candidate served traffic are checked loaded before Restart says so.
func (c *Controller) resume(ctx context.Context, results chan request) (map[string]*live, error) {
	stored, err := c.cfg.Store.Rollouts(ctx)
	if err != nil {
		return nil, fmt.Errorf("rollout: reading stored rollouts: %w", err)
	}
	rs := map[string]*live{}
	for ep, b := range stored {
		var s Status
		if err := json.Unmarshal(b, &s); err != nil {
			c.log.Error("stored rollout unreadable; left alone", "endpoint", ep, "err", err)
			continue
		}
		c.publish(ep, s, nil)
		if s.State.Terminal() || s.State == Idle {
			rs[ep] = &live{status: s}
			continue
		}
		rs[ep] = &live{status: s, resuming: true}
		c.cfg.Meter.Watch(ep, s.Rollout.Stable, s.Rollout.Candidate)
		if s.State == Provisioning || s.State == Aborting {
			go c.post(ctx, results, request{endpoint: ep, ev: Event{Kind: Restart}})
			continue
		}
		c.goLoad(ctx, results, s.Rollout, func(err error) Event {
			return Event{Kind: Restart, Ready: err == nil, Reason: errText(err)}
		})
	}
	return rs, nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (c *Controller) post(ctx context.Context, results chan request, r request) {
	select {
	case results <- r:
	case <-ctx.Done():
	}
}

// goLoad loads r's candidate in the background and posts the event outcome makes of it.
func (c *Controller) goLoad(ctx context.Context, results chan request, r Rollout, outcome func(error) Event) {
	c.bg.Go(func() {
		err := c.cfg.Models.Load(ctx, r.Endpoint, r.Candidate)
		ev := outcome(err)
		ev.Rollout = &Rollout{Candidate: r.Candidate} // tags the result; see loop.result
		c.post(ctx, results, request{endpoint: r.Endpoint, ev: ev})
	})
}

// publish updates what Status and List read, and the history.
func (c *Controller) publish(ep string, s Status, changes []Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.view[ep] = s
	h := append(c.history[ep], changes...)
	c.history[ep] = h[max(len(h)-historyLimit, 0):]
}

// record is the event JSON stored beside each status.
type record struct {
	Time    time.Time `json:"time"`
	Event   Event     `json:"event"`
	Changes []Change  `json:"changes,omitempty"`
}

// mayApplyUnsaved says whether a transition may go ahead although it was not
// persisted: only one that gives the candidate no more traffic than before (an abort
// must never wait for a database).
func mayApplyUnsaved(prev, next Status) bool {
	raise := next.Weights[next.Rollout.Candidate] > prev.Weights[prev.Rollout.Candidate] ||
		(next.Mirror != nil && prev.Mirror == nil) || next.Rollout.Candidate != prev.Rollout.Candidate
	return !raise
}
