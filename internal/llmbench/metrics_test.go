package llmbench

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// The statistics are numpy's: population std, linear-interpolation percentiles.
func TestSummarizeMatchesNumpy(t *testing.T) {
	st := summarize([]float64{0.004, 0.001, 0.003, 0.002}, []float64{90, 99.9, 0, 100})
	// np.mean/np.median/np.std/np.percentile of [1, 2, 3, 4] (ms).
	want := Stats{Mean: 2.5, Median: 2.5, Std: math.Sqrt(1.25), Percentiles: []Percentile{{90, 3.7}, {99.9, 3.997}, {0, 1}, {100, 4}}}
	if diff := cmp.Diff(want, st, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })); diff != "" {
		t.Errorf("summarize (-want +got):\n%s", diff)
	}
	if empty := summarize(nil, []float64{99}); empty.Mean != 0 || empty.Percentiles[0].Value != 0 {
		t.Errorf("summarize(nil) = %+v, want zeros as vLLM reports", empty)
	}
}

// TPOT and goodput follow vLLM: TPOT excludes the first token and skips one-token
// answers, whose TPOT counts as 0 against an SLO; a request is good within every SLO.
func TestResultDefinitions(t *testing.T) {
	ms := time.Millisecond
	outs := []output{
		{success: true, promptLen: 10, outputTokens: 5, ttft: 100 * ms, latency: 300 * ms, itl: []time.Duration{50 * ms, 50 * ms, 50 * ms, 50 * ms}},
		{success: true, promptLen: 10, outputTokens: 1, ttft: 400 * ms, latency: 400 * ms},
		{success: true, promptLen: 20, outputTokens: 3, ttft: 50 * ms, latency: 450 * ms, itl: []time.Duration{200 * ms, 200 * ms}},
		{success: false, promptLen: 7, err: "HTTP 503"},
	}
	cfg := Config{Percentiles: []float64{50}, Goodput: map[string]time.Duration{"ttft": 200 * ms, "tpot": 100 * ms}}
	r := result(cfg, outs, 2*time.Second)
	if r.Completed != 3 || r.Failed != 1 || r.TotalInputTokens != 40 || r.TotalOutputTokens != 9 {
		t.Errorf("completed %d failed %d input %d output %d, want 3 1 40 9", r.Completed, r.Failed, r.TotalInputTokens, r.TotalOutputTokens)
	}
	// TPOTs: (300-100)/4 = 50 ms and (450-50)/2 = 200 ms; the one-token answer has none.
	if math.Abs(r.TPOT.Mean-125) > 1e-9 {
		t.Errorf("mean TPOT %g ms, want 125", r.TPOT.Mean)
	}
	// Good: only the first (the second misses TTFT, the third TPOT).
	if r.RequestGoodput == nil || math.Abs(*r.RequestGoodput-0.5) > 1e-12 {
		t.Errorf("goodput %v, want 1 request / 2 s", r.RequestGoodput)
	}
	if r.RequestThroughput != 1.5 || r.OutputThroughput != 4.5 || r.TotalTokenThroughput != 24.5 {
		t.Errorf("throughputs %g %g %g, want 1.5 4.5 24.5", r.RequestThroughput, r.OutputThroughput, r.TotalTokenThroughput)
	}
	if math.Abs(r.ITL.Mean-100) > 1e-9 || math.Abs(r.E2EL.Median-400) > 1e-9 || math.Abs(r.TTFT.Mean-550.0/3) > 1e-9 {
		t.Errorf("ITL mean %g, E2EL median %g, TTFT mean %g; want 100 (600 ms over 6 gaps), 400, 183.3", r.ITL.Mean, r.E2EL.Median, r.TTFT.Mean)
	}
}

func testResult() *Result {
	ms := time.Millisecond
	outs := []output{
		{success: true, promptLen: 128, outputTokens: 4, ttft: 80 * ms, latency: 230 * ms, itl: []time.Duration{50 * ms, 50 * ms, 50 * ms}},
		{success: true, promptLen: 128, outputTokens: 4, ttft: 120 * ms, latency: 300 * ms, itl: []time.Duration{60 * ms, 60 * ms, 60 * ms}},
		{success: false, promptLen: 128, err: "HTTP 503 Service Unavailable: overloaded"},
	}
	cfg := Config{Concurrency: 8, RequestRate: 4, Burstiness: 1, Percentiles: []float64{50, 90, 99},
		Goodput: map[string]time.Duration{"ttft": 100 * ms}}
	return result(cfg, outs, 1500*ms)
}

// The report reads like vllm bench serve's, and the JSON has vLLM's keys.
func TestReportGolden(t *testing.T) {
	r := testResult()
	var text bytes.Buffer
	r.WriteText(&text)
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{"report.txt.golden": text.Bytes(), "result.json.golden": append(js, '\n')} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"duration", "completed", "failed", "total_input_tokens", "total_output_tokens",
		"request_throughput", "request_goodput", "output_throughput", "total_token_throughput",
		"mean_ttft_ms", "median_tpot_ms", "std_itl_ms", "p99_e2el_ms", "p90_ttft_ms", "ttfts", "itls", "errors"} {
		if _, ok := m[k]; !ok {
			t.Errorf("result JSON lacks vLLM's key %q", k)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := Config{BaseURL: "127.0.0.1:8000", Endpoint: "embeddings", NumPrompts: 0, Concurrency: -1, RequestRate: -2,
		Burstiness: -1, InputLen: 0, OutputLen: 3, Goodput: map[string]time.Duration{"latency": time.Second, "ttft": 0},
		Percentiles: []float64{101}}
	err := bad.Validate()
	for _, want := range []string{
		`base_url: want http(s)://host[:port], got "127.0.0.1:8000"`, "model: required", `endpoint: want "chat" or "completions", got "embeddings"`,
		"num_prompts: must be > 0, got 0", "concurrency: must be >= 0, got -1", "request_rate: must be > 0 (or +Inf), got -2",
		"burstiness: must be > 0, got -1", "input_len and output_len must be > 0", `goodput: unknown metric "latency"`,
		"goodput: ttft must be > 0, got 0s", "percentiles: 101 is not within 0..100",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v\nwant it to say %q", err, want)
		}
	}
	good := Config{BaseURL: "http://127.0.0.1:8000/v1/", Model: "m", NumPrompts: 1, InputLen: 1, OutputLen: 1}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", good, err)
	}
	if d := good.withDefaults(); d.BaseURL != "http://127.0.0.1:8000" || d.path() != "/v1/chat/completions" || !math.IsInf(d.RequestRate, 1) {
		t.Errorf("defaults: base %q, path %q, rate %g", d.BaseURL, d.path(), d.RequestRate)
	}
}

// Arrivals follow vLLM: the last at n/rate; Poisson gaps have a coefficient of
// variation of 1, burstier (shape < 1) ones more, steadier ones less.
func TestArrivals(t *testing.T) {
	const n = 4000
	cv := func(burst float64) float64 {
		ds := arrivals(Config{RequestRate: 10, Burstiness: burst, Seed: 3}, n)
		if got := ds[n-1]; got != 400*time.Second {
			t.Errorf("burstiness %g: last arrival %v, want %v", burst, got, 400*time.Second)
		}
		var gaps []float64
		prev := time.Duration(0)
		for _, d := range ds {
			gaps = append(gaps, (d - prev).Seconds())
			prev = d
		}
		s := summarize(gaps, nil)
		return s.Std / s.Mean
	}
	for _, tc := range []struct{ burst, lo, hi float64 }{{1, 0.93, 1.07}, {0.25, 1.8, 2.2}, {16, 0.22, 0.28}} {
		if got := cv(tc.burst); got < tc.lo || got > tc.hi {
			t.Errorf("burstiness %g: gaps' coefficient of variation %.3f, want %.2f..%.2f (1/sqrt(shape))", tc.burst, got, tc.lo, tc.hi)
		}
	}
	if ds := arrivals(Config{RequestRate: math.Inf(1)}, 3); ds[2] != 0 {
		t.Errorf("infinite rate: arrivals %v, want all at 0", ds)
	}
}
