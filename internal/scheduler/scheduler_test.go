package scheduler

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// echo is a fake instance: it returns its input as output "y", records each execution's
// rows, and can be held at a gate to let a queue build up.
type echo struct {
	mu    sync.Mutex
	rows  []int
	seen  []int32 // first element of every row executed, in order
	gate  chan struct{}
	delay time.Duration
}

func (e *echo) Execute(ctx context.Context, in []*tensor.Tensor, _ []string) ([]*tensor.Tensor, error) {
	if e.gate != nil {
		<-e.gate
	}
	if e.delay > 0 {
		time.Sleep(e.delay)
	}
	x := in[0]
	e.mu.Lock()
	e.rows = append(e.rows, int(x.Shape[0]))
	for r := range int(x.Shape[0]) {
		e.seen = append(e.seen, int32(binary.LittleEndian.Uint32(x.Data[r*4:])))
	}
	e.mu.Unlock()
	return []*tensor.Tensor{{Name: "y", DType: x.DType, Shape: x.Shape.Clone(), Data: append([]byte(nil), x.Data...)}}, nil
}

func (e *echo) Close() error { return nil }

func (e *echo) executions() ([]int, []int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.rows...), append([]int32(nil), e.seen...)
}

// req builds a request of `rows` rows [1] INT32 whose values are all v.
func req(rows int, v int32) *Request {
	data := make([]byte, 4*rows)
	for r := range rows {
		binary.LittleEndian.PutUint32(data[4*r:], uint32(v))
	}
	return &Request{Inputs: []*tensor.Tensor{{Name: "x", DType: tensor.Int32, Shape: tensor.Shape{int64(rows), 1}, Data: data}}}
}

func TestBatchesNeverExceedMaxAndOutputsSplitBack(t *testing.T) {
	inst := &echo{}
	s := New("m", []Instance{inst}, Options{MaxBatchSize: 8, Batching: &Batching{MaxQueueDelay: time.Millisecond}})
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			rows := 1 + i%3
			res, err := s.Submit(context.Background(), req(rows, int32(i)))
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			out := res.Outputs[0]
			if out.Shape[0] != int64(rows) {
				t.Errorf("request %d: got %d rows back, want %d", i, out.Shape[0], rows)
			}
			for r := range rows {
				if got := int32(binary.LittleEndian.Uint32(out.Data[4*r:])); got != int32(i) {
					t.Errorf("request %d row %d: got value %d, another request's data", i, r, got)
				}
			}
		})
	}
	wg.Wait()
	rows, _ := inst.executions()
	total := 0
	for _, r := range rows {
		if r > 8 {
			t.Errorf("a batch of %d rows ran; max_batch_size is 8", r)
		}
		total += r
	}
	if total != 199 { // 34×1 + 33×2 + 33×3
		t.Errorf("executions covered %d rows, want 199", total)
	}
}

func TestLoneRequestWaitsOnlyTheQueueDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("m", []Instance{&echo{}}, Options{MaxBatchSize: 8, Batching: &Batching{
			MaxQueueDelay: 10 * time.Millisecond, PreferredBatchSizes: []int{8}}})
		defer s.Close()
		start := time.Now()
		res, err := s.Submit(context.Background(), req(1, 1))
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 10*time.Millisecond {
			t.Errorf("a lone request waited %v, want exactly the 10ms queue delay", waited)
		}
		if res.Timing.Queue != 10*time.Millisecond {
			t.Errorf("Timing.Queue = %v, want 10ms", res.Timing.Queue)
		}
	})
}

func TestPreferredBatchRunsWithoutWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inst := &echo{}
		s := New("m", []Instance{inst}, Options{MaxBatchSize: 8, Batching: &Batching{
			MaxQueueDelay: time.Second, PreferredBatchSizes: []int{4}}})
		defer s.Close()
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				if _, err := s.Submit(context.Background(), req(1, int32(i))); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if waited := time.Since(start); waited != 0 {
			t.Errorf("a preferred batch of 4 waited %v, want 0", waited)
		}
		if rows, _ := inst.executions(); len(rows) != 1 || rows[0] != 4 {
			t.Errorf("executions %v, want one batch of 4", rows)
		}
	})
}

// held builds a scheduler whose single instance blocks until release is called, after
// a first request occupies it; requests submitted then queue up behind.
func held(t *testing.T, b Batching) (*Scheduler, *echo, func()) {
	t.Helper()
	return heldBatches(t, 1, b)
}

// heldBatches is held with batches of up to maxBatch rows.
func heldBatches(t *testing.T, maxBatch int, b Batching) (*Scheduler, *echo, func()) {
	t.Helper()
	inst := &echo{gate: make(chan struct{})}
	s := New("m", []Instance{inst}, Options{MaxBatchSize: maxBatch, Batching: &b})
	go s.Submit(context.Background(), req(1, -1)) // occupies the instance
	synctest.Wait()
	var once sync.Once
	return s, inst, func() { once.Do(func() { close(inst.gate) }) }
}

// The order is the same when batches of 2 form under the adaptive wait: it decides when
// a batch runs, never which requests it takes.
func TestHigherPriorityRunsFirst(t *testing.T) {
	for _, adaptive := range []bool{false, true} {
		t.Run(map[bool]string{false: "fixed", true: "adaptive"}[adaptive], func(t *testing.T) { higherPriorityRunsFirst(t, adaptive) })
	}
}

func higherPriorityRunsFirst(t *testing.T, adaptive bool) {
	synctest.Test(t, func(t *testing.T) {
		b, maxBatch := Batching{PriorityLevels: 2, DefaultPriority: 2}, 1
		if adaptive {
			b.Adaptive, b.MaxQueueDelay, maxBatch = true, time.Second, 2
		}
		s, inst, release := heldBatches(t, maxBatch, b)
		defer s.Close()
		var wg sync.WaitGroup
		for i, prio := range []int{2, 2, 1, 0, 1} { // 0 = default (2)
			wg.Go(func() {
				r := req(1, int32(i))
				r.Priority = prio
				if _, err := s.Submit(context.Background(), r); err != nil {
					t.Error(err)
				}
			})
			synctest.Wait() // enqueue in this order
		}
		release()
		wg.Wait()
		_, seen := inst.executions()
		want := []int32{-1, 2, 4, 0, 1, 3}
		if len(seen) != len(want) {
			t.Fatalf("ran %v, want %v", seen, want)
		}
		for i := range want {
			if seen[i] != want[i] {
				t.Fatalf("ran %v, want %v (priority 1 first, then arrival order)", seen, want)
			}
		}
	})
}

// TestBackgroundRunsLast: a batch job's requests wait behind every priority level,
// the lowest included, and behind requests with no priority, whatever their arrival;
// a full background level never refuses (the job bounds itself).
func TestBackgroundRunsLast(t *testing.T) {
	for _, levels := range []int{0, 2} {
		t.Run(fmt.Sprintf("%d levels", levels), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, inst, release := held(t, Batching{PriorityLevels: levels, DefaultPriority: levels, DefaultPolicy: QueuePolicy{MaxQueueSize: 2}})
				defer s.Close()
				var wg sync.WaitGroup
				for i, bg := range []bool{true, true, false, true, false} {
					wg.Go(func() {
						r := req(1, int32(i))
						r.Background = bg
						if levels > 0 && !bg {
							r.Priority = levels // the lowest configured level still goes first
						}
						if _, err := s.Submit(context.Background(), r); err != nil {
							t.Error(err)
						}
					})
					synctest.Wait()
				}
				release()
				wg.Wait()
				_, seen := inst.executions()
				if want := []int32{-1, 2, 4, 0, 1, 3}; !slices.Equal(seen, want) {
					t.Fatalf("ran %v, want %v (online first, then the job in arrival order)", seen, want)
				}
			})
		})
	}
}

// TestBackgroundYieldsTheInstance: while online requests keep arriving, background
// batches take at most backgroundShare of the instance's time; with no online request
// for backgroundQuiet, they run back to back.
func TestBackgroundYieldsTheInstance(t *testing.T) {
	for _, online := range []bool{true, false} {
		t.Run(map[bool]string{true: "online", false: "alone"}[online], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const exec = 10 * time.Millisecond
				s := New("m", []Instance{&echo{delay: exec}}, Options{MaxBatchSize: 1, Batching: &Batching{}})
				defer s.Close()
				start := time.Now()
				if online {
					if _, err := s.Submit(context.Background(), req(1, 100)); err != nil {
						t.Fatal(err)
					}
				}
				var wg sync.WaitGroup
				for i := range 4 {
					wg.Go(func() {
						r := req(1, int32(i))
						r.Background = true
						if _, err := s.Submit(context.Background(), r); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
				took := time.Since(start)
				want := 4 * exec // back to back
				if online {
					// the online request, then four background batches, each but the
					// first after a pause of exec x (1-share)/share
					gap := time.Duration(float64(exec) * (1 - backgroundShare) / backgroundShare)
					want = exec + 4*exec + 3*gap
				}
				if took != want {
					t.Fatalf("took %v, want %v", took, want)
				}
			})
		})
	}
}

func TestFullQueueRejectsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _, release := held(t, Batching{DefaultPolicy: QueuePolicy{MaxQueueSize: 2}})
		defer s.Close()
		defer release()
		for i := range 2 {
			go s.Submit(context.Background(), req(1, int32(i)))
		}
		synctest.Wait()
		start := time.Now()
		_, err := s.Submit(context.Background(), req(1, 9))
		if !errors.Is(err, ErrQueueFull) || time.Since(start) != 0 {
			t.Fatalf("third request: %v after %v, want ErrQueueFull at once", err, time.Since(start))
		}
	})
}

func TestTimeoutReject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, inst, release := held(t, Batching{DefaultPolicy: QueuePolicy{DefaultTimeout: 5 * time.Millisecond}})
		defer s.Close()
		done := make(chan error)
		go func() { _, err := s.Submit(context.Background(), req(1, 7)); done <- err }()
		time.Sleep(20 * time.Millisecond)
		release()
		if err := <-done; !errors.Is(err, ErrTimeout) {
			t.Fatalf("request past its timeout: %v, want ErrTimeout", err)
		}
		if _, seen := inst.executions(); len(seen) != 1 {
			t.Errorf("ran %v; the timed-out request must not run", seen)
		}
	})
}

func TestTimeoutDelayRunsAfterOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, inst, release := held(t, Batching{DefaultPolicy: QueuePolicy{Action: Delay, DefaultTimeout: 5 * time.Millisecond, AllowOverride: true}})
		defer s.Close()
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := s.Submit(context.Background(), req(1, 1)); err != nil {
				t.Error(err)
			}
		})
		time.Sleep(10 * time.Millisecond) // request 1 is now past its timeout
		wg.Go(func() {
			r := req(1, 2)
			r.Timeout = time.Hour // allowed to override
			if _, err := s.Submit(context.Background(), r); err != nil {
				t.Error(err)
			}
		})
		synctest.Wait()
		release()
		wg.Wait()
		if _, seen := inst.executions(); len(seen) != 3 || seen[1] != 2 || seen[2] != 1 {
			t.Fatalf("ran %v, want the delayed request 1 after request 2", seen)
		}
	})
}

func TestCancelledRequestsNeverRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, inst, release := held(t, Batching{})
		defer s.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { _, err := s.Submit(ctx, req(1, 5)); done <- err }()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled request: %v", err)
		}
		release()
		if _, err := s.Submit(context.Background(), req(1, 6)); err != nil {
			t.Fatal(err)
		}
		if _, seen := inst.executions(); len(seen) != 2 || seen[1] != 6 {
			t.Fatalf("ran %v, want [-1 6]: the cancelled request must not run", seen)
		}
	})
}

// slowFirst is an instance whose executions of value 0 are slow: with two instances, the
// request that arrived first finishes last unless ordering is preserved.
type slowFirst struct{ echo }

func (s *slowFirst) Execute(ctx context.Context, in []*tensor.Tensor, want []string) ([]*tensor.Tensor, error) {
	if binary.LittleEndian.Uint32(in[0].Data) == 0 {
		time.Sleep(50 * time.Millisecond)
	}
	return s.echo.Execute(ctx, in, want)
}

func TestPreserveOrdering(t *testing.T) {
	for _, c := range []struct{ preserve, adaptive bool }{{true, false}, {false, false}, {true, true}, {false, true}} {
		preserve := c.preserve
		synctest.Test(t, func(t *testing.T) {
			b := &Batching{PreserveOrdering: preserve}
			if c.adaptive {
				b.Adaptive, b.MaxQueueDelay = true, time.Second
			}
			s := New("m", []Instance{&slowFirst{}, &slowFirst{}}, Options{MaxBatchSize: 1, Batching: b})
			defer s.Close()
			start := time.Now()
			var wg sync.WaitGroup
			var fastDone time.Duration
			for i := range 2 {
				wg.Go(func() {
					if _, err := s.Submit(context.Background(), req(1, int32(i))); err != nil {
						t.Error(err)
					}
					if i == 1 {
						fastDone = time.Since(start)
					}
				})
				synctest.Wait()
			}
			wg.Wait()
			// Request 1 runs at once on the second instance; request 0 takes 50ms.
			if preserve && fastDone != 50*time.Millisecond {
				t.Errorf("preserve_ordering: request 1 answered after %v, want 50ms (after request 0)", fastDone)
			}
			if !preserve && fastDone != 0 {
				t.Errorf("without preserve_ordering request 1 answered after %v, want at once", fastDone)
			}
		})
	}
}

func TestDirectModeRunsEachRequest(t *testing.T) {
	inst := &echo{}
	s := New("m", []Instance{inst}, Options{MaxBatchSize: 8})
	defer s.Close()
	for i := range 3 {
		if _, err := s.Submit(context.Background(), req(2, int32(i))); err != nil {
			t.Fatal(err)
		}
	}
	if rows, _ := inst.executions(); len(rows) != 3 {
		t.Fatalf("executions %v, want one per request", rows)
	}
	s.Close()
	if _, err := s.Submit(context.Background(), req(1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}

// ctxProbe records the values and cancellation of each execution's context.
type ctxProbe struct {
	echo
	mu     sync.Mutex
	values []any
	live   []bool // the context could still be cancelled
}

type probeKey struct{}

func (p *ctxProbe) Execute(ctx context.Context, in []*tensor.Tensor, want []string) ([]*tensor.Tensor, error) {
	p.mu.Lock()
	p.values = append(p.values, ctx.Value(probeKey{}))
	p.live = append(p.live, ctx.Done() != nil)
	p.mu.Unlock()
	return p.echo.Execute(ctx, in, want)
}

// TestBatchCarriesTheLeadersValuesNotItsCancellation: a batch of several requests runs
// with the first request's context values (its trace) but no caller's cancellation.
func TestBatchCarriesTheLeadersValuesNotItsCancellation(t *testing.T) {
	inst := &ctxProbe{echo: echo{gate: make(chan struct{})}}
	s := New("m", []Instance{inst}, Options{MaxBatchSize: 8, Batching: &Batching{MaxQueueDelay: 50 * time.Millisecond, PreferredBatchSizes: []int{4}}})
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 5 { // the first runs alone (the gate holds it); the next four batch
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.WithValue(context.Background(), probeKey{}, "caller"))
			defer cancel()
			if _, err := s.Submit(ctx, req(1, int32(i))); err != nil {
				t.Error(err)
			}
		})
		if i == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(20 * time.Millisecond)
	close(inst.gate)
	wg.Wait()
	rows, _ := inst.executions()
	inst.mu.Lock()
	defer inst.mu.Unlock()
	for i, r := range rows {
		if inst.values[i] != "caller" {
			t.Errorf("execution %d of %d rows: context value %v, want the caller's", i, r, inst.values[i])
		}
		if r > 1 && inst.live[i] {
			t.Errorf("execution %d of %d rows: its context can be cancelled by one caller", i, r)
		}
	}
	if slices.Max(rows) < 2 {
		t.Fatalf("executions %v: want a batch of several requests", rows)
	}
}
