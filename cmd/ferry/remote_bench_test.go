package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRemoteHedging measures a remote model's latency against an upstream that
// stalls 1 infer in 30 for 200 ms, with hedging off and at the observed p95, under the
// same open-loop load (a fixed request rate, latency counted from each request's
// scheduled start, so a stall cannot slow the load down and flatter the result, as a
// closed loop of clients would). The two models alternate in rounds on the same
// upstream, so load from elsewhere hits both alike. It reports p50, p99 and p99.9 of
// each, the p99 ratio (off / on: how many times hedging cuts it) and the extra upstream
// tries hedging cost.
func BenchmarkRemoteHedging(b *testing.B) {
	if testing.Short() {
		b.Skip("latency comparison; not run with -short")
	}
	const (
		rate   = 200 // requests per second: well within what a shared 2-core host serves
		rounds = 6
		per    = 400 // requests per model per round
	)
	front, proxy := remoteHedgeSetup(b)
	hc := remoteClient(b)
	models := []string{"plain", "hedged"}
	for _, m := range models {
		remoteOpenLoop(b, hc, front, m, 200, rate) // warm up: connections, and samples for the p95
	}
	lat := map[string][]time.Duration{}
	tries := map[string]int64{}
	for r := range rounds {
		for i := range models {
			m := models[(r+i)%2] // alternate which goes first
			before := proxy.infers.Load()
			lat[m] = append(lat[m], remoteOpenLoop(b, hc, front, m, per, rate)...)
			tries[m] += proxy.infers.Load() - before
		}
	}
	for _, m := range models {
		slices.Sort(lat[m])
		l := lat[m]
		b.Logf("hedge %-6s: p50 %8v  p95 %8v  p99 %8v  p99.9 %8v  max %8v  upstream tries/request %.3f", map[string]string{"plain": "off", "hedged": "p95"}[m],
			remoteQuantile(l, 0.5).Round(time.Microsecond), remoteQuantile(l, 0.95).Round(time.Microsecond), remoteQuantile(l, 0.99).Round(time.Microsecond),
			remoteQuantile(l, 0.999).Round(time.Microsecond), l[len(l)-1].Round(time.Microsecond), float64(tries[m])/float64(len(l)))
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	off, on := lat["plain"], lat["hedged"]
	b.ReportMetric(ms(remoteQuantile(off, 0.5)), "p50_off_ms")
	b.ReportMetric(ms(remoteQuantile(on, 0.5)), "p50_on_ms")
	b.ReportMetric(ms(remoteQuantile(off, 0.99)), "p99_off_ms")
	b.ReportMetric(ms(remoteQuantile(on, 0.99)), "p99_on_ms")
	b.ReportMetric(ms(remoteQuantile(off, 0.99))/ms(remoteQuantile(on, 0.99)), "p99_ratio")
	b.ReportMetric(float64(tries["hedged"])/float64(len(on))-1, "extra_tries/req")
}

// remoteOpenLoop starts n requests to model at rate per second, each on schedule whether
// or not the earlier ones have answered, and returns their latencies from their scheduled
// starts. Any failed request fails the benchmark.
func remoteOpenLoop(tb testing.TB, hc *http.Client, front *testServer, model string, n, rate int) []time.Duration {
	tb.Helper()
	body := simpleBody(1)
	out := make([]time.Duration, n)
	var (
		wg     sync.WaitGroup
		failed atomic.Pointer[error]
	)
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
		time.Sleep(time.Until(at))
		wg.Go(func() {
			resp, err := hc.Post(front.URL+"/v2/models/"+model+"/infer", "application/json", strings.NewReader(body))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("infer %s: HTTP %d", model, resp.StatusCode)
				}
			}
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
			out[i] = time.Since(at)
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		tb.Fatal(*err)
	}
	slices.Sort(out)
	return out
}
