package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's own series: OpenTelemetry GenAI names written the
// Prometheus way (dots become underscores), plus Ferry's routing and spend counters.
type metrics struct {
	tokens    *prometheus.HistogramVec
	duration  prometheus.Histogram
	ttft      prometheus.Histogram
	tpot      prometheus.Histogram
	upstream  *prometheus.CounterVec
	fallbacks prometheus.Counter
	cooldowns prometheus.Counter
	rejected  *prometheus.CounterVec
	spend     *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		tokens: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_client_token_usage",
			Help:    "Tokens per request through the gateway, by gen_ai_token_type (input, output).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}, []string{"gen_ai_token_type"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gen_ai_server_request_duration_seconds",
			Help:    "Time from the gateway receiving a generate request to its last token or error.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gen_ai_server_time_to_first_token_seconds",
			Help:    "Time from the gateway receiving a request to the first Delta it passed on.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}),
		tpot: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gen_ai_server_time_per_output_token_seconds",
			Help:    "Mean time per output token after the first, per request.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_llm_gateway_upstream_requests_total",
			Help: "Calls to upstreams by outcome: an HTTP status, timeout, or conn_error.",
		}, []string{"upstream", "code"}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_llm_gateway_fallbacks_total",
			Help: "Times a request moved on to another target after one failed before its first Delta.",
		}),
		cooldowns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_llm_gateway_cooldowns_total",
			Help: "Times a target was put in cooldown after allowed_fails failures.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_llm_gateway_rejected_total",
			Help: "Requests refused by the gateway, by reason.",
		}, []string{"reason"}),
		spend: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_llm_gateway_spend_total",
			Help: "Settled cost by key and team, in the configured price currency.",
		}, []string{"key", "team"}),
	}
}

func (m *metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.tokens, m.duration, m.ttft, m.tpot, m.upstream, m.fallbacks, m.cooldowns, m.rejected, m.spend}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all() {
		c.Collect(ch)
	}
}
