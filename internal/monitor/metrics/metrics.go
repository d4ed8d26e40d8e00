package metrics

import (
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds the collectors. Build one per server with New and register it.
type Metrics struct {
	stats func() []core.ModelStats

	queue, input, infer, output, total *prometheus.HistogramVec
	inflight                           *prometheus.GaugeVec
	loadState                          *prometheus.GaugeVec
	loadDuration                       *prometheus.HistogramVec
	loadFailures                       *prometheus.CounterVec
	sched                              schedulerMetrics
	models                             modelMetrics  // models.go
	routes                             *routeMetrics // routes.go

	mu     sync.Mutex
	states map[[2]string]string // model, version -> state, to zero the old state's gauge

	requests sync.Map // [2]string{model, version} -> *requestSeries
}

// requestSeries are one version's per-request series, looked up once: a request observes
// seven of them, and each lookup by label values hashes and validates the labels. Request
// series are never deleted, so a version's stay valid for the server's life.
type requestSeries struct {
	queue, input, infer, output, total prometheus.Observer
	inflight                           prometheus.Gauge
}

func (m *Metrics) series(model, version string) *requestSeries {
	k := [2]string{model, version}
	if s, ok := m.requests.Load(k); ok {
		return s.(*requestSeries)
	}
	s, _ := m.requests.LoadOrStore(k, &requestSeries{
		queue: m.queue.WithLabelValues(model, version), input: m.input.WithLabelValues(model, version),
		infer: m.infer.WithLabelValues(model, version), output: m.output.WithLabelValues(model, version),
		total: m.total.WithLabelValues(model, version), inflight: m.inflight.WithLabelValues(model, version),
	})
	return s.(*requestSeries)
}

var (
	_ core.Observer        = (*Metrics)(nil)
	_ core.Tap             = (*Metrics)(nil)
	_ prometheus.Collector = (*Metrics)(nil)
)

// Latency buckets from 100µs to about 30s: model latencies span that range.
var latencyBuckets = prometheus.ExponentialBuckets(100e-6, 2.5, 15)

// New builds the metrics; stats is read at every scrape (core.Server.StatsSnapshot).
func New(stats func() []core.ModelStats) *Metrics {
	labels := []string{"model", "version"}
	hist := func(name, help string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ferry", Name: name, Help: help, Buckets: latencyBuckets,
		}, labels)
	}
	return &Metrics{
		stats:  stats,
		queue:  hist("request_queue_duration_seconds", "Time requests waited for an instance, successful requests."),
		input:  hist("request_compute_input_duration_seconds", "Time preparing inputs for the backend, successful requests."),
		infer:  hist("request_compute_infer_duration_seconds", "Time in the backend's execution, successful requests."),
		output: hist("request_compute_output_duration_seconds", "Time preparing outputs from the backend, successful requests."),
		total:  hist("request_duration_seconds", "End-to-end time in the server core, successful requests."),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ferry", Name: "requests_in_flight", Help: "Requests inside the server core now.",
		}, labels),
		loadState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ferry", Name: "model_state", Help: "1 for the state each model version is in.",
		}, []string{"model", "version", "state"}),
		loadDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ferry", Name: "model_load_duration_seconds", Help: "Time to load a model version.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 12),
		}, labels),
		loadFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Name: "model_load_failures_total", Help: "Model version loads that failed.",
		}, labels),
		states: map[[2]string]string{},
		sched:  newSchedulerMetrics(),
		models: newModelMetrics(),
		routes: newRouteMetrics(),
	}
}

// Finished implements core.Tap: the latency histograms of successful requests. Counts
// (successes, failures, items, executions) are read from core's statistics at scrape.
// A cache hit never reached the scheduler: it has an end-to-end time only.
func (m *Metrics) Finished(r *core.Record) {
	m.routes.finished(r)
	if r.Err != nil {
		return // failures are counted from the stats table; their timings are not comparable
	}
	s := m.series(r.Model, r.Version)
	s.total.Observe(r.Total.Seconds())
	if r.Cached {
		return
	}
	t := r.Timing
	s.queue.Observe(t.Queue.Seconds())
	s.input.Observe(t.Input.Seconds())
	s.infer.Observe(t.Infer.Seconds())
	s.output.Observe(t.Output.Seconds())
}

// ObserveInFlight implements core.Observer.
func (m *Metrics) ObserveInFlight(model, version string, delta int) {
	m.series(model, version).inflight.Add(float64(delta))
}

// Loaded is the repository's load hook.
func (m *Metrics) Loaded(model, version string, took time.Duration, err error) {
	m.loadDuration.WithLabelValues(model, version).Observe(took.Seconds())
	if err != nil {
		m.loadFailures.WithLabelValues(model, version).Inc()
	} else {
		m.models.loads.WithLabelValues(model, version).Inc()
	}
}

// State is the repository's state hook; state "" removes the version.
func (m *Metrics) State(model, version, state string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{model, version}
	if old, ok := m.states[k]; ok {
		m.loadState.DeleteLabelValues(model, version, old)
	}
	if state == "" {
		delete(m.states, k)
		return
	}
	m.states[k] = state
	m.loadState.WithLabelValues(model, version, state).Set(1)
}

var (
	descSuccess = prometheus.NewDesc("ferry_request_success_total", "Requests that succeeded.", []string{"model", "version"}, nil)
	descFailure = prometheus.NewDesc("ferry_request_failure_total", "Requests that failed after reaching a model version.", []string{"model", "version"}, nil)
	descItems   = prometheus.NewDesc("ferry_inference_count_total", "Items (batch rows) inferred.", []string{"model", "version"}, nil)
	descExecs   = prometheus.NewDesc("ferry_execution_count_total", "Backend executions (runs).", []string{"model", "version"}, nil)
)

func (m *Metrics) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{m.queue, m.input, m.infer, m.output, m.total, m.inflight, m.loadState, m.loadDuration, m.loadFailures},
		append(append(m.sched.collectors(), m.models.collectors()...), m.routes.collectors()...)...)
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
	ch <- descSuccess
	ch <- descFailure
	ch <- descItems
	ch <- descExecs
	describeCache(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
	for _, s := range m.stats() {
		ch <- prometheus.MustNewConstMetric(descSuccess, prometheus.CounterValue, float64(s.Success.Count), s.Name, s.Version)
		ch <- prometheus.MustNewConstMetric(descFailure, prometheus.CounterValue, float64(s.Fail.Count), s.Name, s.Version)
		ch <- prometheus.MustNewConstMetric(descItems, prometheus.CounterValue, float64(s.InferenceCount), s.Name, s.Version)
		ch <- prometheus.MustNewConstMetric(descExecs, prometheus.CounterValue, float64(s.ExecutionCount), s.Name, s.Version)
		collectCache(ch, s)
	}
}
