package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// fakeServer is a Client whose requests take a fixed time, so that under synctest's
// fake clock a run's counts are exact. Every request is one execution of its batch.
type fakeServer struct {
	model    Model
	delay    time.Duration
	delayAt  func(now time.Time) time.Duration // when set, replaces delay
	fail     func(i int) error                 // nil: every request succeeds
	inflight atomic.Int64
	peak     atomic.Int64
	items    atomic.Uint64
	execs    atomic.Uint64
	mu       sync.Mutex
	shapes   []tensor.Shape // of the prepared sample's inputs; guarded by mu
	seqs     seqChecker
}

// seqChecker holds a stateful model's sequences to the rules a sequence batcher
// enforces: a sequence opens with a start, its requests come one at a time, and nothing
// follows its end.
type seqChecker struct {
	mu        sync.Mutex
	open      map[uint64]bool // id -> a request of it in flight
	ended     map[uint64]bool
	steps     int
	completed int // sequences ended by a request that carried on from a start
	errs      []string
}

func (c *seqChecker) begin(seq Step) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open == nil {
		c.open, c.ended = map[uint64]bool{}, map[uint64]bool{}
	}
	c.steps++
	busy, known := c.open[seq.ID]
	switch {
	case seq.ID == 0:
		c.errs = append(c.errs, "a request without a sequence id")
	case c.ended[seq.ID]:
		c.errs = append(c.errs, fmt.Sprintf("sequence %d: a request after its end", seq.ID))
	case seq.Start && known:
		c.errs = append(c.errs, fmt.Sprintf("sequence %d started twice", seq.ID))
	case !seq.Start && !known:
		c.errs = append(c.errs, fmt.Sprintf("sequence %d: a request before its start", seq.ID))
	case busy:
		c.errs = append(c.errs, fmt.Sprintf("sequence %d: two requests in flight", seq.ID))
	}
	c.open[seq.ID] = true
}

func (c *seqChecker) done(seq Step) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open[seq.ID] = false
	if seq.End {
		delete(c.open, seq.ID)
		c.ended[seq.ID] = true
		c.completed++
	}
}

func (f *fakeServer) Model(context.Context) (Model, error) { return f.model, nil }
func (f *fakeServer) Close() error                         { return nil }

func (f *fakeServer) Stats(context.Context) (Stats, error) {
	return Stats{InferenceCount: f.items.Load(), ExecutionCount: f.execs.Load()}, nil
}

func (f *fakeServer) Prepare(_ Model, samples [][]*tensor.Tensor) (Sender, error) {
	f.mu.Lock()
	for _, t := range samples[0] {
		f.shapes = append(f.shapes, t.Shape)
	}
	f.mu.Unlock()
	batch := uint64(samples[0][0].Shape[0])
	return func(ctx context.Context, i int, seq Step) error {
		if f.model.Sequence {
			f.seqs.begin(seq)
			defer f.seqs.done(seq)
		} else if seq != (Step{}) {
			f.seqs.errs = append(f.seqs.errs, "sequence parameters for a model without sequences")
		}
		n := f.inflight.Add(1)
		defer f.inflight.Add(-1)
		for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
		}
		d := f.delay
		if f.delayAt != nil {
			d = f.delayAt(time.Now())
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
		if f.fail != nil {
			if err := f.fail(i); err != nil {
				return err
			}
		}
		f.items.Add(batch)
		f.execs.Add(1)
		return nil
	}, nil
}

var fakeModel = Model{Name: "fake", MaxBatchSize: 8, Inputs: []Input{{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{-1, 4}}}}

func TestRunClosedLoopKeepsEachLevelInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServer{model: fakeModel, delay: time.Millisecond}
		rep, err := Run(t.Context(), f, Options{Protocol: "fake", Batch: 2, Concurrency: []int{1, 4},
			Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Mode != ModeConcurrency || len(rep.Levels) != 2 {
			t.Fatalf("report mode %s with %d levels, want concurrency with 2", rep.Mode, len(rep.Levels))
		}
		for _, l := range rep.Levels {
			// Each worker completes one request per millisecond of the 200 ms window.
			want := 200 * float64(l.Concurrency) / 0.2
			if math.Abs(l.PerSecond-want)/want > 0.01 {
				t.Errorf("concurrency %d: %.1f req/s, want %.0f ±1%%", l.Concurrency, l.PerSecond, want)
			}
			if l.ItemsPerSec != 2*l.PerSecond || l.BatchSize != 2 {
				t.Errorf("concurrency %d: %.1f items/s at batch %d, want 2 × %.1f", l.Concurrency, l.ItemsPerSec, l.BatchSize, l.PerSecond)
			}
			if l.P50 != 1000 || l.P99 != 1000 || l.Mean != 1000 {
				t.Errorf("concurrency %d: latency p50 %v p99 %v mean %v µs, want 1000", l.Concurrency, l.P50, l.P99, l.Mean)
			}
			if l.ServerAvgBatch != 2 || l.Errors != 0 {
				t.Errorf("concurrency %d: avg batch %v, %d errors; want 2, 0", l.Concurrency, l.ServerAvgBatch, l.Errors)
			}
		}
		if p := f.peak.Load(); p != 4 {
			t.Errorf("peak in flight %d, want 4 (the largest level)", p)
		}
		if want := (tensor.Shape{2, 4}); !f.shapes[0].Equal(want) {
			t.Errorf("request shape %v, want %v", f.shapes[0], want)
		}
	})
}

func TestRunCountsErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServer{model: fakeModel, delay: time.Millisecond, fail: func(i int) error {
			if i%4 == 3 {
				return errors.New("HTTP 503: queue full")
			}
			return nil
		}}
		rep, err := Run(t.Context(), f, Options{Batch: 1, Concurrency: []int{2}, Duration: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		l := rep.Levels[0]
		if total := l.Requests + l.Errors; math.Abs(float64(l.Errors)-float64(total)/4) > 2 {
			t.Errorf("%d errors of %d requests, want a quarter", l.Errors, total)
		}
		if l.FirstError != "HTTP 503: queue full" {
			t.Errorf("first error %q", l.FirstError)
		}
		var b strings.Builder
		if err := rep.WriteTable(&b); err != nil || !strings.Contains(b.String(), "errors, first: HTTP 503: queue full") {
			t.Errorf("the table does not name the first error:\n%s", b.String())
		}
	})
}

func TestRunFailsWhenTheFirstRequestFails(t *testing.T) {
	f := &fakeServer{model: fakeModel, fail: func(int) error { return errors.New(`HTTP 400: input "x": bad`) }}
	_, err := Run(t.Context(), f, Options{Batch: 1, Concurrency: []int{1}, Duration: time.Second})
	if want := `first request to model "fake": HTTP 400: input "x": bad`; err == nil || err.Error() != want {
		t.Errorf("Run err = %v, want %q", err, want)
	}
}

func TestRunOpenLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServer{model: fakeModel, delay: 2 * time.Millisecond}
		rep, err := Run(t.Context(), f, Options{Batch: 1, RequestRates: []float64{1000}, MaxInFlight: 100, Seed: 3,
			Duration: time.Second, Warmup: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		l := rep.Levels[0]
		if rep.Mode != ModeRequestRate || l.RequestRate != 1000 {
			t.Fatalf("mode %s rate %v, want request_rate 1000", rep.Mode, l.RequestRate)
		}
		// Poisson over 1 s at 1000/s: 1000 ± 3 standard deviations (√1000 ≈ 32).
		if l.PerSecond < 900 || l.PerSecond > 1100 {
			t.Errorf("%.0f req/s, want about 1000", l.PerSecond)
		}
		if l.P50 != 2000 || l.Late != 0 || l.Dropped != 0 || l.Errors != 0 {
			t.Errorf("p50 %v µs, %d late, %d dropped, %d errors; want 2000, 0, 0, 0", l.P50, l.Late, l.Dropped, l.Errors)
		}
		// Independent arrivals overlap, unlike a closed loop of one.
		if p := f.peak.Load(); p < 2 {
			t.Errorf("peak in flight %d: arrivals did not overlap", p)
		}
	})
}

// TestRunOpenLoopConstantPace: a constant 1000/s with 500 µs answers never has two
// requests in flight, and sends exactly its rate; Poisson arrivals at the same rate
// overlap (TestRunOpenLoop).
func TestRunOpenLoopConstantPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServer{model: fakeModel, delay: 500 * time.Microsecond}
		rep, err := Run(t.Context(), f, Options{Batch: 1, RequestRates: []float64{1000}, Distribution: Constant, MaxInFlight: 100,
			Duration: time.Second, Warmup: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		l := rep.Levels[0]
		if rep.Distribution != Constant || l.PerSecond < 999 || l.PerSecond > 1001 {
			t.Errorf("%s arrivals, %.1f req/s; want constant, 1000", rep.Distribution, l.PerSecond)
		}
		if p := f.peak.Load(); p != 1 {
			t.Errorf("peak in flight %d, want 1", p)
		}
	})
}

// TestRunRateSweep: a level per rate, in order, until one is over the latency limit.
func TestRunRateSweep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServer{model: fakeModel, delay: 2 * time.Millisecond}
		rep, err := Run(t.Context(), f, Options{Batch: 1, RequestRates: []float64{100, 200}, Distribution: Constant,
			MaxInFlight: 100, Duration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Levels) != 2 || rep.Levels[0].RequestRate != 100 || rep.Levels[1].RequestRate != 200 ||
			rep.Levels[1].PerSecond < 199 || rep.Levels[1].PerSecond > 201 {
			t.Fatalf("levels %+v, want 100/s then 200/s", rep.Levels)
		}
		rep, err = Run(t.Context(), f, Options{Batch: 1, RequestRates: []float64{100, 200}, MaxInFlight: 100,
			Duration: time.Second, LatencyLimit: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Levels) != 1 || rep.LatencyLimit != 1000 {
			t.Errorf("%d levels, limit %v µs; want the sweep to end after the first, over 1 ms", len(rep.Levels), rep.LatencyLimit)
		}
	})
}

// TestRunOpenLoopIntervals: gaps of 1 ms and 3 ms in turn are 500 requests a second,
// and the level reports that rate.
func TestRunOpenLoopIntervals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServer{model: fakeModel, delay: 500 * time.Microsecond}
		rep, err := Run(t.Context(), f, Options{Batch: 1, Intervals: []time.Duration{time.Millisecond, 3 * time.Millisecond},
			MaxInFlight: 100, Duration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		l := rep.Levels[0]
		if rep.Mode != ModeRequestRate || rep.Distribution != Intervals || l.RequestRate != 500 || l.PerSecond < 499 || l.PerSecond > 501 {
			t.Errorf("%s %s at %v/s, %.1f req/s; want request_rate, intervals, 500", rep.Mode, rep.Distribution, l.RequestRate, l.PerSecond)
		}
		if p := f.peak.Load(); p != 1 {
			t.Errorf("peak in flight %d, want 1 (every gap is longer than an answer)", p)
		}
	})
}

func TestRunOpenLoopDropsBeyondMaxInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServer{model: fakeModel, delay: 10 * time.Millisecond}
		rep, err := Run(t.Context(), f, Options{Batch: 1, RequestRates: []float64{1000}, MaxInFlight: 2, Seed: 3,
			Duration: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		l := rep.Levels[0]
		if p := f.peak.Load(); p > 2+1 { // +1: the first request, sent before the level
			t.Errorf("peak in flight %d, want at most 2", p)
		}
		// Two slots of 10 ms serve 200/s of the 1000/s offered.
		if l.Dropped < 300 || l.PerSecond > 210 {
			t.Errorf("%d dropped, %.0f req/s; want most of 500 arrivals dropped, about 200 req/s", l.Dropped, l.PerSecond)
		}
	})
}

func TestRunStopsWhenCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		f := &fakeServer{model: fakeModel, delay: time.Millisecond}
		time.AfterFunc(150*time.Millisecond, cancel)
		_, err := Run(ctx, f, Options{Batch: 1, Concurrency: []int{1, 2, 4}, Duration: time.Hour})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run err = %v, want context.Canceled", err)
		}
	})
}

func TestRunRejectsOptions(t *testing.T) {
	f := &fakeServer{model: fakeModel}
	_, err := Run(t.Context(), f, Options{Batch: 1, Duration: 0, Warmup: -time.Second, RequestRates: []float64{10}})
	want := "duration 0s: must be > 0\nwarmup -1s: must be >= 0\nmax in-flight 0: must be at least 1"
	if err == nil || err.Error() != want {
		t.Errorf("Run err = %v, want %q", err, want)
	}
}

func TestRunSequences(t *testing.T) {
	seqModel := fakeModel
	seqModel.Sequence = true
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"closed loop", Options{Concurrency: []int{1, 4}}},
		{"open loop", Options{RequestRates: []float64{3000}, MaxInFlight: 64, Sequences: Sequences{Open: 3}}},
		{"closed loop, ids wrap", Options{Concurrency: []int{2}, Sequences: Sequences{FirstID: 5, LastID: 9}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeServer{model: seqModel, delay: time.Millisecond}
				o := tc.o
				o.Batch, o.Duration, o.Warmup = 1, 200*time.Millisecond, 20*time.Millisecond
				o.Sequences.Length = 5
				if o.Sequences.LastID != 0 {
					// Wrapped ids come back: sequences may be ended and reopened.
					o.Sequences.Length = 1
				}
				rep, err := Run(t.Context(), f, o)
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range rep.Levels {
					if l.Requests == 0 || l.Errors != 0 {
						t.Errorf("level %+v: want requests and no errors", l)
					}
				}
				if o.Sequences.LastID != 0 {
					return
				}
				for _, e := range f.seqs.errs {
					t.Error(e)
				}
				if len(f.seqs.open) != 0 {
					t.Errorf("%d sequences left open after the run, want every one ended", len(f.seqs.open))
				}
				if f.seqs.steps < 5*f.seqs.completed/2 {
					t.Errorf("%d requests for %d sequences of 5: most sequences should run whole", f.seqs.steps, f.seqs.completed)
				}
			})
		})
	}
}

func TestRunUntilStable(t *testing.T) {
	const window = 100 * time.Millisecond
	for _, tc := range []struct {
		name         string
		o            Options
		slowEveryOdd bool // requests take 1 ms in even windows, 2 ms in odd ones
		windows      int
		unstable     bool
	}{
		{"steady server, closed loop", Options{Concurrency: []int{2}}, false, 3, false},
		{"steady server, open loop", Options{RequestRates: []float64{4000}, MaxInFlight: 100, Stability: 15}, false, 3, false},
		{"server that swings", Options{Concurrency: []int{2}, MaxWindows: 5}, true, 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				f := &fakeServer{model: fakeModel, delay: time.Millisecond}
				if tc.slowEveryOdd {
					f.delayAt = func(now time.Time) time.Duration {
						return time.Millisecond * time.Duration(1+int(now.Sub(start)/window)%2)
					}
				}
				o := tc.o
				// Requests complete on whole milliseconds; windows start half-way between.
				o.Batch, o.Duration, o.Warmup = 1, window, 500*time.Microsecond
				o.Stability = cmp.Or(o.Stability, 10)
				rep, err := Run(t.Context(), f, o)
				if err != nil {
					t.Fatal(err)
				}
				l := rep.Levels[0]
				if l.Windows != tc.windows || l.Unstable != tc.unstable {
					t.Errorf("%d windows, unstable %v; want %d, %v", l.Windows, l.Unstable, tc.windows, tc.unstable)
				}
				if l.Seconds != (3 * window).Seconds() {
					t.Errorf("reported %vs, want the last three windows", l.Seconds)
				}
				if len(tc.o.RequestRates) == 0 && !tc.slowEveryOdd {
					if want := 2 * 3 * window / time.Millisecond; l.Requests != int(want) {
						t.Errorf("%d requests in the reported windows, want %d", l.Requests, want)
					}
				}
				if rep.Stability != o.Stability {
					t.Errorf("report stability %v, want %v", rep.Stability, o.Stability)
				}
			})
		})
	}
}

func TestRunStopsAtTheLatencyLimit(t *testing.T) {
	for _, tc := range []struct {
		limit      time.Duration
		percentile float64
		levels     int
	}{
		{500 * time.Microsecond, 95, 1},  // a request takes 1 ms per request in flight
		{10 * time.Millisecond, 0, 3},    // never over
		{1500 * time.Microsecond, 99, 2}, // over once two requests share the server
	} {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeServer{model: fakeModel, delay: time.Millisecond}
			f.delayAt = func(time.Time) time.Duration { return time.Duration(f.inflight.Load()) * time.Millisecond }
			rep, err := Run(t.Context(), f, Options{Batch: 1, Concurrency: []int{1, 2, 4}, Duration: 50 * time.Millisecond,
				Warmup: 500 * time.Microsecond, LatencyLimit: tc.limit, Percentile: tc.percentile})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Levels) != tc.levels {
				t.Errorf("limit %v: %d levels, want %d", tc.limit, len(rep.Levels), tc.levels)
			}
			if stopped := rep.LatencyLimit != 0; stopped != (tc.levels < 3) {
				t.Errorf("limit %v: report's latency limit %v, want it set only when the sweep stopped early", tc.limit, rep.LatencyLimit)
			}
		})
	}
}

// TestRunBinarySearch: latency grows 1 ms per request in flight; with a 4.5 ms limit over
// concurrency 1..8 the search measures 4, 6 and 5 (not 1 to 5), reports them in sweep
// order, and names 4 the last level within the limit.
func TestRunBinarySearch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServer{model: fakeModel, delay: time.Millisecond}
		f.delayAt = func(time.Time) time.Duration { return time.Duration(f.inflight.Load()) * time.Millisecond }
		rep, err := Run(t.Context(), f, Options{Batch: 1, Concurrency: []int{1, 2, 3, 4, 5, 6, 7, 8}, Duration: 50 * time.Millisecond,
			Warmup: 500 * time.Microsecond, LatencyLimit: 4500 * time.Microsecond, Percentile: 50, BinarySearch: true})
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, l := range rep.Levels {
			got = append(got, l.Concurrency)
		}
		if !slices.Equal(got, []int{4, 5, 6}) || !rep.BinarySearch || rep.LatencyLimit != 4500 {
			t.Errorf("levels %v, binary search %v, limit %v; want [4 5 6], true, 4500", got, rep.BinarySearch, rep.LatencyLimit)
		}
		var out strings.Builder
		if err := rep.WriteTable(&out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "binary search: concurrency 4 is the last level within the latency limit") {
			t.Errorf("table:\n%s", out.String())
		}
	})
	if _, err := Run(t.Context(), &fakeServer{model: fakeModel}, Options{Batch: 1, Concurrency: []int{1, 2}, Duration: time.Second, BinarySearch: true}); err == nil ||
		!strings.Contains(err.Error(), "a binary search needs a latency limit") {
		t.Errorf("a binary search without a limit: err = %v", err)
	}
}
