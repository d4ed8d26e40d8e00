package main

// BenchmarkOverload is issue 17's overload acceptance: open-loop REST load at 1x, 2x and
// 5x the measured capacity of a fixed-cost model, with load shedding on and off.
//
//	go test ./cmd/ferry -run '^$' -bench Overload -benchtime 1x [-overloaddur 5s]

import (
	"context"
	"flag"
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

var overloadDur = flag.Duration("overloaddur", 5*time.Second, "BenchmarkOverload: how long each offered load runs")

// The model: 4 instances x 20 ms is 200 requests/s whatever else the machine runs;
// shedding keeps admitted requests within 200 ms.
const (
	overloadObjective = 200 * time.Millisecond
	overloadTimeout   = 10 * time.Second // the clients' patience
)

// overloadResult is what one offered load got.
type overloadResult struct {
	sent, ok, refused, failed int
	okLat, refusedLat         []time.Duration
	wall                      time.Duration // from the first request to the last answer
}

// goodput is the successful answers per second of the run's wall time (which, without
// shedding, runs on past the offered load while the queue drains).
func (r overloadResult) goodput() float64 { return float64(r.ok) / r.wall.Seconds() }

func BenchmarkOverload(b *testing.B) {
	repo := b.TempDir()
	writeFixedCostModel(b, repo, "shed", 4, 20*time.Millisecond, "shed_latency_objective", overloadObjective.String())
	writeFixedCostModel(b, repo, "noshed", 4, 20*time.Millisecond, "shed", "false")
	ts := startServer(b, repo, withFixedCost)
	client := &http.Client{Timeout: overloadTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 4096, MaxIdleConns: 4096}}
	defer client.CloseIdleConnections()
	for b.Loop() {
		capacity := overloadCapacity(b, client, ts.URL+"/v2/models/noshed/infer")
		b.Logf("measured capacity: %.0f requests/s (closed loop, 32 clients; the model's nominal 200/s); objective %s, %s per load",
			capacity, overloadObjective, *overloadDur)
		b.Logf("%-7s %4s %9s %9s %9s %9s %8s %9s %7s %6s", "model", "load", "offered/s", "goodput/s", "adm p50", "adm p99", "refused", "ref p99", "failed", "wall")
		var base float64
		for _, model := range []string{"shed", "noshed"} {
			for _, mult := range []float64{1, 2, 5} {
				r := overloadRun(client, ts.URL+"/v2/models/"+model+"/infer", mult*capacity, *overloadDur)
				goodput := r.goodput()
				if mult == 1 {
					base = goodput
				}
				b.Logf("%-7s %3.0fx %9.0f %9.0f %9s %9s %8d %9s %7d %6s   goodput/1x %.2f",
					model, mult, mult*capacity, goodput, pct(r.okLat, 50), pct(r.okLat, 99), r.refused, pct(r.refusedLat, 99), r.failed, r.wall.Round(100*time.Millisecond), goodput/base)
				if model == "shed" && mult == 5 {
					b.ReportMetric(goodput/base, "shed_5x_goodput/1x")
					b.ReportMetric(float64(pct(r.okLat, 99))/1e6, "shed_5x_p99_ms")
					b.ReportMetric(float64(pct(r.refusedLat, 99))/1e3, "shed_5x_refusal_p99_us")
					b.ReportMetric(float64(r.failed), "shed_5x_failed")
				}
				waitInFlight(b, ts, fmt.Sprintf(`ferry_requests_in_flight{model=%q,version="1"} 0`, model)) // the next load starts clean
			}
		}
	}
}

// overloadCapacity measures the model's throughput with 32 clients for 3 s.
func overloadCapacity(b *testing.B, client *http.Client, url string) float64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(3 * time.Second)
	for range 32 {
		wg.Go(func() {
			for time.Now().Before(end) {
				if code, _ := overloadPost(client, url); code == http.StatusOK {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n.Load() == 0 {
		b.Fatal("no request succeeded while measuring the capacity")
	}
	return float64(n.Load()) / 3
}

// overloadRun offers rate requests/s for d, open loop (each request at its time,
// whatever the earlier ones do), and waits for every answer.
func overloadRun(client *http.Client, url string, rate float64, d time.Duration) overloadResult {
	var r overloadResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	gap := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for at := time.Duration(0); at < d; at += gap {
		time.Sleep(time.Until(start.Add(at)))
		r.sent++
		wg.Go(func() {
			t0 := time.Now()
			code, err := overloadPost(client, url)
			lat := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && code == http.StatusOK:
				r.ok++
				r.okLat = append(r.okLat, lat)
			case err == nil && (code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests):
				r.refused++
				r.refusedLat = append(r.refusedLat, lat)
			default: // an admitted request that failed or timed out
				r.failed++
			}
		})
	}
	wg.Wait()
	r.wall = time.Since(start)
	return r
}

func overloadPost(client *http.Client, url string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), overloadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(fixedCostBody))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// pct is the p-th percentile of ds (0 when empty).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}

// BenchmarkOverloadRefusal is the time a REST client waits for an overload refusal when
// nothing else floods the machine: a model's limit is full (2 requests held for 10 s),
// one keep-alive client asks again and again. BenchmarkOverload's refusal latencies
// include its own load generator's scheduling on the same cores.
func BenchmarkOverloadRefusal(b *testing.B) {
	repo := b.TempDir()
	writeFixedCostModel(b, repo, "slow", 2, 10*time.Second, "shed_min_limit", "2", "shed_max_limit", "2")
	ts := startServer(b, repo, withFixedCost)
	client := &http.Client{Timeout: overloadTimeout}
	defer client.CloseIdleConnections()
	url := ts.URL + "/v2/models/slow/infer"
	for range 2 {
		go overloadPost(client, url) // answered when the server stops
	}
	waitInFlight(b, ts, `ferry_admission_in_flight{model="slow",version="1"} 2`)
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		code, err := overloadPost(client, url)
		lat = append(lat, time.Since(t0))
		if err != nil || code != http.StatusServiceUnavailable {
			b.Fatalf("want 503, got %d %v", code, err)
		}
	}
	b.ReportMetric(float64(pct(lat, 50))/1e3, "refusal_p50_us")
	b.ReportMetric(float64(pct(lat, 99))/1e3, "refusal_p99_us")
}
