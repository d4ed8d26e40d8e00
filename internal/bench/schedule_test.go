package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPoissonScheduleMatchesRate(t *testing.T) {
	for _, rate := range []float64{5, 200, 20000} {
		span := time.Duration(200_000 / rate * float64(time.Second)) // about 200,000 arrivals
		got, err := Schedule(Poisson, rate, span, rand.New(rand.NewPCG(42, 7)))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.IsSorted(got) || got[0] < 0 || got[len(got)-1] >= span {
			t.Fatalf("rate %v: arrivals not sorted inside [0, %v)", rate, span)
		}
		gaps := make([]float64, len(got))
		prev := time.Duration(0)
		for i, at := range got {
			gaps[i] = (at - prev).Seconds()
			prev = at
		}
		mean, sd := meanSD(gaps)
		// The mean of n exponential gaps has a standard error of (1/rate)/sqrt(n):
		// about 0.2% here, so 2% is far outside chance, yet catches a wrong scale.
		if want := 1 / rate; math.Abs(mean-want)/want > 0.02 {
			t.Errorf("rate %v: mean inter-arrival %.6gs, want %.6gs ±2%% (%d arrivals)", rate, mean, want, len(got))
		}
		// Exponential gaps have a coefficient of variation of 1 (a fixed pace has 0).
		if cv := sd / mean; math.Abs(cv-1) > 0.03 {
			t.Errorf("rate %v: coefficient of variation %.3f, want 1 ±0.03 (Poisson arrivals)", rate, cv)
		}
		if n, want := float64(len(got)), rate*span.Seconds(); math.Abs(n-want)/want > 0.02 {
			t.Errorf("rate %v over %v: %v arrivals, want %v ±2%%", rate, span, n, want)
		}
	}
}

func meanSD(xs []float64) (mean, sd float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)-1))
}

func TestPoissonScheduleIsSeeded(t *testing.T) {
	a, _ := Schedule(Poisson, 100, 10*time.Second, rand.New(rand.NewPCG(1, 2)))
	b, _ := Schedule(Poisson, 100, 10*time.Second, rand.New(rand.NewPCG(1, 2)))
	c, _ := Schedule(Poisson, 100, 10*time.Second, rand.New(rand.NewPCG(3, 2)))
	if !slices.Equal(a, b) {
		t.Error("the same seed gave two schedules")
	}
	if slices.Equal(a, c) {
		t.Error("two seeds gave the same schedule")
	}
}

func TestPoissonScheduleRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, rate := range []float64{0, -3, math.NaN()} {
		if _, err := Schedule(Poisson, rate, time.Second, rng); err == nil {
			t.Errorf("Schedule(Poisson, %v) accepted a rate that is not positive", rate)
		}
	}
	if _, err := Schedule(Poisson, 1e9, time.Minute, rng); err == nil {
		t.Error("PoissonSchedule accepted 60e9 arrivals")
	}
}

func TestConstantScheduleKeepsAFixedPace(t *testing.T) {
	got, err := Schedule(Constant, 200, time.Second, nil) // no randomness to draw
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 199 && len(got) != 200 {
		t.Fatalf("%d arrivals in 1 s at 200/s, want 200 (199 if rounding puts the last at 1 s)", len(got))
	}
	for i, at := range got {
		if want := time.Duration(i+1) * 5 * time.Millisecond; (at - want).Abs() > time.Microsecond {
			t.Fatalf("arrival %d at %v, want %v", i, at, want)
		}
	}
	if _, err := Schedule("bursty", 200, time.Second, nil); err == nil || !strings.Contains(err.Error(), `"bursty"`) {
		t.Errorf("an unknown distribution: err = %v", err)
	}
}

func TestIntervalScheduleReplaysTheGaps(t *testing.T) {
	ms := time.Millisecond
	got, err := IntervalSchedule([]time.Duration{1 * ms, 3 * ms}, 10*ms)
	if want := []time.Duration{1 * ms, 4 * ms, 5 * ms, 8 * ms, 9 * ms}; err != nil || !slices.Equal(got, want) {
		t.Errorf("IntervalSchedule = %v, %v; want %v", got, err, want)
	}
	for _, gaps := range [][]time.Duration{nil, {ms, 0}, {-ms}} {
		if _, err := IntervalSchedule(gaps, time.Second); err == nil {
			t.Errorf("IntervalSchedule(%v) accepted gaps that are not all positive", gaps)
		}
	}
	if _, err := IntervalSchedule([]time.Duration{time.Nanosecond}, time.Hour); err == nil {
		t.Error("IntervalSchedule accepted 3.6e12 arrivals")
	}
}

func TestReadIntervals(t *testing.T) {
	got, err := ReadIntervals(strings.NewReader("1000\n\n 3000 \n250"))
	if want := []time.Duration{time.Millisecond, 3 * time.Millisecond, 250 * time.Microsecond}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ReadIntervals = %v, %v; want %v", got, err, want)
	}
	for _, tc := range []struct{ file, wantErr string }{
		{"", "no interval in the file"},
		{"\n\n", "no interval in the file"},
		{"100\nabc\n", `line 2: "abc" is not a whole number of microseconds`},
		{"0", `line 1: "0" is not`},
		{"-5", `line 1: "-5" is not`},
		{"1.5", `line 1: "1.5" is not`},
		{"99999999999999", `line 1: "99999999999999" is not`},
	} {
		if _, err := ReadIntervals(strings.NewReader(tc.file)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ReadIntervals(%q) err = %v, want %q", tc.file, err, tc.wantErr)
		}
	}
}
