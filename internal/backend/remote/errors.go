package remote

import (
	"errors"
	"fmt"
	"time"
)

// outcome classifies how one try ended, for retries and the circuit breaker.
type outcome int

const (
	success   outcome = iota // the upstream answered with outputs
	refused                  // the upstream answered, refusing the request (4xx): not retried, not its fault
	failure                  // transport error, timeout, 5xx, UNAVAILABLE: retried, counts against the upstream
	abandoned                // the try was cancelled by us (a hedge won, or the caller left)
)

// Error is a try that failed at or on the way to the upstream.
type Error struct {
	Upstream string // the url parameter
	Model    string // the upstream's model name
	Status   string // "HTTP 503", "gRPC Unavailable", or "" for a transport error
	Msg      string

	kind    outcome
	invalid bool // the upstream found the request itself malformed
	busy    bool // the upstream is down or overloaded: a 503-class answer at our edge
}

func (e *Error) Error() string {
	status := ""
	if e.Status != "" {
		status = " " + e.Status
	}
	return fmt.Sprintf("upstream %s model '%s':%s %s", e.Upstream, e.Model, status, e.Msg)
}

// InvalidInput reports the upstream refusing the request as malformed; core answers 400.
func (e *Error) InvalidInput() bool { return e.invalid }

// Unavailable reports an upstream that is down, timing out or overloaded; core answers 503.
func (e *Error) Unavailable() bool { return e.busy }

// ErrCircuitOpen is matched by errors.Is for every CircuitOpenError.
var ErrCircuitOpen = errors.New("upstream circuit open")

// CircuitOpenError is returned without calling the upstream while its circuit is open.
type CircuitOpenError struct {
	Upstream string
	Failures int           // consecutive failures that opened it
	RetryIn  time.Duration // until the next probe may go
	Last     string        // the last failure
}

func (e *CircuitOpenError) Error() string {
	return fmt.Sprintf("upstream circuit open: %s failed %d times in a row (last: %s); next probe in %v",
		e.Upstream, e.Failures, e.Last, e.RetryIn.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrCircuitOpen) hold.
func (e *CircuitOpenError) Is(target error) bool { return target == ErrCircuitOpen }

// Unavailable makes core answer 503.
func (e *CircuitOpenError) Unavailable() bool { return true }

// classify reads an error from a try as an outcome.
func classify(err error) outcome {
	if err == nil {
		return success
	}
	var e *Error
	if errors.As(err, &e) {
		return e.kind
	}
	return failure
}
