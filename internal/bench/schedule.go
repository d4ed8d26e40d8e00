package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
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
	// Intervals is a schedule of given gaps (perf_analyzer's --request-intervals).
	Intervals = "intervals"
)

// Schedule returns the send times, as offsets from the start, of the arrival process
// named by distribution at rate requests per second over span. "" is Poisson:
// inter-arrival gaps are exponential with mean 1/rate, the arrivals of independent
// users; the same rng seed gives the same schedule.
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

// IntervalSchedule returns send times spaced by gaps, taken in turn and repeated until
// span ends: a recorded or synthetic traffic pattern replayed.
func IntervalSchedule(gaps []time.Duration, span time.Duration) ([]time.Duration, error) {
	if len(gaps) == 0 {
		return nil, errors.New("no request interval")
	}
	var sum time.Duration
	for i, g := range gaps {
		if g <= 0 {
			return nil, fmt.Errorf("request interval %d is %v: must be > 0", i+1, g)
		}
		sum += g
	}
	if want := float64(span) / float64(sum) * float64(len(gaps)); want > maxArrivals {
		return nil, fmt.Errorf("request intervals over %v are %.0f requests; at most %d fit one run", span, want, maxArrivals)
	}
	var out []time.Duration
	for t, i := gaps[0], 0; t < span; t += gaps[i%len(gaps)] {
		out = append(out, t)
		i++
	}
	return out, nil
}

// ReadIntervals reads request intervals as perf_analyzer's --request-intervals file holds
// them: one whole number of microseconds per line; blank lines are skipped.
func ReadIntervals(r io.Reader) ([]time.Duration, error) {
	var gaps []time.Duration
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		us, err := strconv.ParseInt(text, 10, 64)
		if err != nil || us < 1 || us > int64(time.Hour/time.Microsecond) {
			return nil, fmt.Errorf("line %d: %q is not a whole number of microseconds from 1 to 3600000000", line, text)
		}
		gaps = append(gaps, time.Duration(us)*time.Microsecond)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(gaps) == 0 {
		return nil, errors.New("no interval in the file")
	}
	return gaps, nil
}
