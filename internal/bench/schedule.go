package bench

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// maxArrivals bounds one open-loop schedule (rate × span) so a huge --request-rate fails
// with a message instead of exhausting memory.
const maxArrivals = 50_000_000

// PoissonSchedule returns the send times, as offsets from the start, of a Poisson
// process at rate requests per second over span: inter-arrival gaps are exponential
// with mean 1/rate, the arrivals of independent users. The same rng seed gives the
// same schedule.
func PoissonSchedule(rate float64, span time.Duration, rng *rand.Rand) ([]time.Duration, error) {
	if !(rate > 0) {
		return nil, fmt.Errorf("request rate %v: must be > 0", rate)
	}
	if want := rate * span.Seconds(); want > maxArrivals {
		return nil, fmt.Errorf("request rate %v over %v is %.0f requests; at most %d fit one run", rate, span, want, maxArrivals)
	}
	out := make([]time.Duration, 0, int(rate*span.Seconds()*1.1)+16)
	t := 0.0 // seconds; float keeps sub-nanosecond gaps from rounding to zero and adding up wrong
	for {
		t += rng.ExpFloat64() / rate
		off := time.Duration(t * float64(time.Second))
		if off >= span {
			return out, nil
		}
		out = append(out, off)
	}
}
