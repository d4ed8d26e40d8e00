package engine

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's Prometheus series, with vLLM V1's names and a model_name
// label (llm.md §1.3). One Metrics may serve several engines; register it once.
type Metrics struct {
	mu     sync.Mutex
	models map[string]*modelGauges // the engines of each model_name

	running, waiting, kvUsage                   *prometheus.GaugeVec
	prefixQueries, prefixHits                   *prometheus.CounterVec
	promptTokens, generationTokens, preemptions *prometheus.CounterVec
	success                                     *prometheus.CounterVec
	ttft, itl, e2e, queue                       *prometheus.HistogramVec
	reqPrompt, reqGeneration                    *prometheus.HistogramVec
}

// vLLM's buckets (vllm/v1/metrics/loggers.py).
var (
	ttftBuckets = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560}
	itlBuckets  = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80}
	e2eBuckets  = []float64{0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680}
	// tokenBuckets is vLLM's 1-2-5 series up to its max_model_len; 1..100000 here,
	// fixed so that engines of any context share the series.
	tokenBuckets = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000}
)

// NewMetrics makes the engine series. Register the result with a prometheus.Registerer.
func NewMetrics() *Metrics {
	label := []string{"model_name"}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, label)
	}
	counter := func(name, help string, extra ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, append(label, extra...))
	}
	hist := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, label)
	}
	return &Metrics{
		models:           map[string]*modelGauges{},
		running:          gauge("vllm:num_requests_running", "Number of requests in model execution batches."),
		waiting:          gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed."),
		kvUsage:          gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage."),
		prefixQueries:    counter("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens."),
		prefixHits:       counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens."),
		promptTokens:     counter("vllm:prompt_tokens_total", "Number of prefill tokens processed."),
		generationTokens: counter("vllm:generation_tokens_total", "Number of generation tokens processed."),
		preemptions:      counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine."),
		success:          counter("vllm:request_success_total", "Count of successfully processed requests.", "finished_reason"),
		ttft:             hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", ttftBuckets),
		itl:              hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", itlBuckets),
		e2e:              hist("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", e2eBuckets),
		queue:            hist("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", e2eBuckets),
		reqPrompt:        hist("vllm:request_prompt_tokens", "Number of prefill tokens processed.", tokenBuckets),
		reqGeneration:    hist("vllm:request_generation_tokens", "Number of generation tokens processed.", tokenBuckets),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.running, m.waiting, m.kvUsage, m.prefixQueries, m.prefixHits, m.promptTokens,
		m.generationTokens, m.preemptions, m.success, m.ttft, m.itl, m.e2e, m.queue, m.reqPrompt, m.reqGeneration}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// modelGauges are the engines of one model_name: the engines of a model's versions
// (several run during a rollout) share its series, so its gauges are their sums
// (requests running, waiting) and the mean of their KV-cache usage, not whichever
// engine reported last.
type modelGauges struct {
	running, waiting, kvUsage prometheus.Gauge
	engines                   map[*modelMetrics]engineState
}

type engineState struct {
	running, waiting int
	usage            float64
}

// modelMetrics is one engine's children of Metrics; nil counts nothing.
type modelMetrics struct {
	m                                           *Metrics
	model                                       string
	prefixQueries, prefixHits                   prometheus.Counter
	promptTokens, generationTokens, preemptions prometheus.Counter
	success                                     *prometheus.CounterVec
	ttft, itl, e2e, queue                       prometheus.Observer
	reqPrompt, reqGeneration                    prometheus.Observer
}

func (m *Metrics) forModel(model string) *modelMetrics {
	if m == nil {
		return nil
	}
	l := prometheus.Labels{"model_name": model}
	mm := &modelMetrics{
		m: m, model: model,
		prefixQueries: m.prefixQueries.With(l), prefixHits: m.prefixHits.With(l),
		promptTokens: m.promptTokens.With(l), generationTokens: m.generationTokens.With(l), preemptions: m.preemptions.With(l),
		success: m.success.MustCurryWith(l),
		ttft:    m.ttft.With(l), itl: m.itl.With(l), e2e: m.e2e.With(l), queue: m.queue.With(l),
		reqPrompt: m.reqPrompt.With(l), reqGeneration: m.reqGeneration.With(l),
	}
	for _, reason := range []string{"stop", "length", "abort"} {
		mm.success.WithLabelValues(reason) // present at 0 from the start, as vLLM's
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.models[model]
	if g == nil {
		g = &modelGauges{running: m.running.With(l), waiting: m.waiting.With(l), kvUsage: m.kvUsage.With(l), engines: map[*modelMetrics]engineState{}}
		m.models[model] = g
	}
	g.engines[mm] = engineState{}
	g.publish()
	return mm
}

// publish sets the model's gauges from its engines' states; called with Metrics.mu held.
func (g *modelGauges) publish() {
	var sum engineState
	for _, st := range g.engines {
		sum.running += st.running
		sum.waiting += st.waiting
		sum.usage += st.usage
	}
	g.running.Set(float64(sum.running))
	g.waiting.Set(float64(sum.waiting))
	g.kvUsage.Set(sum.usage / float64(max(1, len(g.engines))))
}

func (m *modelMetrics) state(running, waiting int, usage float64, queries, hits int64) {
	if m == nil {
		return
	}
	m.m.mu.Lock()
	g := m.m.models[m.model]
	if _, ok := g.engines[m]; ok {
		g.engines[m] = engineState{running: running, waiting: waiting, usage: usage}
		g.publish()
	}
	m.m.mu.Unlock()
	m.prefixQueries.Add(float64(queries))
	m.prefixHits.Add(float64(hits))
}

// release takes a closed engine out of its model's gauges.
func (m *modelMetrics) release() {
	if m == nil {
		return
	}
	m.m.mu.Lock()
	defer m.m.mu.Unlock()
	g := m.m.models[m.model]
	delete(g.engines, m)
	g.publish()
}

func (m *modelMetrics) preempted() {
	if m != nil {
		m.preemptions.Inc()
	}
}

func (m *modelMetrics) generatedToken() {
	if m != nil {
		m.generationTokens.Inc()
	}
}

func (m *modelMetrics) firstToken(d time.Duration) {
	if m != nil {
		m.ttft.Observe(d.Seconds())
	}
}

func (m *modelMetrics) interToken(d time.Duration) {
	if m != nil {
		m.itl.Observe(d.Seconds())
	}
}

// finished counts a request that ran to "stop" or "length".
func (m *modelMetrics) finished(r Result, queued, e2e time.Duration) {
	if m == nil {
		return
	}
	m.requestDone(r)
	m.queue.Observe(queued.Seconds())
	m.e2e.Observe(e2e.Seconds())
}

func (m *modelMetrics) aborted(r Result) {
	if m != nil {
		m.requestDone(r)
	}
}

func (m *modelMetrics) requestDone(r Result) {
	m.success.WithLabelValues(r.FinishReason).Inc()
	m.promptTokens.Add(float64(r.PromptTokens))
	m.reqPrompt.Observe(float64(r.PromptTokens))
	m.reqGeneration.Observe(float64(r.CompletionTokens))
}
