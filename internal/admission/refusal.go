package admission

import (
	"fmt"
	"time"

	"github.com/ferryml/ferry/internal/core"
)

// Kind is why a request was refused.
type Kind int

// The kinds of refusal. RateLimited and QuotaExceeded are the caller's doing (429,
// RESOURCE_EXHAUSTED); Overloaded is the server's (503, UNAVAILABLE).
const (
	RateLimited Kind = iota + 1
	QuotaExceeded
	Overloaded
)

func (k Kind) String() string {
	switch k {
	case RateLimited:
		return "rate_limited"
	case QuotaExceeded:
		return "quota_exceeded"
	case Overloaded:
		return "overloaded"
	}
	return "unknown"
}

// Refusal is the error a refused request gets: the reason, what kind of refusal, and
// when to try again. The limiter hands out shared, prebuilt refusals (no allocation on
// the hot path): never modify one.
type Refusal struct {
	Kind       Kind
	Reason     string
	RetryAfter time.Duration
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("%s; retry after %s", r.Reason, r.RetryAfter.Round(time.Millisecond))
}

// RetryIn is RetryAfter, for core.RetryAfter.
func (r *Refusal) RetryIn() time.Duration { return r.RetryAfter }

// Unwrap gives core's vocabulary: a caller over its limits is rate limited, an
// overloaded model is unavailable.
func (r *Refusal) Unwrap() error {
	if r.Kind == Overloaded {
		return core.ErrUnavailable
	}
	return core.ErrRateLimited
}
