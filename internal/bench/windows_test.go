package bench

import (
	"math"
	"testing"
	"testing/synctest"
	"time"
)

func TestRunCountWindows(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want float64 // req/s
	}{
		// Two clients answered in 1 ms each: 50 requests take 25 ms.
		{"closed loop", Options{Concurrency: []int{2}}, 2000},
		// One arrival per ms: 50 requests take 50 ms, past several 10 ms planning spans.
		{"open loop", Options{RequestRates: []float64{1000}, Distribution: Constant, MaxInFlight: 10}, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeServer{model: fakeModel, delay: time.Millisecond}
				o := tc.o
				o.Batch, o.Duration, o.Warmup, o.WindowRequests = 1, 10*time.Millisecond, 500*time.Microsecond, 50
				o.Stability = 10
				var windows []Live
				o.Live = func(l Live) { windows = append(windows, l) }
				rep, err := Run(t.Context(), f, o)
				if err != nil {
					t.Fatal(err)
				}
				l := rep.Levels[0]
				if l.Requests != 150 || l.Windows != 3 {
					t.Errorf("%d requests in %d windows, want 3 windows of 50", l.Requests, l.Windows)
				}
				if math.Abs(l.PerSecond-tc.want)/tc.want > 0.05 {
					t.Errorf("%.1f req/s over %vs, want %v ±5%%", l.PerSecond, l.Seconds, tc.want)
				}
				if len(windows) != 3 {
					t.Fatalf("Live was told of %d windows, want 3: %+v", len(windows), windows)
				}
				for k, w := range windows {
					if !w.Done || w.Window != k+1 || w.Requests != 50 || w.Count != 50 {
						t.Errorf("window %d: %+v, want done with 50 requests", k+1, w)
					}
				}
			})
		})
	}
}

func TestRunTellsLiveProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeServer{model: fakeModel, delay: time.Millisecond}
		var ticks []Live
		var done int
		_, err := Run(t.Context(), f, Options{Batch: 1, Concurrency: []int{1}, Duration: 100 * time.Millisecond,
			LiveEvery: 10 * time.Millisecond, Live: func(l Live) {
				if l.Done {
					done++
					return
				}
				ticks = append(ticks, l)
			}})
		if err != nil {
			t.Fatal(err)
		}
		if done != 1 || len(ticks) < 5 {
			t.Fatalf("%d windows done, %d ticks; want 1 and about 9", done, len(ticks))
		}
		for k := 1; k < len(ticks); k++ {
			if ticks[k].Requests < ticks[k-1].Requests || ticks[k].Elapsed <= ticks[k-1].Elapsed {
				t.Errorf("tick %d: %+v does not follow %+v", k, ticks[k], ticks[k-1])
			}
		}
		if l := ticks[len(ticks)-1]; l.Requests == 0 || l.PerSecond == 0 || l.Mean != 1000 || l.Level.Concurrency != 1 {
			t.Errorf("last tick %+v, want requests at 1000 µs each for concurrency 1", l)
		}
	})
}
