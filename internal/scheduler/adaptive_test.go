package scheduler

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// waits records what the batcher tells its observer about each batch.
type waits struct {
	nopObserver
	mu      sync.Mutex
	waited  []time.Duration
	reasons map[string]int
}

func (w *waits) Batched(d time.Duration, reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waited = append(w.waited, d)
	if w.reasons == nil {
		w.reasons = map[string]int{}
	}
	w.reasons[reason]++
}

// closedLoop runs clients that each send a request, wait for its answer, think for a
// moment and send again, for d; it returns every request's time in the queue and the
// rows of every execution.
func closedLoop(t *testing.T, adaptive bool, clients int, delay, d time.Duration, think func(client int) time.Duration) (queued []time.Duration, rows []int) {
	t.Helper()
	inst := &echo{delay: time.Millisecond}
	s := New("m", []Instance{inst}, Options{MaxBatchSize: 32, Batching: &Batching{MaxQueueDelay: delay, Adaptive: adaptive}})
	defer s.Close()
	var q queueTimes
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for c := range clients {
		think := think(c)
		wg.Go(func() {
			for time.Now().Before(end) && q.submit(t, s, int32(c)) {
				time.Sleep(think)
			}
		})
	}
	wg.Wait()
	rows, _ = inst.executions()
	return q.d, rows
}

// queueTimes collects requests' times in the queue from many goroutines.
type queueTimes struct {
	mu sync.Mutex
	d  []time.Duration
}

// submit sends a one-row request of value v and records its time in the queue; false
// when it failed.
func (q *queueTimes) submit(t *testing.T, s *Scheduler, v int32) bool {
	res, err := s.Submit(context.Background(), req(1, v))
	if err != nil {
		t.Error(err)
		return false
	}
	q.mu.Lock()
	q.d = append(q.d, res.Timing.Queue)
	q.mu.Unlock()
	return true
}

// spread is clients' think time: they are not in lockstep.
func spread(c int) time.Duration { return time.Duration(100+37*c) * time.Microsecond }

func meanOf(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(max(len(ds), 1))
}

// Closed-loop clients fewer than the batch size are all queued or running already; no
// one else can come, so the adaptive batcher never waits the delay out for them, and
// still batches them together. Triton's fixed wait makes each of them pay it.
func TestAdaptiveClosedLoopNeverWaitsOutTheDelay(t *testing.T) {
	const delay = 20 * time.Millisecond
	for _, clients := range []int{1, 4, 16} {
		synctest.Test(t, func(t *testing.T) {
			queued, rows := closedLoop(t, true, clients, delay, time.Second, spread)
			worst := time.Duration(0)
			for _, q := range queued {
				worst = max(worst, q)
			}
			if worst >= delay {
				t.Errorf("%d clients: a request waited %v in the queue, the whole %v delay", clients, worst, delay)
			}
			// Each window's first batch waits for arrivals to stop (8 mean gaps) to learn
			// how many clients there are; every other batch runs once all are in.
			if m := meanOf(queued); m > delay/20 {
				t.Errorf("%d clients: requests waited %v on average, want under %v", clients, m, delay/20)
			}
			perExec := float64(len(queued)) / float64(len(rows))
			if want := 0.9 * float64(clients); perExec < want {
				t.Errorf("%d clients: %.1f requests per execution, want at least %.1f (batched together)", clients, perExec, want)
			}

			fixed, _ := closedLoop(t, false, clients, delay, time.Second, spread)
			if m := meanOf(fixed); m < delay/2 {
				t.Errorf("%d clients with Triton's fixed wait: requests waited %v on average; the test no longer tells the two apart", clients, m)
			}
			t.Logf("%d clients: mean queue %v adaptive (%.1f requests per execution), %v fixed", clients, meanOf(queued), perExec, meanOf(fixed))
		})
	}
}

// More closed-loop clients than a batch holds fill every batch: the adaptive wait does
// not cut one short while the last batch's clients are being answered.
func TestAdaptiveClosedLoopAboveTheBatchSizeFillsBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Half of 40 clients come back 3 ms after the others: a lull the quiet rule alone
		// would take for the end of the traffic (batches of 32, 23, 20, ... without the
		// full-batch rule).
		queued, rows := closedLoop(t, true, 40, 20*time.Millisecond, time.Second, func(c int) time.Duration {
			if c%2 == 0 {
				return 3 * time.Millisecond
			}
			return 100 * time.Microsecond
		})
		if perExec := float64(len(queued)) / float64(len(rows)); perExec < 0.95*32 {
			t.Errorf("40 clients: %.1f requests per execution, want batches of 32", perExec)
		}
	})
}

// trickle submits a request every gap (or, with poisson, at random gaps of that mean) for
// n requests, each from its own goroutine as independent users would.
func trickle(t *testing.T, s *Scheduler, n int, gap time.Duration, poisson bool) []time.Duration {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var q queueTimes
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { q.submit(t, s, int32(i)) })
		d := gap
		if poisson {
			d = time.Duration(rng.ExpFloat64() * float64(gap))
		}
		time.Sleep(d)
	}
	wg.Wait()
	return q.d
}

// An open-loop trickle whose gaps are shorter than the delay is still batched: requests
// keep coming whatever the batcher does, so waiting pays.
func TestAdaptiveBatchesAnOpenLoopTrickle(t *testing.T) {
	for _, poisson := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			inst := &echo{delay: 100 * time.Microsecond}
			obs := &waits{}
			s := New("m", []Instance{inst}, Options{MaxBatchSize: 32, Observer: obs,
				Batching: &Batching{MaxQueueDelay: 5 * time.Millisecond, Adaptive: true}})
			defer s.Close()
			queued := trickle(t, s, 1000, time.Millisecond, poisson)
			rows, _ := inst.executions()
			perExec := float64(len(queued)) / float64(len(rows))
			if perExec < 3 {
				t.Errorf("poisson=%v: %.1f requests per execution (%v), want at least 3: a trickle of one per ms fits ~5 in a 5ms delay",
					poisson, perExec, obs.reasons)
			}
			t.Logf("poisson=%v: %.1f requests per execution, mean queue %v, reasons %v", poisson, perExec, meanOf(queued), obs.reasons)
		})
	}
}

// Traffic slower than the delay is not held: the next request would come after the
// batch had to run anyway.
func TestAdaptiveRunsASlowTrickleAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inst := &echo{}
		s := New("m", []Instance{inst}, Options{MaxBatchSize: 32,
			Batching: &Batching{MaxQueueDelay: 5 * time.Millisecond, Adaptive: true}})
		defer s.Close()
		queued := trickle(t, s, 50, 20*time.Millisecond, false)
		for i, q := range queued {
			if q != 0 {
				t.Fatalf("request %d of a trickle 4x slower than the delay waited %v", i, q)
			}
		}
	})
}

// However the traffic comes, no batch waits past the delay while an instance is free.
func TestAdaptiveNeverExceedsTheDelay(t *testing.T) {
	const delay = 5 * time.Millisecond
	for _, gap := range []time.Duration{50 * time.Microsecond, 700 * time.Microsecond, 3 * time.Millisecond, 8 * time.Millisecond} {
		synctest.Test(t, func(t *testing.T) {
			obs := &waits{}
			s := New("m", []Instance{&echo{}}, Options{MaxBatchSize: 8, Observer: obs,
				Batching: &Batching{MaxQueueDelay: delay, Adaptive: true}})
			defer s.Close()
			queued := trickle(t, s, 500, gap, true)
			for _, q := range queued {
				if q > delay {
					t.Fatalf("mean gap %v: a request waited %v, over the %v delay", gap, q, delay)
				}
			}
			for _, w := range obs.waited {
				if w > delay {
					t.Fatalf("mean gap %v: a batch waited %v, over the %v delay", gap, w, delay)
				}
			}
		})
	}
}

func TestAdaptiveLoneRequestRunsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("m", []Instance{&echo{}}, Options{MaxBatchSize: 8, Batching: &Batching{
			MaxQueueDelay: 10 * time.Millisecond, Adaptive: true}})
		defer s.Close()
		res, err := s.Submit(context.Background(), req(1, 1))
		if err != nil {
			t.Fatal(err)
		}
		if res.Timing.Queue != 0 {
			t.Errorf("the first request waited %v; with nothing known of the traffic it must not wait on a guess", res.Timing.Queue)
		}
	})
}
