package gateway

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/llm"
)

// errTimeout cancels an attempt whose upstream sent no Delta within its timeout.
var errTimeout = errors.New("upstream timeout before the first token")

// emitError is the caller's emit failing (the client left): never retried.
type emitError struct{ err error }

func (e *emitError) Error() string { return e.err.Error() }
func (e *emitError) Unwrap() error { return e.err }

// outcome is what one attempt produced, filled in by the upstream call.
type outcome struct {
	usage    llm.Usage
	hasUsage bool        // the upstream reported usage; otherwise it is counted
	started  atomic.Bool // a Delta was passed to the caller: no retry after this
	first    time.Time   // when the first Delta was passed on
	texts    map[int]*strings.Builder
}

// wrap passes Deltas to emit, keeping their text for counting.
func (o *outcome) wrap(emit func(llm.Delta) error) func(llm.Delta) error {
	return func(d llm.Delta) error {
		if !o.started.Swap(true) {
			o.first = time.Now()
		}
		b := o.texts[d.Index]
		if b == nil {
			b = &strings.Builder{}
			o.texts[d.Index] = b
		}
		b.WriteString(d.Text)
		// Tool calls count as their JSON: a little over their tokens, which a charge
		// without the upstream's usage had better be than under.
		b.Write(d.ToolCalls)
		if err := emit(d); err != nil {
			return &emitError{err}
		}
		return nil
	}
}

// plan says how to call targets for one exchange: fits sizes a target's reservation
// (ok false: its context window is too small), call makes the upstream call.
type plan struct {
	key  *keyEntry
	fits func(t *target) (prompt, maxOut int, ok bool)
	// exact is the prompt's token count on t, when fits may have given a bound
	// instead (nil: fits' count is exact); a charge without the upstream's usage
	// needs it.
	exact     func(t *target) int
	call      func(ctx context.Context, t *target, maxOut int, o *outcome) error
	n         int       // choices per request: the completion reservation is maxOut × n
	maxTokens int       // what the request asked for, for the context-length error
	start     time.Time // when the gateway received the request
}

// result is the exchange's end: the usage charged and the winning attempt's outcome.
type result struct {
	usage llm.Usage
	o     *outcome
}

// try walks the chain: each route's targets in its order, then each fallback's,
// skipping targets whose window is too small, that are cooling down or full, until
// one answers or fails after its first Delta.
func (g *Gateway) try(ctx context.Context, chain []*route, p plan) (result, error) {
	var lastErr error
	attempts, fits, full := 0, false, false
	var soonest time.Time
	for _, r := range chain {
		for _, t := range r.order() {
			prompt, maxOut, ok := p.fits(t)
			if !ok {
				continue
			}
			fits = true
			if until := t.coolingUntil(g.now()); !until.IsZero() {
				if soonest.IsZero() || until.Before(soonest) {
					soonest = until
				}
				continue
			}
			if chain[0].retries > 0 && attempts > chain[0].retries {
				return result{}, lastErr
			}
			if !t.up.acquire() {
				full = true
				continue
			}
			if attempts > 0 {
				g.m.fallbacks.Inc()
			}
			attempts++
			res, err, retry := g.attempt(ctx, r, t, p, prompt, maxOut)
			t.up.release()
			if err == nil || !retry {
				return res, err
			}
			lastErr = err
		}
	}
	switch {
	case lastErr != nil:
		return result{}, lastErr
	case !fits:
		return result{}, g.tooLong(chain, p)
	case !soonest.IsZero():
		s := max(1, int(math.Ceil(soonest.Sub(g.now()).Seconds())))
		return result{}, reject("cooldown", llm.Unavailable(s, "every upstream for %s is cooling down after failures", chain[0].alias))
	case full:
		return result{}, reject("upstreams_full", llm.Unavailable(1, "every upstream for %s is at its max_concurrency", chain[0].alias))
	}
	return result{}, reject("unavailable", llm.Unavailable(1, "no upstream for %s", chain[0].alias))
}

func (g *Gateway) tooLong(chain []*route, p plan) error {
	var window, prompt int
	for _, r := range chain {
		for _, t := range r.targets {
			if t.up.cfg.ContextWindow > window {
				window = t.up.cfg.ContextWindow
				prompt, _, _ = p.fits(t)
			}
		}
	}
	return reject("context_length", llm.ContextLengthExceeded(chain[0].alias, window, prompt, p.maxTokens))
}

// attempt reserves the worst case, calls one target and settles. retry reports
// whether the failure happened before the first Delta and is one worth trying
// elsewhere (429, 5xx, timeout, connection error).
func (g *Gateway) attempt(ctx context.Context, r *route, t *target, p plan, prompt, maxOut int) (res result, err error, retry bool) {
	resv, err := g.ledger.reserve(p.key.accounts(), t.canonical, t.up.cfg.Prices, prompt, maxOut*p.n)
	if err != nil {
		return result{}, err, false
	}
	o := &outcome{texts: map[int]*strings.Builder{}}
	actx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(t.up.timeout, func() {
		if !o.started.Load() {
			cancel(errTimeout)
		}
	})
	t.up.inflight.Add(1)
	callErr := p.call(actx, t, maxOut, o)
	t.up.inflight.Add(-1)
	timer.Stop()
	timedOut := errors.Is(context.Cause(actx), errTimeout)
	cancel(nil)

	usage := o.usage
	if !o.hasUsage && (callErr == nil || o.started.Load()) {
		if p.exact != nil {
			prompt = p.exact(t)
		}
		usage = llm.Usage{PromptTokens: prompt, CompletionTokens: countText(t.up, o.texts)}
	}
	spent := g.ledger.settle(resv, usage)
	if k := p.key; k != nil && spent > 0 {
		g.m.spend.WithLabelValues(k.name, k.accts[0].team).Add(spent)
	}
	res = result{usage: usage, o: o}
	code, err, retry := g.classify(ctx, t, callErr, timedOut, o.started.Load())
	g.m.upstream.WithLabelValues(t.up.cfg.Name, code).Inc()
	if retry || (err != nil && o.started.Load() && code != "canceled") {
		g.failed(r, t, err)
	}
	return res, err, retry
}

// failed counts a target's failure toward its cooldown. A 429 with Retry-After
// cools the target for that long at once: the upstream said when to come back.
func (g *Gateway) failed(r *route, t *target, err error) {
	now := g.now()
	cooling := t.fail(r, now)
	d := r.cooldown
	if le := llm.AsError(err); le != nil && le.Status == http.StatusTooManyRequests && le.RetryAfter > 0 {
		d = time.Duration(le.RetryAfter) * time.Second
		cooling = t.coolFor(now, d) || cooling
	}
	if cooling {
		g.m.cooldowns.Inc()
		g.log.Warn("upstream target cooling down", "target", t.canonical, "for", d, "err", err)
	}
}

// classify names an attempt's outcome for metrics and turns its error into what the
// caller sees.
func (g *Gateway) classify(ctx context.Context, t *target, err error, timedOut, started bool) (code string, out error, retry bool) {
	var ee *emitError
	var le *llm.Error
	switch {
	case err == nil:
		return "200", nil, false
	case errors.As(err, &ee):
		return "canceled", ee.err, false
	case ctx.Err() != nil:
		return "canceled", ctx.Err(), false
	case timedOut:
		return "timeout", &llm.Error{Status: http.StatusGatewayTimeout, Type: "api_error", Code: "upstream_timeout",
			Message: fmt.Sprintf("upstream %s sent nothing within %s", t.up.cfg.Name, t.up.timeout)}, !started
	case errors.As(err, &le) && !started:
		return strconv.Itoa(le.Status), le, le.Status == http.StatusTooManyRequests || le.Status >= 500
	}
	code = "conn_error"
	if le != nil {
		code = strconv.Itoa(le.Status)
	}
	msg := "upstream %s failed: %v"
	if started {
		msg = "upstream %s failed mid-stream: %v"
	}
	return code, &llm.Error{Status: http.StatusBadGateway, Type: "api_error", Code: "upstream_error",
		Message: fmt.Sprintf(msg, t.up.cfg.Name, err)}, !started
}

func (u *upstream) acquire() bool {
	if u.sem == nil {
		return true
	}
	select {
	case u.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (u *upstream) release() {
	if u.sem != nil {
		<-u.sem
	}
}

// countText counts streamed text with the upstream's own encoding: the charge when
// the upstream omits usage or the stream was cut.
func countText(u *upstream, texts map[int]*strings.Builder) int {
	n := 0
	for _, b := range texts {
		n += len(u.enc.Encode(b.String()))
	}
	return n
}

// promptTokens estimates a request's prompt in the upstream's encoding. Chat adds
// OpenAI's documented framing: 3 tokens per message, 1 for a name, 3 to prime the
// reply.
func promptTokens(u *upstream, req *llm.Request) int {
	if req.Kind != llm.Chat {
		if len(req.PromptTokens) > 0 {
			return len(req.PromptTokens)
		}
		return len(u.enc.Encode(req.Prompt))
	}
	n := 3 + len(u.enc.Encode(string(req.Tools))) // the upstream renders tools into the prompt
	for _, m := range req.Messages {
		n += 3 + len(u.enc.Encode(m.Role)) + len(u.enc.Encode(m.Content))
		if m.Name != "" {
			n += 1 + len(u.enc.Encode(m.Name))
		}
		if len(m.ToolCalls) > 0 || m.ToolCallID != "" {
			n += len(u.enc.Encode(string(m.ToolCalls))) + len(u.enc.Encode(m.ToolCallID))
		}
	}
	return n
}
