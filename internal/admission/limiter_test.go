package admission

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// simServer is a model with a fixed capacity: slots requests run at once, each for
// service; the others wait their turn in a FIFO queue.
type simServer struct {
	slots   chan struct{}
	service time.Duration
}

func (s *simServer) run() {
	s.slots <- struct{}{}
	time.Sleep(s.service)
	<-s.slots
}

// offered is what one priority level got out of an overload run.
type offered struct {
	sent, refused int
	latencies     []time.Duration // of the admitted requests, after the warm-up
}

// overload offers rates[k] requests/s of priority k+1 (open loop) for d to a simulated
// server of capacity 4 x 10 ms (400 requests/s) behind l, and reports per level.
func overload(l *Limiter, rates []float64, d, warmup time.Duration) []offered {
	srv := &simServer{slots: make(chan struct{}, 4), service: 10 * time.Millisecond}
	out := make([]offered, len(rates))
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for k, rate := range rates {
		wg.Go(func() {
			gap := time.Duration(float64(time.Second) / rate)
			for t := time.Duration(0); t < d; t += gap {
				time.Sleep(time.Until(start.Add(t)))
				release, r := l.Acquire(k + 1)
				mu.Lock()
				out[k].sent++
				if r != nil {
					out[k].refused++
					mu.Unlock()
					continue
				}
				mu.Unlock()
				wg.Go(func() {
					t0 := time.Now()
					srv.run()
					lat := time.Since(t0)
					release(lat, nil)
					if time.Since(start) > warmup {
						mu.Lock()
						out[k].latencies = append(out[k].latencies, lat)
						mu.Unlock()
					}
				})
			}
		})
	}
	wg.Wait()
	return out
}

func p99(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)*99/100]
}

func TestLimiterConvergesAtFiveTimesCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Shed{Objective: 100 * time.Millisecond, InitialLimit: 1000, MinLimit: 1, MaxLimit: 1000, Backoff: 0.9, RetryAfter: time.Second}
		l := NewLimiter("m", s, 1, 0) // from the highest limit, as by default
		const d, warmup = 20 * time.Second, 3 * time.Second
		got := overload(l, []float64{2000}, d, warmup)[0]
		limit, inflight := l.Limit()
		goodput := float64(len(got.latencies)) / (d - warmup).Seconds()
		t.Logf("offered 2000/s to a 400/s server: sent %d, refused %d, limit %d, goodput %.0f/s, admitted p99 %s",
			got.sent, got.refused, limit, goodput, p99(got.latencies))
		if inflight != 0 {
			t.Errorf("%d in flight after every request finished", inflight)
		}
		if limit < 4 || limit > 20 { // 4 slots keep the server busy; 20 = 4 x target 50ms / 10ms
			t.Errorf("limit settled at %d, want from 4 (the server's slots) to 20 (its latency target)", limit)
		}
		if p := p99(got.latencies); p > s.Objective {
			t.Errorf("admitted p99 %s over the objective %s", p, s.Objective)
		}
		if goodput < 0.9*400 {
			t.Errorf("goodput %.0f/s, want >= 0.9 of the capacity 400/s", goodput)
		}
	})
}

func TestLimiterShedsLowerPrioritiesFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Shed{Objective: 100 * time.Millisecond, InitialLimit: 64, MinLimit: 1, MaxLimit: 1000, Backoff: 0.9, RetryAfter: time.Second}
		l := NewLimiter("m", s, 3, 2)
		got := overload(l, []float64{150, 600, 1250}, 20*time.Second, 5*time.Second) // 0.4x, 1.5x, 3.1x capacity
		var frac [3]float64
		for k, o := range got {
			frac[k] = float64(o.refused) / float64(o.sent)
			t.Logf("priority %d: sent %d, refused %.1f%%, admitted p99 %s", k+1, o.sent, 100*frac[k], p99(o.latencies))
			if p := p99(o.latencies); p > s.Objective {
				t.Errorf("priority %d: admitted p99 %s over the objective", k+1, p)
			}
		}
		if !(frac[0] < 0.1 && frac[0] < frac[1] && frac[1] < frac[2]) {
			t.Errorf("refused fractions %.2f, want under 0.1 for priority 1 and rising as priority falls", frac)
		}
	})
}

func TestLimiterPriorityZeroIsTheDefaultLevel(t *testing.T) {
	l := NewLimiter("m", Shed{Objective: time.Second, InitialLimit: 4, MinLimit: 1, MaxLimit: 4, Backoff: 0.5}, 2, 1)
	for range 2 { // the lowest level may fill half of the limit
		if _, r := l.Acquire(2); r != nil {
			t.Fatal(r)
		}
	}
	if _, r := l.Acquire(9); r == nil { // out of range: the lowest level
		t.Fatal("priority 9 admitted past the lowest level's half of the limit")
	}
	if _, r := l.Acquire(0); r != nil { // the default is level 1 here
		t.Fatalf("priority 0 (default level 1) refused: %v", r)
	}
	_, r := l.Acquire(2)
	if r == nil || r.Kind != Overloaded || r.Error() != "model 'm' is overloaded: shedding priority 2 load to keep latency within 1s; retry after 0s" {
		t.Fatalf("refusal %v", r)
	}
}

func BenchmarkLimiterAcquireRelease(b *testing.B) {
	l := NewLimiter("m", DefaultShed(), 1, 0)
	b.ReportAllocs()
	for b.Loop() {
		release, r := l.Acquire(0)
		if r != nil {
			b.Fatal(r)
		}
		release(time.Millisecond, nil)
	}
}

func BenchmarkLimiterRefuse(b *testing.B) {
	l := NewLimiter("m", Shed{Objective: time.Second, InitialLimit: 1, MinLimit: 1, MaxLimit: 1, Backoff: 0.5}, 1, 0)
	l.Acquire(0)
	b.ReportAllocs()
	for b.Loop() {
		if _, r := l.Acquire(0); r == nil {
			b.Fatal("admitted past the limit")
		}
	}
}

func BenchmarkLimiterParallel(b *testing.B) {
	l := NewLimiter("m", DefaultShed(), 1, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if release, r := l.Acquire(0); r == nil {
				release(time.Millisecond, nil)
			}
		}
	})
}
