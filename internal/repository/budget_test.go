package repository

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/scheduler"
)

// The budget tests use mem models, whose instances hold real, touched memory, and the
// default measurement (growth of the process's anonymous RSS). What one 8 MiB model
// measures depends on the build (the race detector shadows the heap), so each test
// sizes its budget from a calibration in the same process.

// perModel measures what an 8 MiB mem model takes here (its second load: the first of
// a process also pays one-time costs).
func perModel(t *testing.T) int64 {
	t.Helper()
	mr := newMemRepo(t, map[string]int{"x": 8, "y": 8}, Options{MemoryBudget: 1 << 40})
	mr.use(t, "x")
	mr.use(t, "y")
	mr.mu.Lock()
	defer mr.mu.Unlock()
	b := mr.od.lastMeasured["y"]
	if b < 15<<19 { // 7.5 MiB: the kernel's RSS counters are approximate by a few pages
		t.Fatalf("an 8 MiB model measured %s; the measurement misses memory", formatBytes(b))
	}
	t.Logf("an 8 MiB model measures %s", formatBytes(b))
	return b
}

// sampler reads the accounted total every 200µs until stopped and keeps the largest.
type sampler struct {
	peak atomic.Int64
	stop chan struct{}
	done sync.WaitGroup
}

func sample(r *Repository) *sampler {
	s := &sampler{stop: make(chan struct{})}
	s.done.Go(func() {
		for {
			if b := r.ResidentBytes(); b > s.peak.Load() {
				s.peak.Store(b)
			}
			select {
			case <-s.stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	})
	return s
}

func (s *sampler) max() int64 {
	close(s.stop)
	s.done.Wait()
	return s.peak.Load()
}

func TestBudgetEvictsLeastRecentlyUsedIdle(t *testing.T) {
	budget := perModel(t) * 7 / 2 // three fit, four do not
	mr := newMemRepo(t, map[string]int{"a": 8, "b": 8, "c": 8, "d": 8}, Options{MemoryBudget: budget})
	s := sample(mr.Repository)
	for _, name := range []string{"a", "b", "c", "a", "d"} { // a used again: b is least recent
		mr.use(t, name)
	}
	if peak := s.max(); peak > budget {
		t.Errorf("accounted memory reached %s, over the %s budget", formatBytes(peak), formatBytes(budget))
	}
	if got := mr.unloads.String(); got != "b:evicted" {
		t.Errorf("unloads %q, want b:evicted (the least recently used)", got)
	}
	st := mr.states()
	if st["b"] != "UNAVAILABLE unloaded" || st["a"] != "READY " || st["c"] != "READY " || st["d"] != "READY " {
		t.Errorf("index %v; want b unloaded, a c d READY", st)
	}
}

func TestBudgetNeverEvictsAModelInUse(t *testing.T) {
	budget := perModel(t) * 7 / 2
	mr := newMemRepo(t, map[string]int{"a": 8, "b": 8, "c": 8, "d": 8},
		Options{MemoryBudget: budget, LoadTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	held := holdAll(t, mr, "a", "b", "c")
	_, err := mr.Acquire(ctx, "d", "")
	if !errors.Is(err, core.ErrUnavailable) || !strings.Contains(err.Error(), "no room after 300ms") ||
		!strings.Contains(err.Error(), "memory budget "+formatBytes(budget)) || !strings.Contains(err.Error(), "3 models in use") {
		t.Errorf("Acquire(d) with every loaded model in use past the load timeout: %v; want ErrUnavailable naming the wait, the budget and 3 models in use", err)
	}
	if got := mr.unloads.String(); got != "" {
		t.Errorf("unloads %q while every model was in use, want none", got)
	}
	held[1].Release() // b is idle now
	l, err := mr.Acquire(ctx, "d", "")
	if err != nil {
		t.Fatalf("Acquire(d) once b is idle: %v", err)
	}
	l.Release()
	if got := mr.unloads.String(); got != "b:evicted" {
		t.Errorf("unloads %q, want b:evicted (the only idle model)", got)
	}
	held[0].Release()
	held[2].Release()
}

// A load that finds every loaded model in use waits for one to become idle, rather than
// failing its request: the request is served as soon as a lease ends.
func TestBudgetLoadWaitsForAModelToBecomeIdle(t *testing.T) {
	budget := perModel(t) * 7 / 2
	mr := newMemRepo(t, map[string]int{"a": 8, "b": 8, "c": 8, "d": 8}, Options{MemoryBudget: budget})
	ctx := context.Background()
	held := holdAll(t, mr, "a", "b", "c")
	got := make(chan error, 1)
	go func() {
		l, err := mr.Acquire(ctx, "d", "")
		if err == nil {
			l.Release()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Acquire(d) returned %v while every loaded model was in use; want it to wait", err)
	case <-time.After(200 * time.Millisecond):
	}
	released := time.Now()
	held[2].Release() // c is idle now
	if err := <-got; err != nil {
		t.Fatalf("Acquire(d) once c was idle: %v", err)
	}
	if waited := time.Since(released); waited > 5*time.Second {
		t.Errorf("Acquire(d) returned %s after c became idle", waited)
	}
	if got := mr.unloads.String(); got != "c:evicted" {
		t.Errorf("unloads %q, want c:evicted (the only idle model)", got)
	}
	held[0].Release()
	held[1].Release()
}

// A model that cannot fit even in an empty budget fails at once, without waiting.
func TestBudgetTooBigFailsAtOnce(t *testing.T) {
	budget := perModel(t) / 2
	mr := newMemRepo(t, map[string]int{"a": 8}, Options{MemoryBudget: budget})
	start := time.Now()
	_, err := mr.Acquire(context.Background(), "a", "")
	if !errors.Is(err, core.ErrUnavailable) || !strings.Contains(err.Error(), "memory budget") {
		t.Errorf("Acquire(a), bigger than the budget: %v; want ErrUnavailable naming the budget", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the refusal took %s; want it at once", took)
	}
}

// A model that measures more than estimated makes more room after it is measured; one
// that cannot fit even alone is measured once more (a load measured under traffic may
// be charged other requests' memory), refused, forgotten (so it is not shown as broken),
// and refused again at once next time, from its measurement, without loading.
func TestBudgetActsOnTheMeasurement(t *testing.T) {
	one := perModel(t)
	budget := one * 7 / 2
	mr := newMemRepo(t, map[string]int{"a": 8, "b": 8, "c": 8, "big": 16, "huge": 40}, Options{MemoryBudget: budget})
	s := sample(mr.Repository)
	for _, name := range []string{"a", "b", "c", "big"} {
		mr.use(t, name)
	}
	// big's files are as small as the others': its estimate (their size) fits with a, b
	// and c loaded; then it measures two models' worth, and the two least recent go.
	if got := mr.unloads.String(); got != "a:evicted b:evicted" {
		t.Errorf("unloads %q, want a:evicted b:evicted", got)
	}
	if got := mr.ResidentBytes(); got < 3*one-one/4 || got > budget {
		t.Errorf("accounted %s with c (one) and big (two) loaded; want about %s", formatBytes(got), formatBytes(3*one))
	}
	// huge is estimated at its files too: that fits; then it measures five, and even
	// with c and big gone it would not fit, so they stay.
	for attempt := 1; attempt <= 2; attempt++ {
		_, err := mr.Acquire(context.Background(), "huge", "")
		if !errors.Is(err, core.ErrUnavailable) || !strings.Contains(err.Error(), "memory budget") {
			t.Errorf("attempt %d: Acquire(huge), larger than the budget: %v; want ErrUnavailable naming the memory budget", attempt, err)
		}
	}
	if n := mr.backend.openCount("huge"); n != 2 {
		t.Errorf("huge opened %d times, want 2 (measured twice on the first attempt): the second attempt knows its size", n)
	}
	if got := mr.unloads.String(); got != "a:evicted b:evicted" {
		t.Errorf("unloads %q, want still a:evicted b:evicted", got)
	}
	if st := mr.states(); st["huge"] != "UNAVAILABLE unloaded" || st["big"] != "READY " || st["c"] != "READY " {
		t.Errorf("index %v; want huge UNAVAILABLE unloaded (not failed), big and c READY", st)
	}
	if peak := s.max(); peak > budget {
		t.Errorf("accounted memory reached %s, over the %s budget", formatBytes(peak), formatBytes(budget))
	}
}

// Memory an instance holds in another process (a python child) is invisible to the
// in-process measurement; the backend reports it and the budget adds it.
func TestBudgetCountsOutsideMemory(t *testing.T) {
	mr := newMemRepo(t, map[string]int{"child": 1}, Options{MemoryBudget: 1 << 40})
	b := mr.opts.Backends["mem"]
	b.OutsideMemory = func(in scheduler.Instance) int64 {
		if _, ok := in.(*memInstance); ok {
			return 64 << 20
		}
		return 0
	}
	mr.opts.Backends["mem"] = b
	mr.use(t, "child")
	if got := mr.ResidentBytes(); got < 129<<19 || got > 73<<20 {
		t.Errorf("a 1 MiB model whose instance holds 64 MiB outside the process measures %s, want 65MiB and a little", formatBytes(got))
	}
}

// holdAll leases each model (loading it) and keeps the leases.
func holdAll(t *testing.T, mr *memRepo, names ...string) []*core.Lease {
	t.Helper()
	var held []*core.Lease
	for _, name := range names {
		l, err := mr.Acquire(context.Background(), name, "")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
	}
	return held
}
