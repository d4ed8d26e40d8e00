package bench

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// maxArrivals bounds one open-loop schedule (rate × span) so a huge --request-rate fails
// with a message instead of exhausting memory.
const maxArrivals = 50_000_000

// The arrival processes of an open loop, as perf_analyzer's --request-distribution
// names them.
const (
	Poisson  = "poisson"  // exponential gaps: independent users
	Constant = "constant" // one request every 1/rate: a fixed pace
)

// Schedule returns the send times, as offsets from the start, of the arrival process
// named by distribution at rate requests per second over span. "" is Poisson.
func Schedule(distribution string, rate float64, span time.Duration, rng *rand.Rand) ([]time.Duration, error) {
	if !(rate > 0) {
		return nil, fmt.Errorf("request rate %v: must be > 0", rate)
	}
	if want := rate * span.Seconds(); want > maxArrivals {
		return nil, fmt.Errorf("request rate %v over %v is %.0f requests; at most %d fit one run", rate, span, want, maxArrivals)
	}
	var gap func() float64
	switch distribution {
	case Poisson, "":
		gap = func() float64 { return rng.ExpFloat64() / rate }
	case Constant:
		gap = func() float64 { return 1 / rate }
	default:
		return nil, fmt.Errorf("request distribution %q: want %s or %s", distribution, Poisson, Constant)
	}
	out := make([]time.Duration, 0, int(rate*span.Seconds()*1.1)+16)
	t := 0.0 // seconds; float keeps sub-nanosecond gaps from rounding to zero and adding up wrong
	for {
		t += gap()
		off := time.Duration(t * float64(time.Second))
		if off >= span {
			return out, nil
		}
		out = append(out, off)
	}
}

// PoissonSchedule is Schedule of a Poisson process: inter-arrival gaps are exponential
// with mean 1/rate, the arrivals of independent users. The same rng seed gives the
// same schedule.
func PoissonSchedule(rate float64, span time.Duration, rng *rand.Rand) ([]time.Duration, error) {
	return Schedule(Poisson, rate, span, rng)
}
