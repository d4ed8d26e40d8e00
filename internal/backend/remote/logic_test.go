package remote

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/inference"
)

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		params  map[string]string
		check   func(Options) bool
		wantErr []string // substrings, all of which the error must contain
	}{
		{"defaults for a REST url", map[string]string{"url": "http://127.0.0.1:8000"}, func(o Options) bool {
			return o.Protocol == REST && o.Addr == "127.0.0.1:8000" && o.Model == "r" && o.Timeout == DefaultTimeout &&
				o.Retries == DefaultRetries && o.RetryBudget == DefaultRetryBudget && o.Hedge.Off() &&
				o.BreakerFailures == DefaultBreakerFailures && o.HealthInterval == DefaultHealthInterval
		}, nil},
		{"every parameter", map[string]string{"url": "grpc://up:8001", "model_name": "m", "model_version": "3",
			"timeout": "2s", "retries": "4", "retry_budget": "0.5", "hedge": "p95", "breaker_failures": "0",
			"breaker_cooldown": "1m", "health_interval": "off"}, func(o Options) bool {
			return o.Protocol == GRPC && o.Addr == "up:8001" && o.Model == "m" && o.Version == "3" && o.Timeout == 2*time.Second &&
				o.Retries == 4 && o.RetryBudget == 0.5 && o.Hedge.Quantile == 0.95 && o.BreakerFailures == 0 &&
				o.BreakerCooldown == time.Minute && o.HealthInterval == 0
		}, nil},
		{"a fixed hedge delay", map[string]string{"url": "http://h:1", "hedge": "20ms"}, func(o Options) bool {
			return o.Hedge.After == 20*time.Millisecond && o.Hedge.String() == "20ms"
		}, nil},
		{"no url", map[string]string{}, nil, []string{`parameters["url"]: must name the upstream`}},
		{"a url with a path", map[string]string{"url": "http://h:1/v2"}, nil, []string{`give only scheme, host and port`}},
		{"a url without a port", map[string]string{"url": "http://h"}, nil, []string{`needs host:port`}},
		{"an unknown scheme", map[string]string{"url": "ftp://h:1"}, nil, []string{`scheme "ftp"`}},
		{"https and grpcs are TLS", map[string]string{"url": "grpcs://h:1", "tls_server_name": "up.internal"}, func(o Options) bool {
			return o.Protocol == GRPC && o.TLS != nil && o.TLS.ServerName == "up.internal" && o.TLS.RootCAs == nil
		}, nil},
		{"TLS settings need a TLS url", map[string]string{"url": "http://h:1", "tls_ca_file": "/ca.pem"}, nil,
			[]string{`parameters["tls_ca_file"]: TLS settings need an https:// or grpcs:// url, not "http://h:1"`}},
		{"bad TLS files", map[string]string{"url": "https://h:1", "tls_ca_file": "/nonexistent/ca.pem", "tls_cert_file": "/c.pem"}, nil,
			[]string{`parameters["tls_ca_file"]: open /nonexistent/ca.pem: no such file or directory`,
				`parameters["tls_cert_file"], parameters["tls_key_file"]: a client certificate needs both`}},
		{"every bad value at once", map[string]string{"url": "http://h:1", "timeout": "soon", "retries": "-1",
			"retry_budget": "2", "hedge": "p100", "breaker_cooldown": "0s", "model_version": "v1"}, nil,
			[]string{`parameters["timeout"]: must be a positive duration such as "2s", got "soon"`,
				`parameters["retries"]: must be a whole number from 0 to 100, got "-1"`,
				`parameters["retry_budget"]: must be a fraction between 0 and 1, got "2"`,
				`parameters["hedge"]: a quantile must be p1 .. p99.9, got "p100"`,
				`parameters["breaker_cooldown"]: must be a positive duration such as "2s", got "0s"`,
				`parameters["model_version"]: must be a version number, got "v1"`}},
		{"a misspelt parameter", map[string]string{"url": "http://h:1", "retires": "3"}, nil,
			[]string{`parameters["retires"]: not a remote backend parameter`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &inference.ModelConfig{Name: "r", Parameters: map[string]*inference.ModelParameter{}}
			for k, v := range tc.params {
				cfg.Parameters[k] = &inference.ModelParameter{StringValue: v}
			}
			o, err := ParseOptions(cfg)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("ParseOptions(%v) = %+v, want an error", tc.params, o)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("ParseOptions(%v) error %q does not contain %q", tc.params, err, w)
					}
				}
				return
			}
			if err != nil || !tc.check(o) {
				t.Fatalf("ParseOptions(%v) = %+v, %v", tc.params, o, err)
			}
		})
	}
}

func TestBreaker(t *testing.T) {
	clock := newFakeClock()
	b := newBreaker(3, 10*time.Second, clock.now)
	try := func(o outcome) error {
		tk, err := b.allow()
		if err != nil {
			return err
		}
		b.done(tk, o, "boom")
		return nil
	}
	steps := []struct {
		name    string
		advance time.Duration
		outcome outcome
		refused bool
		want    breakerState
	}{
		{"a failure is counted", 0, failure, false, closed},
		{"a refusal resets the count (the upstream answered)", 0, refused, false, closed},
		{"failure 1 of 3", 0, failure, false, closed},
		{"failure 2 of 3", 0, failure, false, closed},
		{"failure 3 of 3 opens", 0, failure, false, open},
		{"open refuses tries", 5 * time.Second, success, true, open},
		{"after the cooldown a failed probe reopens", 5 * time.Second, failure, false, open},
		{"the cooldown starts again", 9 * time.Second, success, true, open},
		{"an abandoned probe lets the next try probe", time.Second, abandoned, false, open},
		{"a successful probe closes", 0, success, false, closed},
		{"closed again: failures count from zero", 0, failure, false, closed},
	}
	for _, s := range steps {
		clock.advance(s.advance)
		err := try(s.outcome)
		if got := err != nil; got != s.refused {
			t.Fatalf("%s: refused = %v (%v), want %v", s.name, got, err, s.refused)
		}
		if err != nil && !errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("%s: error %v is not ErrCircuitOpen", s.name, err)
		}
		if got := b.snapshot(); got != s.want {
			t.Fatalf("%s: state %v, want %v", s.name, got, s.want)
		}
	}
}

func TestBreakerLetsOneProbeAtATime(t *testing.T) {
	clock := newFakeClock()
	b := newBreaker(1, time.Second, clock.now)
	tk, _ := b.allow()
	b.done(tk, failure, "down")
	clock.advance(time.Second)
	probe, err := b.allow()
	if err != nil || !probe.probe {
		t.Fatalf("after the cooldown allow() = %+v, %v; want a probe", probe, err)
	}
	if _, err := b.allow(); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("second try while the probe is out: err = %v, want ErrCircuitOpen", err)
	}
	b.done(probe, success, "")
	if _, err := b.allow(); err != nil {
		t.Fatalf("after a good probe: err = %v", err)
	}
}

func TestBreakerZeroThresholdNeverOpens(t *testing.T) {
	b := newBreaker(0, time.Second, time.Now)
	for range 100 {
		tk, err := b.allow()
		if err != nil {
			t.Fatal(err)
		}
		b.done(tk, failure, "x")
	}
}

func TestBudget(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ratio       float64
		first       int
		interleaved bool // an extra try is asked for before each first try
		wantExtra   int
	}{
		{"a quiet model gets the reserve", 0.25, 0, true, 10},
		{"each first try adds the ratio", 0.25, 100, true, 10 + 25},
		{"every try may be retried once at ratio 1", 1, 1000, true, 10 + 1000},
		{"a zero budget allows no extra tries", 0, 100, true, 0},
		{"unused deposits stop at the reserve", 0.5, 100, false, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBudget(tc.ratio)
			extra := 0
			for range tc.first {
				if tc.interleaved && b.withdraw() {
					extra++
				}
				b.deposit()
			}
			for b.withdraw() {
				extra++
			}
			if extra != tc.wantExtra {
				t.Errorf("budget %v after %d first tries allowed %d extra tries, want %d", tc.ratio, tc.first, extra, tc.wantExtra)
			}
		})
	}
}

func TestWindowQuantile(t *testing.T) {
	var w window
	for i := range minSamples - 1 {
		w.observe(time.Duration(i) * time.Millisecond)
	}
	if _, ok := w.quantile(0.95); ok {
		t.Fatalf("quantile with %d samples: want none (needs %d)", minSamples-1, minSamples)
	}
	w = window{}
	for i := range 100 { // 0 .. 99 ms
		w.observe(time.Duration(i) * time.Millisecond)
	}
	if got, _ := w.quantile(0.95); got != 95*time.Millisecond {
		t.Errorf("p95 of 0..99ms = %v, want 95ms", got)
	}
	for range windowSize { // the window forgets the old samples
		w.observe(time.Millisecond)
	}
	if got, _ := w.quantile(0.95); got != time.Millisecond {
		t.Errorf("p95 after %d samples of 1ms = %v, want 1ms", windowSize, got)
	}
}
