package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/llm"
	gt "github.com/ferryml/ferry/internal/llm/gateway/gatewaytest"
)

// BenchmarkGenerate compares a streamed chat request through the gateway (key check,
// rpm and budget reservation, routing, SSE parsing, settling) with the same request
// sent straight to the fake upstream over HTTP and read to its end. The difference
// of the p50/p99 metrics is the gateway's added latency.
//
//	go test -run XXX -bench Generate -benchtime 5000x ./internal/llm/gateway/
func BenchmarkGenerate(b *testing.B) {
	up := gt.NewUpstream(b, gt.Always(gt.Reply{Chunks: []string{"Hello", " world", "!"}}))
	body := []byte(`{"model":"a-model","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 10 * time.Second}
	b.Cleanup(client.CloseIdleConnections)
	direct := func() error {
		resp, err := client.Post(up.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	g := newGateway(b, pricedYAML(up.URL, `
keys: [{name: k, key: sk-bench, rpm: 100000000, budget: 1000000000}]
`), Options{})
	gateway := func() error {
		req := chatReq("m", "hi", true)
		req.Key = "sk-bench"
		_, err := g.Generate(context.Background(), req, func(llm.Delta) error { return nil })
		return err
	}
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("direct/clients=%d", par), func(b *testing.B) { measure(b, par, direct) })
		b.Run(fmt.Sprintf("gateway/clients=%d", par), func(b *testing.B) { measure(b, par, gateway) })
	}
}

// measure runs f from clients goroutines and reports latency percentiles and
// throughput.
func measure(b *testing.B, clients int, f func() error) {
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 1024)
			for next.Add(1) <= int64(b.N) {
				t := time.Now()
				if err := f(); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
}
