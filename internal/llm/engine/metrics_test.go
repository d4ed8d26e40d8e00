package engine

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// counterValue sums the series of counter (or gauge) name whose labels include want.
func counterValue(t testing.TB, m *Metrics, name string, want map[string]string) float64 {
	t.Helper()
	var sum float64
	for _, mf := range gather(t, m) {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			if !hasLabels(s, want) {
				continue
			}
			sum += s.GetCounter().GetValue() + s.GetGauge().GetValue()
		}
	}
	return sum
}

func hasLabels(s *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range s.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func gather(t testing.TB, m *Metrics) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// Every vLLM series the brief names is exported with the model_name label after a
// request, and the counts add up.
func TestMetricsHaveVLLMNames(t *testing.T) {
	m := NewMetrics()
	e := start(t, tinyModel(t), Config{Metrics: m, PrefixCache: true})
	gen(t, e, prompts(20)[0], greedy(5))
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range gather(t, m) {
		byName[mf.GetName()] = mf
	}
	for _, name := range []string{
		"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
		"vllm:prefix_cache_queries", "vllm:prefix_cache_hits", "vllm:prompt_tokens_total",
		"vllm:generation_tokens_total", "vllm:request_success_total", "vllm:num_preemptions_total",
		"vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds",
		"vllm:request_queue_time_seconds", "vllm:request_prompt_tokens", "vllm:request_generation_tokens",
	} {
		mf, ok := byName[name]
		if !ok {
			t.Errorf("metric %s missing", name)
			continue
		}
		if s := mf.GetMetric()[0]; !hasLabels(s, map[string]string{"model_name": "tiny"}) {
			t.Errorf("metric %s labels %v, want model_name=\"tiny\"", name, s.GetLabel())
		}
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"vllm:request_success_total", map[string]string{"finished_reason": "length"}, 1},
		{"vllm:prompt_tokens_total", nil, 20},
		{"vllm:generation_tokens_total", nil, 5},
	}
	for _, c := range checks {
		if got := counterValue(t, m, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	h := byName["vllm:inter_token_latency_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 4 {
		t.Errorf("inter-token latency samples %d, want 4 (5 tokens)", h.GetSampleCount())
	}
	if !strings.HasPrefix(byName["vllm:time_to_first_token_seconds"].GetHelp(), "Histogram of time to first token") {
		t.Errorf("ttft help %q", byName["vllm:time_to_first_token_seconds"].GetHelp())
	}
}

// The engines of one model's versions share its series: the gauges are their sums
// (running, waiting) and the mean of their KV usage, and a closed engine leaves them.
func TestVersionsShareTheModelGauges(t *testing.T) {
	m := NewMetrics()
	v1, v2, other := m.forModel("gpt"), m.forModel("gpt"), m.forModel("other")
	v1.state(2, 1, 0.5, 0, 0)
	v2.state(3, 0, 0.1, 0, 0)
	other.state(7, 7, 0.9, 0, 0)
	gpt := map[string]string{"model_name": "gpt"}
	check := func(when string, running, waiting, usage float64) {
		t.Helper()
		for name, want := range map[string]float64{"vllm:num_requests_running": running, "vllm:num_requests_waiting": waiting, "vllm:kv_cache_usage_perc": usage} {
			if got := counterValue(t, m, name, gpt); math.Abs(got-want) > 1e-12 {
				t.Errorf("%s: %s = %v, want %v", when, name, got, want)
			}
		}
	}
	check("two versions", 5, 1, 0.3)
	v1.state(0, 0, 0.2, 0, 0)
	check("v1 idle", 3, 0, 0.15)
	v1.release()
	check("v1 closed", 3, 0, 0.1)
	v1.state(9, 9, 1, 0, 0) // a closed engine's late report counts for nothing
	check("after a late report", 3, 0, 0.1)
}
