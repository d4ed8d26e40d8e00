package rollout

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/core"
)

func TestMeterCountsWatchedVersionsPerInterval(t *testing.T) {
	m := NewMeter()
	m.Finished(&core.Record{Model: "mlp", Version: "1", Total: time.Millisecond}) // not watched yet
	m.Watch("mlp", "1", "2")
	fail := errors.New("boom")
	for i := range 1000 {
		m.Finished(&core.Record{Model: "mlp", Version: "2", Total: time.Duration(i+1) * time.Millisecond})
		if i%10 == 0 {
			m.Finished(&core.Record{Model: "mlp", Version: "1", Total: time.Millisecond, Err: fail})
		}
	}
	m.Finished(&core.Record{Model: "other", Version: "2", Total: time.Second})
	w := m.Snapshot("mlp", "2")
	if w.Requests != 1000 || w.Errors != 0 || w.Latency.Count() != 1000 {
		t.Fatalf("candidate window %d requests %d errors %d latencies, want 1000/0/1000", w.Requests, w.Errors, w.Latency.Count())
	}
	for q, want := range map[float64]time.Duration{0.5: 500 * time.Millisecond, 0.9: 900 * time.Millisecond, 0.99: 990 * time.Millisecond} {
		if got := w.Latency.Quantile(q); math.Abs(float64(got-want))/float64(want) > 0.07 {
			t.Errorf("p%v = %s, want %s within 7%%", q*100, got, want)
		}
	}
	if s := m.Snapshot("mlp", "1"); s.Requests != 100 || s.ErrorRate() != 1 {
		t.Fatalf("stable window %d requests, error rate %v; want 100 and 1", s.Requests, s.ErrorRate())
	}
	if again := m.Snapshot("mlp", "2"); again.Requests != 0 {
		t.Fatalf("a second snapshot saw %d requests; a snapshot starts a new interval", again.Requests)
	}
	m.Unwatch("mlp")
	m.Finished(&core.Record{Model: "mlp", Version: "2"})
	if w := m.Snapshot("mlp", "2"); w.Requests != 0 {
		t.Fatalf("counted %d requests after Unwatch", w.Requests)
	}
}

func TestMeterShadow(t *testing.T) {
	m := NewMeter()
	m.Watch("mlp", "1", "2")
	m.ObserveShadow("mlp", "1", "2", 0.1, nil)
	m.ObserveShadow("mlp", "1", "2", 0.3, nil)
	m.ObserveShadow("mlp", "1", "2", 0, errors.New("shadow timed out"))
	w := m.Snapshot("mlp", "2")
	if w.Shadows != 3 || w.ShadowErrors != 1 || math.Abs(w.ShadowDiff()-0.2) > 1e-9 {
		t.Fatalf("shadows %d errors %d diff %v, want 3, 1, 0.2", w.Shadows, w.ShadowErrors, w.ShadowDiff())
	}
	a := Analysis{Metrics: []Metric{{Name: ShadowDiff, Max: ptr(0.1)}, {Name: ErrorRate, Max: ptr(0.5)}, {Name: LatencyP99, Max: ptr(1.0)}}}
	if p, msg := Measure(a, w, Window{}, true); p != PhaseFailed || msg != "shadow_diff=0.2 out of bounds; error_rate=0.3333" {
		t.Fatalf("mirroring measurement %s %q", p, msg)
	}
}

// TestMeasure pins the evaluation rules: bounds, relative bounds, minimum samples, no
// data, dry runs, and the worst metric deciding.
func TestMeasure(t *testing.T) {
	win := func(req, errs uint64, lat time.Duration) Window {
		w := Window{Requests: req, Errors: errs}
		w.Latency[bucketOf(lat)] = req
		return w
	}
	good, bad, slow := win(100, 0, 20*time.Millisecond), win(100, 10, 20*time.Millisecond), win(100, 0, 200*time.Millisecond)
	p99 := Metric{Name: LatencyP99, Max: ptr(1.5), Relative: true}
	errs := Metric{Name: ErrorRate, Max: ptr(0.05)}
	for _, tc := range []struct {
		name     string
		a        Analysis
		cand     Window
		want     Phase
		wantNote string
	}{
		{"no metrics", Analysis{}, bad, PhaseSuccessful, ""},
		{"error rate ok", Analysis{Metrics: []Metric{errs}}, good, PhaseSuccessful, "error_rate=0"},
		{"error rate high", Analysis{Metrics: []Metric{errs}}, bad, PhaseFailed, "error_rate=0.1 out of bounds"},
		{"min bound", Analysis{Metrics: []Metric{{Name: ErrorRate, Min: ptr(0.5)}}}, bad, PhaseFailed, "error_rate=0.1 out of bounds"},
		{"slow relative", Analysis{Metrics: []Metric{p99}}, slow, PhaseFailed, "latency_p99=0.1929 (stable 0.01992) out of bounds"},
		{"too few samples", Analysis{MinSamples: 200, Metrics: []Metric{errs}}, bad, PhaseInconclusive, "error_rate: 100 samples < minSamples 200"},
		{"no data", Analysis{Metrics: []Metric{errs}}, Window{}, PhaseError, "error_rate: no data returned"},
		{"dry run", Analysis{Metrics: []Metric{{Name: ErrorRate, Max: ptr(0.05), DryRun: true}}}, bad, PhaseSuccessful, "error_rate=0.1 out of bounds (dry run)"},
		{"worst decides", Analysis{MinSamples: 10, Metrics: []Metric{p99, errs}}, bad, PhaseFailed, "latency_p99=0.01992 (stable 0.01992); error_rate=0.1 out of bounds"},
	} {
		if p, note := Measure(tc.a, tc.cand, good, false); p != tc.want || note != tc.wantNote {
			t.Errorf("%s: %s %q, want %s %q", tc.name, p, note, tc.want, tc.wantNote)
		}
	}
}

func TestBucketsCoverEveryDuration(t *testing.T) {
	prev := -1
	for d := time.Duration(0); d < time.Hour; d = d*9/8 + time.Microsecond {
		b := bucketOf(d)
		if b < prev || b >= numBuckets || lower(b) > d || (b+1 < numBuckets && lower(b+1) <= d) {
			t.Fatalf("%s: bucket %d [%s, %s), previous %d", d, b, lower(b), lower(b+1), prev)
		}
		prev = b
	}
	if b := bucketOf(time.Duration(math.MaxInt64)); b >= numBuckets {
		t.Fatalf("the longest duration maps to bucket %d of %d", b, numBuckets)
	}
}

// BenchmarkMeterFinished is the cost a request pays for the meter: watched (counted)
// and unwatched (skipped), serial and from all cores at once.
func BenchmarkMeterFinished(b *testing.B) {
	m := NewMeter()
	m.Watch("mlp", "1", "2")
	for _, tc := range []struct {
		name string
		rec  core.Record
	}{
		{"watched", core.Record{Model: "mlp", Version: "2", Total: 3 * time.Millisecond}},
		{"unwatched", core.Record{Model: "resnet", Version: "1", Total: 3 * time.Millisecond}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := tc.rec
			b.ReportAllocs()
			for b.Loop() {
				m.Finished(&r)
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := tc.rec
				for pb.Next() {
					m.Finished(&r)
				}
			})
		})
	}
}

func TestMeterIsSafeForConcurrentUse(t *testing.T) {
	m := NewMeter()
	m.Watch("mlp", "1")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				m.Finished(&core.Record{Model: "mlp", Version: "1", Total: time.Millisecond})
			}
		})
	}
	var total uint64
	wg.Go(func() {
		for range 100 {
			m.Watch("mlp", "2")
		}
	})
	for range 50 {
		total += m.Snapshot("mlp", "1").Requests
	}
	wg.Wait()
	total += m.Snapshot("mlp", "1").Requests
	if total != 4000 {
		t.Fatalf("counted %d requests over the snapshots, want 4000 (none lost or counted twice)", total)
	}
}
