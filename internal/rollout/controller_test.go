package rollout

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness runs a Controller over the fakes, with a real Meter.
type harness struct {
	c       *Controller
	store   *memStore
	traffic *routing
	models  *models
	meter   *Meter
	cancel  context.CancelFunc
	done    chan error
}

func run(t *testing.T, store *memStore, m *models, cfg Config) *harness {
	t.Helper()
	h := &harness{store: store, traffic: &routing{}, models: m, meter: NewMeter(), done: make(chan error, 1)}
	cfg.Store, cfg.Traffic, cfg.Models, cfg.Meter = store, h.traffic, m, h.meter
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	ctx, cancel := context.WithCancel(t.Context())
	h.cancel = cancel
	go func() { h.done <- c.Run(ctx) }()
	return h
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	if err := <-h.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// serve sends client requests routed by h's traffic until the returned function is
// called; that function returns when the candidate first failed (zero: never).
func (h *harness) serve(t *testing.T, b map[string]behaviour) func() time.Time {
	ctx, cancel := context.WithCancel(t.Context())
	firstErr := clients(ctx, h.meter, h.traffic, "mlp", "1", "2", b)
	return func() time.Time {
		cancel()
		return firstErr()
	}
}

// waitState sleeps (fake time) until endpoint mlp is in want, or fails after limit.
func (h *harness) waitState(t *testing.T, want State, limit time.Duration) Status {
	t.Helper()
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if s, _, ok := h.c.Status("mlp"); ok && s.State == want {
			return s
		}
	}
	s, hist, _ := h.c.Status("mlp")
	t.Fatalf("still %s (%s) after %s, want %s; history %+v", s.State, s.Reason, limit, want, hist)
	return s
}

// candidateWeights are the candidate's weights in the routing changes, in order.
func candidateWeights(calls []trafficCall) []int {
	var out []int
	for _, c := range calls {
		out = append(out, c.weights["2"])
	}
	return out
}

func canary(stepsPct []int, bake time.Duration, metrics ...Metric) Rollout {
	return Rollout{Endpoint: "mlp", Stable: "1", Candidate: "2",
		Strategy: Strategy{Canary: &Canary{Steps: stepsPct, Interval: Duration(bake)}},
		Analysis: Analysis{Interval: Duration(10 * time.Second), MinSamples: 20, Metrics: metrics}}
}

var healthy = map[string]behaviour{"1": {latency: 20 * time.Millisecond}, "2": {latency: 20 * time.Millisecond}}

var guard = []Metric{{Name: ErrorRate, Max: ptr(0.01)}, {Name: LatencyP99, Max: ptr(1.5), Relative: true}}

func TestControllerCanaryPromotes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := run(t, newMemStore(), &models{delay: 2 * time.Second}, Config{})
		defer h.stop(t)
		stopClients := h.serve(t, healthy)
		defer stopClients()
		if err := h.c.Start(t.Context(), canary([]int{10, 50, 100}, 30*time.Second, guard...)); err != nil {
			t.Fatal(err)
		}
		h.waitState(t, Succeeded, 5*time.Minute)
		if got, want := candidateWeights(h.traffic.history()), []int{0, 10, 50, 100}; !slices.Equal(got, want) {
			t.Fatalf("candidate weights %v, want %v", got, want)
		}
		time.Sleep(DefaultScaleDownDelay + time.Second)
		if got := h.models.unloaded(); !slices.Equal(got, []string{"1"}) {
			t.Fatalf("unloaded %v, want the old stable 1 after the scale-down delay", got)
		}
		if !stopClients().IsZero() {
			t.Fatal("a healthy candidate failed a request")
		}
		s := h.store.status(t, "mlp")
		_, hist, _ := h.c.Status("mlp")
		if s.State != Succeeded || s.Analysis.Measurements < 6 || s.Analysis.Failed+s.Analysis.Inconclusive+s.Analysis.Errors > 0 {
			t.Fatalf("stored status %s analysis %+v; want Succeeded after clean measurements", s.State, s.Analysis)
		}
		if len(hist) < 5 || len(h.store.events) < len(hist) {
			t.Fatalf("history %d changes, %d stored events; want every change kept and stored", len(hist), len(h.store.events))
		}
	})
}

// TestControllerRollsBackABadCandidate: a candidate that fails some requests, or is
// slow, is rolled back within interval*(failureLimit+1) + 1s of its first bad request,
// and gets no traffic after that.
func TestControllerRollsBackABadCandidate(t *testing.T) {
	erring := map[string]behaviour{"1": healthy["1"], "2": {latency: 20 * time.Millisecond, fails: func(n int, _ time.Time) bool { return n%3 == 0 }}}
	slow := map[string]behaviour{"1": healthy["1"], "2": {latency: 90 * time.Millisecond}}
	for _, tc := range []struct {
		name         string
		failureLimit int
		b            map[string]behaviour
	}{
		{"errors", 0, erring},
		{"errors, failureLimit 2", 2, erring},
		{"slow p99", 0, slow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := run(t, newMemStore(), &models{delay: time.Second}, Config{})
				defer h.stop(t)
				b := tc.b
				if tc.name == "slow p99" { // a slow candidate's first bad request is its first request
					b = map[string]behaviour{"1": b["1"], "2": {latency: b["2"].latency, fails: func(int, time.Time) bool { return false }}}
				}
				stopClients := h.serve(t, b)
				defer stopClients()
				r := canary([]int{10, 50, 100}, time.Minute, guard...)
				r.Analysis.FailureLimit = tc.failureLimit
				if err := h.c.Start(t.Context(), r); err != nil {
					t.Fatal(err)
				}
				h.waitState(t, Aborting, 5*time.Minute)
				calls := h.traffic.history()
				firstBad := stopClients()
				if firstBad.IsZero() { // slow: bad from the first request it got
					firstBad = calls[1].at
				}
				var abortAt time.Time
				for i, c := range calls {
					if i > 0 && c.weights["2"] == 0 && calls[i-1].weights["2"] > 0 {
						abortAt = c.at
					}
					if !abortAt.IsZero() && c.weights["2"] > 0 {
						t.Fatalf("traffic %v given to the candidate after the rollback", c.weights)
					}
				}
				limit := r.Analysis.Interval.D()*time.Duration(tc.failureLimit+1) + time.Second
				if abortAt.IsZero() || abortAt.Sub(firstBad) > limit {
					t.Fatalf("rolled back %s after the first bad request (calls %v), want within %s", abortAt.Sub(firstBad), candidateWeights(calls), limit)
				}
				if got := calls[len(calls)-1].weights; got["1"] != 100 {
					t.Fatalf("last routing %v, want stable 100", got)
				}
				h.waitState(t, Aborted, DefaultScaleDownDelay+time.Second)
				time.Sleep(time.Second) // the unload runs beside the loop
				if got := h.models.unloaded(); !slices.Equal(got, []string{"2"}) {
					t.Fatalf("unloaded %v, want only the candidate", got)
				}
			})
		})
	}
}

func TestControllerCandidateLoadFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := run(t, newMemStore(), &models{delay: time.Second, fail: map[string]bool{"2": true}}, Config{})
		defer h.stop(t)
		if err := h.c.Start(t.Context(), canary([]int{50, 100}, time.Minute)); err != nil {
			t.Fatal(err)
		}
		s := h.waitState(t, Aborted, time.Minute)
		if s.Reason != "candidate failed to load: onnxruntime: model.onnx: invalid graph" {
			t.Errorf("reason %q", s.Reason)
		}
		for _, c := range h.traffic.history() {
			if c.weights["1"] != 100 {
				t.Fatalf("routing %v while the candidate never loaded", c.weights)
			}
		}
		if slices.Contains(h.models.unloaded(), "1") {
			t.Fatal("the stable version was unloaded")
		}
	})
}

func TestControllerSecondStartConflicts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := run(t, newMemStore(), &models{delay: time.Second}, Config{})
		defer h.stop(t)
		r := canary([]int{50, 100}, time.Minute)
		if err := h.c.Start(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		r.Candidate = "3"
		if err := h.c.Start(t.Context(), r); !errors.Is(err, ErrConflict) {
			t.Fatalf("second Start: %v, want ErrConflict", err)
		}
		if err := h.c.Abort(t.Context(), "mlp"); err != nil {
			t.Fatal(err)
		}
		if err := h.c.Abort(t.Context(), "mlp"); err != nil {
			t.Fatalf("Abort again: %v, want nil (idempotent)", err)
		}
		h.waitState(t, Aborted, time.Minute)
		if err := h.c.Start(t.Context(), r); err != nil {
			t.Fatalf("Start after the abort finished: %v", err)
		}
		if err := h.c.Promote(t.Context(), "other"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Promote of an unknown endpoint: %v, want ErrNotFound", err)
		}
		bad := r
		bad.Strategy = Strategy{Steps: []Step{{SetWeight: &SetWeight{Percent: 120}}}}
		if err := h.c.Start(t.Context(), bad); err == nil || err.Error() != "rollout mlp: strategy.steps[0].setWeight.percent: must be 0..100, got 120" {
			t.Fatalf("Start with a bad weight: %v", err)
		}
	})
}

// TestControllerResumesFromTheStore: a controller stopped at 50% and started again
// after its bake ran out re-applies 50% (never more), reloads the candidate, and
// raises traffic only after a fresh measurement.
func TestControllerResumesFromTheStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		h := run(t, store, &models{delay: time.Second}, Config{})
		stopClients := h.serve(t, healthy)
		if err := h.c.Start(t.Context(), canary([]int{10, 50, 100}, time.Minute, guard...)); err != nil {
			t.Fatal(err)
		}
		for s, _, _ := h.c.Status("mlp"); s.Weights["2"] != 50; s, _, _ = h.c.Status("mlp") {
			time.Sleep(100 * time.Millisecond)
		}
		h.stop(t)
		stopClients()

		time.Sleep(5 * time.Minute) // down for longer than the bake
		restarted := time.Now()
		h2 := run(t, store, &models{delay: time.Second}, Config{})
		defer h2.stop(t)
		stopClients2 := h2.serve(t, healthy)
		defer stopClients2()
		h2.waitState(t, Succeeded, 5*time.Minute)
		calls := h2.traffic.history()
		if got := candidateWeights(calls); !slices.Equal(got, []int{50, 100}) {
			_, hist, _ := h2.c.Status("mlp")
			t.Logf("history %+v", hist)
			t.Fatalf("after restart the candidate went %v, want [50 100]", got)
		}
		if d := calls[1].at.Sub(restarted); d < 10*time.Second {
			t.Fatalf("raised to 100 %s after the restart, before a fresh analysis interval", d)
		}
		if h2.models.loads[0] != "2" {
			t.Fatalf("restart loaded %v, want the candidate checked", h2.models.loads)
		}
		if !stopClients2().IsZero() {
			t.Fatal("healthy candidate failed")
		}
	})
}

func TestControllerBlueGreen(t *testing.T) {
	bg := Rollout{Endpoint: "mlp", Stable: "1", Candidate: "2",
		Strategy: Strategy{BlueGreen: &BlueGreen{Bake: Duration(30 * time.Second), RollbackWindow: Duration(5 * time.Minute)}},
		Analysis: Analysis{Interval: Duration(10 * time.Second), Metrics: guard}}
	for _, alarm := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			h := run(t, newMemStore(), &models{delay: 3 * time.Second}, Config{})
			defer h.stop(t)
			stopClients := h.serve(t, healthy)
			defer stopClients()
			if err := h.c.Start(t.Context(), bg); err != nil {
				t.Fatal(err)
			}
			h.waitState(t, FinalBake, time.Minute)
			if got := candidateWeights(h.traffic.history()); !slices.Equal(got, []int{0, 100}) {
				t.Fatalf("blue/green switch went %v, want [0 100] (one change)", got)
			}
			if !alarm {
				h.waitState(t, Succeeded, 6*time.Minute)
				time.Sleep(DefaultScaleDownDelay + time.Second)
				if got := h.models.unloaded(); !slices.Equal(got, []string{"1"}) {
					t.Fatalf("unloaded %v, want blue after the window", got)
				}
			} else {
				time.Sleep(2 * time.Minute) // inside the rollback window
				if err := h.c.Alarm(t.Context(), "mlp", "Invocation5XXErrors"); err != nil {
					t.Fatal(err)
				}
				calls := h.traffic.history()
				if last := calls[len(calls)-1]; last.weights["1"] != 100 || !last.at.Equal(time.Now()) {
					t.Fatalf("after the alarm routing is %v at %v, want blue 100 at once", last.weights, last.at)
				}
				h.waitState(t, Aborted, time.Minute)
				if slices.Contains(h.models.unloaded(), "1") {
					t.Fatal("blue unloaded during a rollback")
				}
			}
			if !stopClients().IsZero() {
				t.Fatal("a healthy candidate failed a request")
			}
		})
	}
}

// observer records what the metrics wiring would export.
type observer struct {
	mu     sync.Mutex
	states []State
	weight []int
}

func (o *observer) RolloutChanged(_ string, s Status, c Change) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.states = append(o.states, c.To)
	o.weight = append(o.weight, s.Weights["2"])
}

// TestControllerPauseResumeAndObserver: a manual pause holds a canary past its bake,
// resume goes on, promote is idempotent, and the observer sees every change.
func TestControllerPauseResumeAndObserver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &observer{}
		h := run(t, newMemStore(), &models{delay: time.Second}, Config{Observer: o})
		defer h.stop(t)
		stopClients := h.serve(t, healthy)
		defer stopClients()
		if err := h.c.Start(t.Context(), canary([]int{10, 50}, time.Minute, guard...)); err != nil {
			t.Fatal(err)
		}
		h.waitState(t, Progressing, time.Minute)
		for range 2 {
			if err := h.c.Pause(t.Context(), "mlp"); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Minute)
		if s, _, _ := h.c.Status("mlp"); s.State != Paused || s.Reason != ReasonManual || s.Weights["2"] != 10 {
			t.Fatalf("after a pause: %s (%s) at %d%%, want Paused (Manual) at 10%%", s.State, s.Reason, s.Weights["2"])
		}
		if err := h.c.Resume(t.Context(), "mlp"); err != nil {
			t.Fatal(err)
		}
		for s, _, _ := h.c.Status("mlp"); s.Weights["2"] != 50; s, _, _ = h.c.Status("mlp") {
			time.Sleep(time.Second)
		}
		for range 2 {
			if err := h.c.Promote(t.Context(), "mlp"); err != nil {
				t.Fatal(err)
			}
		}
		h.waitState(t, Succeeded, time.Second)
		if got := candidateWeights(h.traffic.history()); !slices.Equal(got, []int{0, 10, 50, 100}) {
			t.Fatalf("candidate weights %v, want [0 10 50 100] (one promotion)", got)
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.states[0] != Provisioning || o.states[len(o.states)-1] != Succeeded || !slices.Contains(o.states, Paused) || o.weight[len(o.weight)-1] != 100 {
			t.Fatalf("observer saw %v / %v", o.states, o.weight)
		}
	})
}

// TestControllerStoreDown: while the store refuses writes, no change that raises the
// candidate's traffic happens, but an abort still sends everything back at once.
// TestControllerStoppedWhileStarting: a Run cancelled before it has read the store
// is a clean stop, as one cancelled later is (a server told to stop at once).
func TestControllerStoppedWhileStarting(t *testing.T) {
	c, err := New(Config{Store: newMemStore(), Traffic: &routing{}, Models: &models{}, Meter: NewMeter()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Run(ctx); err != nil {
		t.Fatalf("Run cancelled before it started: %v, want nil", err)
	}
}

func TestControllerStoreDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		h := run(t, store, &models{delay: time.Second}, Config{})
		defer h.stop(t)
		stopClients := h.serve(t, healthy)
		defer stopClients()
		if err := h.c.Start(t.Context(), canary([]int{10, 50, 100}, time.Minute, guard...)); err != nil {
			t.Fatal(err)
		}
		h.waitState(t, Progressing, time.Minute)
		store.setDown(true)
		time.Sleep(5 * time.Minute)
		if got := candidateWeights(h.traffic.history()); !slices.Equal(got, []int{0, 10}) {
			t.Fatalf("with the store down the candidate went %v, want it held at 10", got)
		}
		if err := h.c.Abort(t.Context(), "mlp"); err != nil {
			t.Fatalf("Abort with the store down: %v, want it applied anyway", err)
		}
		if got := candidateWeights(h.traffic.history()); !slices.Equal(got, []int{0, 10, 0}) {
			t.Fatalf("abort with the store down: %v, want the candidate back to 0", got)
		}
		store.setDown(false)
		h.waitState(t, Aborted, time.Minute)
		if s := store.status(t, "mlp"); s.State != Aborted {
			t.Fatalf("stored %s once the store is back, want Aborted", s.State)
		}
	})
}

// TestControllerShadowThenCanary: the mirror phase judges the shadow's output
// difference; a candidate that disagrees with stable is aborted before it ever gets
// real traffic, one that agrees goes on to the canary.
func TestControllerShadowThenCanary(t *testing.T) {
	r := Rollout{Endpoint: "mlp", Stable: "1", Candidate: "2",
		Strategy: Strategy{ShadowThenCanary: &ShadowThenCanary{MirrorPercent: 20, MirrorDuration: Duration(time.Minute),
			Canary: Canary{Steps: []int{50, 100}, Interval: Duration(time.Minute)}}},
		Analysis: Analysis{Interval: Duration(10 * time.Second), MinSamples: 10, Metrics: append([]Metric{{Name: ShadowDiff, Max: ptr(0.05)}}, guard...)}}
	for _, tc := range []struct {
		diff float64
		want State
	}{{0.01, Succeeded}, {0.5, Aborted}} {
		synctest.Test(t, func(t *testing.T) {
			h := run(t, newMemStore(), &models{delay: time.Second}, Config{})
			defer h.stop(t)
			b := map[string]behaviour{"1": healthy["1"], "2": {latency: 20 * time.Millisecond, diff: tc.diff}}
			stopClients := h.serve(t, b)
			defer stopClients()
			if err := h.c.Start(t.Context(), r); err != nil {
				t.Fatal(err)
			}
			s := h.waitState(t, tc.want, 5*time.Minute)
			calls := h.traffic.history()
			if calls[1].mirror == nil || calls[1].mirror.Percent != 20 || calls[1].weights["2"] != 0 {
				t.Fatalf("first change after load %+v, want a 20%% mirror beside stable 100", calls[1])
			}
			if tc.want == Aborted {
				if s.Analysis.Phase != PhaseFailed || slices.ContainsFunc(calls, func(c trafficCall) bool { return c.weights["2"] > 0 }) {
					t.Fatalf("a disagreeing shadow: analysis %s, routing %v; want Failed and no real traffic", s.Analysis.Phase, candidateWeights(calls))
				}
			}
		})
	}
}
