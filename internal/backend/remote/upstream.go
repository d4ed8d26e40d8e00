package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/platform/periodic"

	"github.com/ferryml/ferry/internal/tensor"
)

// retryBackoff is the base of the jittered exponential pause between retries.
const retryBackoff = 25 * time.Millisecond

// upstream is what every instance of one remote model version shares: the connection,
// the circuit breaker, the retry budget, the latency window that sets the hedge delay,
// and the readiness the health check keeps.
type upstream struct {
	o       Options
	c       *client
	log     *slog.Logger
	breaker *breaker
	budget  *budget
	lat     window
	now     func() time.Time

	model, version         string       // the local model version, for metrics
	tries, retries, hedges atomic.Int64 // read by Backend.Collect

	health   atomic.Pointer[readiness]
	stop     context.CancelFunc // ends the health check; nil without one
	finished chan struct{}      // closed when the health check has returned
	refs     int                // instances using it; guarded by Backend.mu
}

type readiness struct{ err error }

func newUpstream(o Options, c *client, log *slog.Logger, now func() time.Time) *upstream {
	u := &upstream{o: o, c: c, log: log, budget: newBudget(o.RetryBudget), now: now}
	u.breaker = newBreaker(o.BreakerFailures, o.BreakerCooldown, now)
	u.breaker.changed = func(from, to breakerState, last string) {
		if to == open {
			u.log.Warn("upstream circuit opened", "from", from.String(), "failures", o.BreakerFailures, "last_err", last)
		} else {
			u.log.Info("upstream circuit "+to.String(), "from", from.String())
		}
	}
	u.health.Store(&readiness{})
	return u
}

// describe names the upstream in messages.
func (u *upstream) describe() string { return fmt.Sprintf("%s model '%s'", u.o.URL, u.o.Model) }

// call runs one request: hedged tries, then retries of retryable failures while the retry
// count, the retry budget and the breaker allow.
func (u *upstream) call(ctx context.Context, in []*tensor.Tensor, want []string) ([]*tensor.Tensor, error) {
	send, err := u.c.prepare(in, want)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: encoding the request: %w", u.describe(), err)
	}
	u.budget.deposit()
	for attempt := 0; ; attempt++ {
		outs, err := u.hedged(ctx, send)
		switch {
		case err == nil:
			return outs, nil
		case ctx.Err() != nil:
			return nil, fmt.Errorf("upstream %s: %w", u.describe(), ctx.Err())
		case errors.Is(err, ErrCircuitOpen), classify(err) != failure:
			return nil, err
		case attempt >= u.o.Retries:
			if attempt > 0 {
				return nil, fmt.Errorf("%w (gave up after %d tries)", err, attempt+1)
			}
			return nil, err
		case !u.budget.withdraw():
			return nil, fmt.Errorf("%w (not retried: retry budget of %v exhausted)", err, u.o.RetryBudget)
		}
		u.retries.Add(1)
		if err := sleep(ctx, rand.N(retryBackoff<<min(attempt, 5))); err != nil {
			return nil, fmt.Errorf("upstream %s: %w", u.describe(), err)
		}
	}
}

type tryResult struct {
	outs []*tensor.Tensor
	err  error
}

// hedged sends a try and, if it has not answered by the hedge delay, a second one; the
// first success wins and the other try is cancelled. A failure waits for the other try,
// if one is out.
func (u *upstream) hedged(ctx context.Context, send sender) ([]*tensor.Tensor, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // cancels the losing try
	results := make(chan tryResult, 2)
	if err := u.start(ctx, send, results); err != nil {
		return nil, err
	}
	out := 1
	var hedge <-chan time.Time
	if d, ok := u.hedgeDelay(); ok {
		t := time.NewTimer(d)
		defer t.Stop()
		hedge = t.C
	}
	var last error
	for out > 0 {
		select {
		case <-hedge:
			hedge = nil
			if u.budget.withdraw() && u.start(ctx, send, results) == nil {
				u.hedges.Add(1)
				out++
			}
		case r := <-results:
			out--
			if r.err == nil {
				return r.outs, nil
			}
			if last == nil || classify(last) == abandoned {
				last = r.err
			}
			if classify(r.err) == refused {
				return nil, r.err // the upstream answered; another try would be refused too
			}
		}
	}
	return nil, last
}

// start sends one try in its own goroutine, which ends within the per-try timeout (or
// sooner, when ctx is cancelled) after putting its result on results.
func (u *upstream) start(ctx context.Context, send sender, results chan<- tryResult) error {
	tk, err := u.breaker.allow()
	if err != nil {
		var open *CircuitOpenError
		if errors.As(err, &open) {
			open.Upstream = u.describe()
		}
		return err
	}
	u.tries.Add(1)
	go func() {
		tctx, cancel := context.WithTimeout(ctx, u.o.Timeout)
		defer cancel()
		tctx, end := u.startTry(tctx) // trace.go
		began := u.now()
		outs, err := send(tctx)
		if end != nil {
			end(err)
		}
		took := u.now().Sub(began)
		o := classify(err)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		u.breaker.done(tk, o, msg)
		if o == success || o == abandoned {
			// An abandoned try took at least this long: keeping it in the window stops
			// the quantile from forgetting the slow tries that hedges cut short.
			u.lat.observe(took)
		}
		results <- tryResult{outs, err}
	}()
	return nil
}

func (u *upstream) hedgeDelay() (time.Duration, bool) {
	switch h := u.o.Hedge; {
	case h.After > 0:
		return h.After, true
	case h.Quantile > 0:
		return u.lat.quantile(h.Quantile)
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ready returns nil while the upstream's last health check passed, else why it failed.
func (u *upstream) ready() error { return u.health.Load().err }

// watch checks the upstream's readiness now, then every HealthInterval until ctx ends.
func (u *upstream) watch(ctx context.Context) {
	u.check(ctx)
	if u.o.HealthInterval <= 0 {
		return
	}
	ctx, u.stop = context.WithCancel(context.WithoutCancel(ctx))
	u.finished = make(chan struct{})
	go func() {
		defer close(u.finished)
		periodic.Run(ctx, u.o.HealthInterval, u.check)
	}()
}

func (u *upstream) check(ctx context.Context) {
	if u.o.HealthInterval <= 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, min(u.o.Timeout, max(u.o.HealthInterval, time.Second)))
	defer cancel()
	err := u.c.ready(cctx)
	if ctx.Err() != nil {
		return // closing
	}
	if err != nil {
		err = fmt.Errorf("health check: %w", err)
	}
	was := u.health.Swap(&readiness{err})
	switch {
	case err != nil && was.err == nil:
		u.log.Warn("upstream not ready", "err", err)
	case err == nil && was.err != nil:
		u.log.Info("upstream ready again")
	}
}

// close stops the health check and closes the connection.
func (u *upstream) close() {
	if u.stop != nil {
		u.stop()
		<-u.finished
	}
	u.c.close()
}
