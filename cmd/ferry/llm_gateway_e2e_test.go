package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/llm/gateway/gatewaytest"
	"github.com/ferryml/ferry/internal/llmbench"
)

// gatewayServer serves repo with a gateway whose config is yaml (%s are the fake
// upstreams' URLs, in order).
func gatewayServer(t testing.TB, yaml string, upstreams ...*gatewaytest.Upstream) *testServer {
	t.Helper()
	args := make([]any, len(upstreams))
	for i, u := range upstreams {
		args[i] = u.URL
	}
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(yaml, args...)), 0o644); err != nil {
		t.Fatal(err)
	}
	return startServer(t, llmRepo(t), func(c *serveConfig) { c.llm.gatewayFile = cfg })
}

const fallbackGateway = `upstreams:
  - {name: busy, kind: vllm, base_url: "%s", models: {chat: big-model}, context_window: 4096}
  - {name: spare, kind: openai, base_url: "%s", models: {backup: small-model}, context_window: 4096}
routes:
  - model: chat
    targets: [{upstream: busy}]
    fallbacks: [backup]
  - model: backup
    targets: [{upstream: spare}]
`

// TestGatewayFallsBackEndToEnd: through ferry serve, a chat stream whose first upstream
// answers 429 comes from the fallback, chunk by chunk, with its usage counted by tiktoken
// when the upstream sends none; the native tinygpt stays reachable beside the routes.
func TestGatewayFallsBackEndToEnd(t *testing.T) {
	busy := gatewaytest.NewUpstream(t, gatewaytest.Always(gatewaytest.Reply{Status: 429, RetryAfter: 1}))
	spare := gatewaytest.NewUpstream(t, gatewaytest.Always(gatewaytest.Reply{Chunks: []string{"Hello", ",", " world", "!"}, OmitUsage: true}))
	ts := gatewayServer(t, fallbackGateway, busy, spare)

	text, usage := streamChat(t, ts.URL, chatBody("chat", "Say hello.", 16, true))
	if text != "Hello, world!" {
		t.Errorf("streamed %q, want the fallback's Hello, world!", text)
	}
	if usage["completion_tokens"] != 4 { // "Hello", ",", " world", "!" in cl100k
		t.Errorf("usage %v: want 4 completion tokens counted by tiktoken", usage)
	}
	if busy.Count() != 1 || spare.Count() != 1 {
		t.Errorf("upstream requests: busy %d, spare %d; want 1 and 1", busy.Count(), spare.Count())
	}
	if got := spare.Requests()[0].Model; got != "small-model" {
		t.Errorf("the fallback was asked for %q, want its own id small-model", got)
	}
	if v := metricValue(t, ts.URL, `ferry_llm_gateway_fallbacks_total`); v < 1 {
		t.Errorf("ferry_llm_gateway_fallbacks_total = %v", v)
	}
	_, _, body := httpDo(t, "GET", ts.URL+"/v1/models", "", nil)
	for _, m := range []string{`"chat"`, `"backup"`} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/v1/models %s lacks %s", body, m)
		}
	}
}

var gatewaySoak = flag.Duration("gatewaysoak", 0, "BenchmarkGatewayOverhead: also stream through the gateway for this long and report RSS over time")

// BenchmarkGatewayOverhead is issue 20's gateway figure: the same streamed chat requests
// to a fake upstream directly and through ferry serve's gateway, in alternating rounds
// of 16 clients (vLLM's bench serve definitions), reporting the end-to-end latency the
// gateway adds at p50 and p99 and its requests/s; with -gatewaysoak, RSS over a long run.
//
//	go test -run=NONE -bench=GatewayOverhead -benchtime=1x ./cmd/ferry/ -args -benchrounds=3 -gatewaysoak=10m
func BenchmarkGatewayOverhead(b *testing.B) {
	up := gatewaytest.NewUpstream(b, gatewaytest.Always(gatewaytest.Reply{Chunks: strings.Fields("one two three four five six seven eight")}))
	ts := gatewayServer(b, `upstreams:
  - {name: fake, kind: vllm, base_url: "%s", models: {chat: fake-model}, context_window: 4096, prices: {input: 1, output: 2}}
keys:
  - {name: bench, key: sk-bench-0123456789, budget: 1000000}
`, up)
	// Latency is compared one request at a time, so what is added is the gateway's path
	// and not the queueing of three programs (client, gateway, upstream) on two cores;
	// throughput is the gateway's with 16 clients.
	cfg := llmbench.Config{Model: "chat", APIKey: "sk-bench-0123456789", NumPrompts: 2000, Concurrency: 1, InputLen: 32, OutputLen: 8, Seed: 1, Percentiles: []float64{50, 99}}
	var direct, gw, busy []*llmbench.Result
	for r := 0; r < *vsRounds; r++ {
		d, g, t := cfg, cfg, cfg
		d.BaseURL, d.Model = up.URL, "fake-model"
		g.BaseURL, t.BaseURL = ts.URL, ts.URL
		t.Concurrency, t.NumPrompts = 16, 8000
		direct = append(direct, benchLLM(b, d))
		gw = append(gw, benchLLM(b, g))
		busy = append(busy, benchLLM(b, t))
		b.Logf("round %d, 1 client: direct p50 %.3f ms p99 %.3f ms; gateway p50 %.3f ms p99 %.3f ms; 16 clients: gateway %.0f req/s", r,
			e2elPct(direct[r], 50), e2elPct(direct[r], 99), e2elPct(gw[r], 50), e2elPct(gw[r], 99), busy[r].RequestThroughput)
	}
	add50 := median(func(i int) float64 { return e2elPct(gw[i], 50) - e2elPct(direct[i], 50) })
	add99 := median(func(i int) float64 { return e2elPct(gw[i], 99) - e2elPct(direct[i], 99) })
	rps := median(func(i int) float64 { return busy[i].RequestThroughput })
	b.ReportMetric(add50, "added-p50-ms")
	b.ReportMetric(add99, "added-p99-ms")
	b.ReportMetric(rps, "gateway-req/s")
	b.Logf("%d rounds (medians): the gateway adds %.3f ms at p50 (goal <= 1) and %.3f ms at p99 (goal <= 5) to a streamed request of 8 chunks; %.0f req/s through it at 16 clients (goal >= 2000), client and fake upstream sharing its 2 cores",
		*vsRounds, add50, add99, rps)
	if *gatewaySoak > 0 {
		soakGateway(b, cfg, ts.URL, up)
	}
}

func benchLLM(b *testing.B, cfg llmbench.Config) *llmbench.Result {
	res, err := llmbench.Run(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if res.Failed > 0 {
		b.Fatalf("%d requests failed: %v", res.Failed, res.Errors)
	}
	return res
}

func e2elPct(r *llmbench.Result, p float64) float64 {
	for _, q := range r.E2EL.Percentiles {
		if q.P == p {
			return q.Value
		}
	}
	return -1
}

func median(f func(int) float64) float64 {
	vals := make([]float64, *vsRounds)
	for i := range vals {
		vals[i] = f(i)
	}
	for i := range vals {
		for j := i + 1; j < len(vals); j++ {
			if vals[j] < vals[i] {
				vals[i], vals[j] = vals[j], vals[i]
			}
		}
	}
	return vals[len(vals)/2]
}

// soakGateway streams through the gateway for -gatewaysoak and logs the process's RSS
// (fake upstream, server and client together) each minute after a GC.
func soakGateway(b *testing.B, cfg llmbench.Config, url string, up *gatewaytest.Upstream) {
	cfg.BaseURL = url
	deadline := time.Now().Add(*gatewaySoak)
	var first, last int64
	for i := 0; time.Now().Before(deadline); i++ {
		cfg.NumPrompts, cfg.Concurrency = 10000, 16
		res := benchLLM(b, cfg)
		up.Forget() // the fake upstream's record of requests is not the server's memory
		runtime.GC()
		rss := processRSS(b)
		if i == 0 {
			first = rss
		}
		last = rss
		fmt.Fprintf(os.Stderr, "soak %s: %d requests at %.0f req/s, p99 %.2f ms, RSS %d MiB\n", time.Until(deadline).Round(time.Second), res.Completed, res.RequestThroughput, e2elPct(res, 99), rss>>20)
	}
	b.Logf("soak: RSS %d MiB after the first batch, %d MiB at the end", first>>20, last>>20)
}

func processRSS(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(rest, &kb)
			return kb << 10
		}
	}
	return 0
}
