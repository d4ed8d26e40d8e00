package remote

import (
	"sync"
	"time"
)

// breakerState is the circuit's state.
type breakerState int

const (
	closed   breakerState = iota // tries go through
	open                         // tries fail fast until the cooldown ends
	halfOpen                     // one probe try is out; the others fail fast
)

func (s breakerState) String() string {
	return [...]string{"closed", "open", "half-open"}[s]
}

// breaker is a consecutive-failure circuit breaker shared by every try to one upstream.
// Closed, it counts failures in a row; at the threshold it opens and refuses tries.
// After the cooldown the next try is let through as a probe (half-open): its success
// closes the circuit, its failure opens it for another cooldown. Only failures that are
// the upstream's fault count (see outcome); a refused request resets the count, since
// the upstream answered.
type breaker struct {
	threshold int // 0: never opens
	cooldown  time.Duration
	now       func() time.Time
	changed   func(from, to breakerState, last string) // may be nil; called with mu held

	mu       sync.Mutex
	state    breakerState
	failures int
	openedAt time.Time
	last     string // the last failure's message
}

func newBreaker(threshold int, cooldown time.Duration, now func() time.Time) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown, now: now}
}

// allow asks to send a try. It returns a ticket to report the try's outcome with, or an
// error when the circuit refuses it.
func (b *breaker) allow() (ticket, error) {
	if b.threshold == 0 {
		return ticket{}, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case closed:
		return ticket{}, nil
	case open:
		if wait := b.openedAt.Add(b.cooldown).Sub(b.now()); wait > 0 {
			return ticket{}, b.refusal(wait)
		}
		b.set(halfOpen)
		return ticket{probe: true}, nil
	}
	return ticket{}, b.refusal(0) // half-open: the probe is out
}

func (b *breaker) refusal(wait time.Duration) error {
	return &CircuitOpenError{Failures: b.failures, RetryIn: wait, Last: b.last}
}

// ticket is one allowed try.
type ticket struct{ probe bool }

// done reports a try's outcome.
func (b *breaker) done(t ticket, o outcome, msg string) {
	if b.threshold == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch o {
	case success, refused:
		b.failures = 0
		if b.state != closed { // the upstream answered: the probe, or a try sent before the circuit opened
			b.set(closed)
		}
	case failure:
		b.failures++
		b.last = msg
		switch {
		case b.state == halfOpen && t.probe, b.state == closed && b.failures >= b.threshold:
			b.openedAt = b.now()
			b.set(open)
		}
	case abandoned:
		if t.probe && b.state == halfOpen {
			b.state = open // let the next try probe at once: openedAt is already past the cooldown
		}
	}
}

func (b *breaker) set(s breakerState) {
	from := b.state
	b.state = s
	if b.changed != nil && from != s {
		b.changed(from, s, b.last)
	}
}

// snapshot returns the state, for tests and logs.
func (b *breaker) snapshot() breakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}
