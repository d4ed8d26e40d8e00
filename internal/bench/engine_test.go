package bench

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// fakeEngine takes a fixed time per item plus a fixed overhead per run, the shape of a
// real engine's cost, and records the batch sizes it ran.
type fakeEngine struct {
	perRun, perItem time.Duration
	batches         []int64
	failAt          int64 // batch size that fails; 0: none
}

func (e *fakeEngine) Execute(_ context.Context, in []*tensor.Tensor) error {
	b := in[0].Shape[0]
	if b == e.failAt {
		return errors.New("out of memory")
	}
	if len(e.batches) == 0 || e.batches[len(e.batches)-1] != b {
		e.batches = append(e.batches, b)
	}
	time.Sleep(e.perRun + time.Duration(b)*e.perItem)
	return nil
}

func TestRunEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{perRun: 900 * time.Microsecond, perItem: 100 * time.Microsecond}
		rep, err := RunEngine(t.Context(), []Engine{e}, fakeModel, EngineOptions{Name: "fake", BatchSizes: PowersOfTwo(8),
			Duration: 100 * time.Millisecond, Warmup: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(e.batches, []int64{1, 2, 4, 8}) {
			t.Errorf("engine ran batches %v, want 1 2 4 8", e.batches)
		}
		for _, l := range rep.Levels {
			run := 900 + 100*float64(l.BatchSize) // µs
			if l.P50 != run || l.P99 != run {
				t.Errorf("batch %d: p50 %v p99 %v µs, want %v", l.BatchSize, l.P50, l.P99, run)
			}
			if want := 1e6 / run * float64(l.BatchSize); l.ItemsPerSec < want*0.99 || l.ItemsPerSec > want*1.01 {
				t.Errorf("batch %d: %.0f items/s, want %.0f", l.BatchSize, l.ItemsPerSec, want)
			}
		}
	})
}

func TestRunEngineRunsEnginesSideBySide(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeEngine{perRun: time.Millisecond}
		b := &fakeEngine{perRun: time.Millisecond}
		rep, err := RunEngine(t.Context(), []Engine{a, b}, fakeModel, EngineOptions{BatchSizes: []int{2}, Duration: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		l := rep.Levels[0]
		if l.Concurrency != 2 || l.ItemsPerSec < 3960 || l.ItemsPerSec > 4040 || l.P50 != 1000 {
			t.Errorf("level = concurrency %d, %.0f items/s, p50 %v µs; want 2, 4000 (two engines of 1 ms runs at batch 2), 1000",
				l.Concurrency, l.ItemsPerSec, l.P50)
		}
		if len(a.batches) == 0 || len(b.batches) == 0 {
			t.Errorf("runs per engine: %d and %d, want both busy", len(a.batches), len(b.batches))
		}
	})
}

func TestRunEngineReportsTheFailingBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{perRun: time.Millisecond, failAt: 4}
		_, err := RunEngine(t.Context(), []Engine{e}, fakeModel, EngineOptions{BatchSizes: []int{1, 4}, Duration: 10 * time.Millisecond})
		if want := "batch size 4: out of memory"; err == nil || err.Error() != want {
			t.Errorf("RunEngine err = %v, want %q", err, want)
		}
	})
}

func TestPowersOfTwo(t *testing.T) {
	for limit, want := range map[int][]int{1: {1}, 8: {1, 2, 4, 8}, 6: {1, 2, 4, 6}, 0: nil} {
		if got := PowersOfTwo(limit); !slices.Equal(got, want) {
			t.Errorf("PowersOfTwo(%d) = %v, want %v", limit, got, want)
		}
	}
}
