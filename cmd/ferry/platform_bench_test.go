package main

import (
	"context"
	"flag"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/rollout"
	"github.com/ferryml/ferry/internal/router"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// Issue 16's figures, each against its baseline in the same run:
//
//	go test -run=NONE -bench=Platform -benchtime=1x ./cmd/ferry/
//
// BenchmarkPlatformCanary{REST,GRPC}: throughput of an endpoint split 90/10 between two
// versions (requests name none) against one version named directly; goal ratio ≥ 0.97.
// BenchmarkPlatformShadowP50: client p50 with every request shadowed against none;
// goal within 5% when the machine has room for the shadow's compute: an open loop of
// -benchshadowrate requests/s (a closed loop on a 2-core machine that also runs the
// clients leaves the shadow no room: it then competes with the next request, and p50
// rises by a third). BenchmarkPlatformRollback: time from a bad candidate's first
// error to the stable version at 100%.

var shadowRate = flag.Int("benchshadowrate", 1000, "requests/s of BenchmarkPlatformShadowP50's open loop")

// routedServer serves identity_fp32 in versions 1 and 2 (both loaded) with a registry.
func routedServer(b *testing.B) (*testServer, *platform) {
	repo := b.TempDir()
	model := onnxgen.Identity(onnxgen.Float, "identity_fp32")
	config := "version_policy: { all: {} }\n"
	writeModel(b, repo, "identity_fp32", 1, model, config)
	writeModel(b, repo, "identity_fp32", 2, model, "")
	writeModel(b, repo, "identity_shadowed", 1, model, config)
	writeModel(b, repo, "identity_shadowed", 2, model, "")
	ts := startServer(b, repo, withDataDir(b.TempDir()))
	return ts, ts.plat
}

func identityRequest() *v2client.Request {
	return &v2client.Request{Inputs: []*tensor.Tensor{{Name: "INPUT0", DType: tensor.FP32, Shape: tensor.Shape{1, vsElems}, Data: e2eLE(vsValues())}}}
}

// v2Side sends identityRequest through m.
func v2Side(b *testing.B, name string, m v2model) vsSide {
	return requestSide(name, m, identityRequest())
}

func benchCanary(b *testing.B, proto string) {
	if testing.Short() {
		b.Skip("throughput comparison; not run with -short")
	}
	servingGC(b)
	ts, p := routedServer(b)
	split := &router.Policy{Arms: []router.Arm{{Version: "2", Weight: 10}, {Version: "1", Weight: 90}}}
	if err := p.SetPolicy(context.Background(), "identity_fp32", split); err != nil {
		b.Fatal(err)
	}
	vsCompare(b, v2Side(b, "canary", ts.v2(proto, "identity_fp32", "")), v2Side(b, "direct", ts.v2(proto, "identity_fp32", "1")))
}

func BenchmarkPlatformCanaryREST(b *testing.B) { benchCanary(b, "rest") }
func BenchmarkPlatformCanaryGRPC(b *testing.B) { benchCanary(b, "grpc") }

// BenchmarkPlatformShadowP50 alternates slices of clients on identity_shadowed (all to
// version 1, a copy of every request to version 2) and identity_fp32 (all to version 1).
func BenchmarkPlatformShadowP50(b *testing.B) {
	if testing.Short() {
		b.Skip("latency comparison; not run with -short")
	}
	servingGC(b)
	ts, p := routedServer(b)
	ctx := context.Background()
	one := router.Arm{Version: "1", Weight: 100}
	if err := p.SetPolicy(ctx, "identity_fp32", &router.Policy{Arms: []router.Arm{one}}); err != nil {
		b.Fatal(err)
	}
	if err := p.SetPolicy(ctx, "identity_shadowed", &router.Policy{Arms: []router.Arm{one}, Shadow: &router.Shadow{Version: "2", Percent: 100}}); err != nil {
		b.Fatal(err)
	}
	sides := []*latencies{{name: "shadowed", m: ts.v2("grpc", "identity_shadowed", "")}, {name: "plain", m: ts.v2("grpc", "identity_fp32", "")}}
	for _, s := range sides {
		s.run(b, *shadowRate, *vsSlice) // warm-up
		s.all = nil
	}
	for slice := 0; sides[0].wall < time.Duration(*vsRounds)*(*vsDur); slice++ {
		for k := range 2 {
			sides[(slice+k)%2].run(b, *shadowRate, *vsSlice)
		}
	}
	p50 := [2]time.Duration{sides[0].p50(), sides[1].p50()}
	b.Logf("p50 with a 100%% shadow %v (%d requests), without %v (%d requests): ratio %.3f; %d shadow copies dropped",
		p50[0], len(sides[0].all), p50[1], len(sides[1].all), float64(p50[0])/float64(p50[1]), ts.core.ShadowsDropped())
	b.ReportMetric(float64(p50[0].Microseconds()), "shadowed_p50_us")
	b.ReportMetric(float64(p50[1].Microseconds()), "plain_p50_us")
	b.ReportMetric(float64(p50[0])/float64(p50[1]), "p50_ratio")
}

// latencies is one side of a latency comparison: every request's client-side time.
type latencies struct {
	name string
	m    v2model
	mu   sync.Mutex
	all  []time.Duration
	wall time.Duration
}

// run sends rate requests a second for d, each on its own goroutine at its scheduled
// time (an open loop: a slow answer does not delay the next request), timed from the
// client.
func (l *latencies) run(b *testing.B, rate int, d time.Duration) {
	ctx := context.Background()
	start := time.Now()
	gap := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	for at := time.Duration(0); at < d; at += gap {
		time.Sleep(time.Until(start.Add(at)))
		wg.Go(func() {
			t0 := time.Now()
			if _, err := l.m.Infer(ctx, identityRequest()); err != nil {
				b.Errorf("%s: %v", l.name, err)
				return
			}
			took := time.Since(t0)
			l.mu.Lock()
			l.all = append(l.all, took)
			l.mu.Unlock()
		})
	}
	wg.Wait()
	l.wall += time.Since(start)
}

func (l *latencies) p50() time.Duration {
	s := slices.Clone(l.all)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkPlatformRollback runs the erroring candidate of TestPlatformBadCandidatesRollBack
// under 16 clients -benchrounds times and reports how long the stable version took to
// get everything back after the candidate's first error.
func BenchmarkPlatformRollback(b *testing.B) {
	if testing.Short() {
		b.Skip("timing; not run with -short")
	}
	var worst, sum time.Duration
	for range *vsRounds {
		ts, p := startPlatform(b)
		tr := sendTraffic(b, ts, 16, "addk", "")
		tr.waitAnswers(b, 200)
		const interval = time.Second
		r := canary("4", interval, 20, 100)
		if err := p.StartRollout(context.Background(), r); err != nil {
			b.Fatal(err)
		}
		st := waitRollout(b, p, "addk", 30*time.Second, rollout.Aborting, rollout.Aborted, rollout.Succeeded)
		stable := time.Now()
		as := tr.end()
		first := time.Time{}
		for _, a := range as {
			if a.err != nil && (first.IsZero() || a.end.Before(first)) {
				first = a.end
			}
		}
		if st.Weights["4"] != 0 || first.IsZero() {
			b.Fatalf("rollout %s with %v, first error %v", st.State, st.Weights, first)
		}
		took := stable.Sub(first)
		b.Logf("stable at 100%% %v after the first error (interval %v, failureLimit 0: limit %v)", took.Round(time.Millisecond), interval, interval+time.Second)
		sum += took
		worst = max(worst, took)
		ts.stop()
	}
	b.ReportMetric(sum.Seconds()/float64(*vsRounds), "rollback_s")
	b.ReportMetric(worst.Seconds(), "rollback_worst_s")
}
