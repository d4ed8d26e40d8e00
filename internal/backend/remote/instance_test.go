package remote

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/tensor"
)

// protocols runs a test over REST and over gRPC against the same fake upstream.
func protocols(t *testing.T, f func(t *testing.T, up *fakeUpstream, url string)) {
	for _, p := range []struct {
		name string
		url  func(*fakeUpstream) string
	}{{"REST", (*fakeUpstream).restURL}, {"gRPC", (*fakeUpstream).grpcURL}} {
		t.Run(p.name, func(t *testing.T) {
			up := newFakeUpstream(t)
			f(t, up, p.url(up))
		})
	}
}

func TestExecuteForwardsTheBatch(t *testing.T) {
	protocols(t, func(t *testing.T, up *fakeUpstream, url string) {
		in := openInstance(t, New(nil), remoteConfig(url))
		x := echoInput(3)
		for _, tc := range []struct {
			name string
			want []string
			got  []string // output names, in order
		}{
			{"all outputs", nil, []string{"y", "n"}},
			{"one output", []string{"y"}, []string{"y"}},
			{"outputs in the order asked", []string{"n", "y"}, []string{"n", "y"}},
		} {
			outs, err := in.Execute(context.Background(), x, tc.want)
			if err != nil {
				t.Fatalf("%s: Execute: %v", tc.name, err)
			}
			var names []string
			for _, o := range outs {
				names = append(names, o.Name)
				if o.Name == "y" {
					if diff := cmp.Diff(x[0].Data, o.Data); diff != "" || !o.Shape.Equal(x[0].Shape) {
						t.Errorf("%s: y = %v %v, want the input back (-want +got):\n%s", tc.name, o.Shape, o.Data, diff)
					}
				}
			}
			if diff := cmp.Diff(tc.got, names); diff != "" {
				t.Errorf("%s: outputs (-want +got):\n%s", tc.name, diff)
			}
		}
	})
}

func TestExecuteReadsJSONAnswers(t *testing.T) {
	up := newFakeUpstream(t)
	up.json = true // an upstream without the binary extension
	in := openInstance(t, New(nil), remoteConfig(up.restURL()))
	x := echoInput(2)
	outs, err := in.Execute(context.Background(), x, []string{"y", "n"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(x[0].Data, outs[0].Data); diff != "" {
		t.Errorf("y from JSON data (-want +got):\n%s", diff)
	}
	if n, _ := outs[1].Float64s(); len(n) != 2 || n[0] != 0 {
		t.Errorf("n from JSON data = %v, want [0 0]", n)
	}
}

func TestRetries(t *testing.T) {
	protocols(t, func(t *testing.T, up *fakeUpstream, url string) {
		for _, tc := range []struct {
			name      string
			fault     fault
			retries   string
			wantTries int64
			wantErr   string
			invalid   bool // the error reads as the client's fault (400 at our edge)
			busy      bool // the error reads as the upstream being down (503)
		}{
			{"two 503s then success, two retries", failing(2, 503), "2", 3, "", false, false},
			{"three 503s, two retries: gives up", failing(3, 503), "2", 3, "gave up after 3 tries", false, true},
			{"a 500 is retried too", failing(1, 500), "1", 2, "", false, false},
			{"a 400 is not retried", failing(-1, 400), "5", 1, "injected failure", true, false},
			{"no retries configured", failing(-1, 503), "0", 1, "injected failure", false, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				up.tries.Store(0)
				up.setFault(tc.fault)
				in := openInstance(t, New(nil), remoteConfig(url, "retries", tc.retries, "breaker_failures", "0"))
				_, err := in.Execute(context.Background(), echoInput(1), nil)
				if got := up.tries.Load(); got != tc.wantTries {
					t.Errorf("upstream saw %d tries, want %d", got, tc.wantTries)
				}
				if tc.wantErr == "" {
					if err != nil {
						t.Fatalf("Execute: %v", err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Execute error = %v, want one containing %q", err, tc.wantErr)
				}
				var e *Error
				if !errors.As(err, &e) || e.InvalidInput() != tc.invalid || e.Unavailable() != tc.busy {
					t.Fatalf("Execute error %v: invalid %v busy %v, want %v %v", err, e.InvalidInput(), e.Unavailable(), tc.invalid, tc.busy)
				}
			})
		}
	})
}

func TestPerTryTimeout(t *testing.T) {
	protocols(t, func(t *testing.T, up *fakeUpstream, url string) {
		up.setFault(slowOn(func(n int64) bool { return n == 0 }, time.Minute)) // the first try hangs
		in := openInstance(t, New(nil), remoteConfig(url, "timeout", "100ms", "retries", "1"))
		start := time.Now()
		if _, err := in.Execute(context.Background(), echoInput(1), nil); err != nil {
			t.Fatalf("Execute: %v (the retry should have answered)", err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("Execute took %v: the per-try timeout of 100ms did not end the first try", took)
		}
		up.setFault(slowOn(func(int64) bool { return true }, time.Minute))
		in2 := openInstance(t, New(nil), remoteConfig(url, "timeout", "50ms", "retries", "0"))
		_, err := in2.Execute(context.Background(), echoInput(1), nil)
		var e *Error
		if !errors.As(err, &e) || !e.Unavailable() || !strings.Contains(err.Error(), "per-try timeout (50ms)") {
			t.Fatalf("Execute on a hung upstream: %v, want an unavailable per-try timeout error", err)
		}
	})
}

// TestRetryBudgetBoundsExtraLoad: against an upstream that always fails, retries (3 per
// request) are cut down to the budget: 100 requests make at most 100 + 10 + 100×0.2 tries,
// not 400.
func TestRetryBudgetBoundsExtraLoad(t *testing.T) {
	up := newFakeUpstream(t)
	up.setFault(failing(-1, 503))
	in := openInstance(t, New(nil), remoteConfig(up.restURL(), "retries", "3", "retry_budget", "0.2", "breaker_failures", "0"))
	exhausted := 0
	for range 100 {
		_, err := in.Execute(context.Background(), echoInput(1), nil)
		if err == nil {
			t.Fatal("Execute succeeded against a failing upstream")
		}
		if strings.Contains(err.Error(), "retry budget of 0.2 exhausted") {
			exhausted++
		}
	}
	tries := up.tries.Load()
	if tries < 120 || tries > 130 {
		t.Errorf("upstream saw %d tries for 100 requests, want 120..130 (budget 0.2 plus the reserve of 10)", tries)
	}
	if exhausted < 70 {
		t.Errorf("%d errors said the retry budget was exhausted, want most of the 100", exhausted)
	}
}

func TestHedgeAfterFixedDelay(t *testing.T) {
	protocols(t, func(t *testing.T, up *fakeUpstream, url string) {
		up.setFault(slowOn(func(n int64) bool { return n == 0 }, time.Minute)) // the first try is stuck
		in := openInstance(t, New(nil), remoteConfig(url, "hedge", "20ms"))
		outs, err := in.Execute(context.Background(), echoInput(1), []string{"n"})
		if err != nil {
			t.Fatalf("Execute: %v", err)
		}
		if n, _ := outs[0].Float64s(); n[0] != 1 {
			t.Errorf("answer came from try %v, want the hedge (try 1)", n[0])
		}
		// The stuck try must have been cancelled when the hedge won.
		waitFor(t, "the losing try to be cancelled", func() bool { return up.cancel.Load() == 1 })
	})
}

func TestHedgeAtObservedQuantile(t *testing.T) {
	up := newFakeUpstream(t)
	in := openInstance(t, New(nil), remoteConfig(up.restURL(), "hedge", "p95"))
	slow := int64(-1)
	up.setFault(func(ctx context.Context, n int64) *injected {
		if n == slow {
			return slowOn(func(int64) bool { return true }, time.Minute)(ctx, n)
		}
		return nil
	})
	// Before minSamples latencies are known there is no hedge: a slow try is waited for.
	slow = 0
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := in.Execute(ctx, echoInput(1), nil)
	cancel()
	if err == nil || up.tries.Load() != 1 {
		t.Fatalf("first request: err %v after %d tries; want it to wait (no hedge yet) until the caller's deadline", err, up.tries.Load())
	}
	for range minSamples {
		if _, err := in.Execute(context.Background(), echoInput(1), nil); err != nil {
			t.Fatal(err)
		}
	}
	slow = up.tries.Load() // the next request's first try hangs
	start := time.Now()
	outs, err := in.Execute(context.Background(), echoInput(1), []string{"n"})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if n, _ := outs[0].Float64s(); int64(n[0]) != slow+1 {
		t.Errorf("answer came from try %v, want the hedge (try %d)", n[0], slow+1)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("hedged request took %v", took)
	}
}

func TestHedgeNeedsBudget(t *testing.T) {
	up := newFakeUpstream(t)
	up.setFault(slowOn(func(int64) bool { return true }, 10*time.Millisecond))
	in := openInstance(t, New(nil), remoteConfig(up.restURL(), "hedge", "1ms", "retry_budget", "0.1"))
	for range 100 {
		if _, err := in.Execute(context.Background(), echoInput(1), nil); err != nil {
			t.Fatal(err)
		}
	}
	if tries := up.tries.Load(); tries > 100+10+10 {
		t.Errorf("100 requests hedged after 1ms made %d tries; the budget allows at most 120", tries)
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	protocols(t, func(t *testing.T, up *fakeUpstream, url string) {
		clock := newFakeClock()
		b := New(nil)
		b.now = clock.now
		in := openInstance(t, b, remoteConfig(url, "retries", "0", "breaker_failures", "3", "breaker_cooldown", "10s"))
		call := func() error { _, err := in.Execute(context.Background(), echoInput(1), nil); return err }

		up.setFault(failing(-1, 503))
		for i := range 3 {
			if err := call(); err == nil || errors.Is(err, ErrCircuitOpen) {
				t.Fatalf("failure %d: err = %v, want the upstream's failure", i+1, err)
			}
		}
		err := call()
		var open *CircuitOpenError
		if !errors.As(err, &open) || !open.Unavailable() || !strings.Contains(err.Error(), "upstream circuit open") {
			t.Fatalf("after 3 failures: err = %v, want upstream circuit open", err)
		}
		if up.tries.Load() != 3 {
			t.Fatalf("upstream saw %d tries; an open circuit must not call it", up.tries.Load())
		}

		clock.advance(10 * time.Second) // half-open: one probe, which fails
		if err := call(); errors.Is(err, ErrCircuitOpen) || up.tries.Load() != 4 {
			t.Fatalf("probe: err %v, tries %d; want the probe sent", err, up.tries.Load())
		}
		if err := call(); !errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("after a failed probe: err = %v, want the circuit open again", err)
		}

		up.setFault(nil) // the upstream recovers
		clock.advance(10 * time.Second)
		for i := range 5 {
			if err := call(); err != nil {
				t.Fatalf("request %d after recovery: %v", i, err)
			}
		}
	})
}

func TestFlappingUpstreamKeepsTheCircuitClosed(t *testing.T) {
	up := newFakeUpstream(t)
	up.setFault(func(_ context.Context, n int64) *injected { // every other try fails
		if n%2 == 0 {
			return &injected{status: 503, msg: "flap"}
		}
		return nil
	})
	in := openInstance(t, New(nil), remoteConfig(up.restURL(), "retries", "1", "retry_budget", "1", "breaker_failures", "2"))
	for i := range 50 {
		if _, err := in.Execute(context.Background(), echoInput(1), nil); err != nil {
			t.Fatalf("request %d: %v (a retry should absorb each single failure)", i, err)
		}
	}
	if s := in.u.breaker.snapshot(); s != closed {
		t.Fatalf("breaker %v, want closed: failures never came twice in a row", s)
	}
}

func TestReadinessFollowsTheUpstream(t *testing.T) {
	protocols(t, func(t *testing.T, up *fakeUpstream, url string) {
		up.setReady(false)
		in := openInstance(t, New(nil), remoteConfig(url, "health_interval", "10ms"))
		if err := in.Ready(); err == nil { // checked once before Open returns
			t.Fatal("Ready() = nil right after Open against a not-ready upstream")
		} else if !strings.Contains(err.Error(), "health check") {
			t.Fatalf("Ready() = %v, want it to name the health check", err)
		}
		up.setReady(true)
		waitFor(t, "the instance to become ready", func() bool { return in.Ready() == nil })
		up.setReady(false)
		waitFor(t, "the instance to become not ready", func() bool { return in.Ready() != nil })
	})
}

func TestInstancesShareTheUpstream(t *testing.T) {
	up := newFakeUpstream(t)
	b := New(nil)
	cfg := remoteConfig(up.restURL(), "health_interval", "1h")
	a, _ := b.Open(context.Background(), "v1", cfg)
	c, _ := b.Open(context.Background(), "v1", cfg)
	d, _ := b.Open(context.Background(), "v2", cfg)
	if a.u != c.u || a.u == d.u {
		t.Fatal("instances of one version must share one upstream, and only they")
	}
	for _, in := range []*Instance{a, c, d, a} { // closing twice is harmless
		in.Close()
	}
	if len(b.shared) != 0 {
		t.Fatalf("%d upstreams left open after every instance closed", len(b.shared))
	}
}

func TestInspect(t *testing.T) {
	protocols(t, func(t *testing.T, up *fakeUpstream, url string) {
		io, err := New(nil).Inspect(context.Background(), remoteConfig(url))
		if err != nil {
			t.Fatal(err)
		}
		want := modelconfig.IO{
			Inputs:       []modelconfig.TensorInfo{{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{-1, 4}}},
			Outputs:      []modelconfig.TensorInfo{{Name: "y", DType: tensor.FP32, Shape: tensor.Shape{-1, 4}}, {Name: "n", DType: tensor.Int64, Shape: tensor.Shape{-1, 1}}},
			MaxBatchSize: 8,
		}
		if diff := cmp.Diff(want, io); diff != "" {
			t.Errorf("Inspect (-want +got):\n%s", diff)
		}
	})
}

func TestInspectUnreachableUpstreamFailsClearly(t *testing.T) {
	up := newFakeUpstream(t)
	url := up.restURL()
	up.rest.Close() // nothing listens there now
	_, err := New(nil).Inspect(context.Background(), remoteConfig(url, "timeout", "2s"))
	if err == nil || !strings.Contains(err.Error(), "reading the upstream's model metadata") || !strings.Contains(err.Error(), url) {
		t.Fatalf("Inspect of a stopped upstream: %v, want a clear error naming %s", err, url)
	}
}

func TestInspectCompleteConfigNeedsNoUpstream(t *testing.T) {
	cfg := remoteConfig("http://127.0.0.1:1") // nothing listens on port 1
	cfg.MaxBatchSize = 8
	cfg.Input = append(cfg.Input, &inference.ModelInput{Name: "x", DataType: inference.DataType_TYPE_FP32, Dims: []int64{4}})
	cfg.Output = append(cfg.Output, &inference.ModelOutput{Name: "y", DataType: inference.DataType_TYPE_FP32, Dims: []int64{4}})
	io, err := New(nil).Inspect(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Inspect of a complete config: %v", err)
	}
	if err := modelconfig.AutoComplete(cfg, io, true); err != nil {
		t.Fatalf("AutoComplete against the config's own IO: %v", err)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
