package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/prometheus/client_golang/prometheus"
)

// schedulerMetrics are the queue's own metrics, fed by scheduler.Observer.
type schedulerMetrics struct {
	batchSize *prometheus.HistogramVec
	depth     *prometheus.GaugeVec
	dropped   *prometheus.CounterVec
	waited    *prometheus.HistogramVec
}

func newSchedulerMetrics() schedulerMetrics {
	labels := []string{"model", "version"}
	return schedulerMetrics{
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ferry", Name: "batch_size", Help: "Rows per backend execution.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}, labels),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ferry", Name: "queue_depth", Help: "Requests waiting in the dynamic batcher's queue, per priority level.",
		}, []string{"model", "version", "priority"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Name: "requests_dropped_total",
			Help: "Requests that left the queue without running: reason is queue_full (rejected), timeout (the queue policy's), deadline (the request's own: gRPC deadline or Ferry-Timeout) or cancelled (the client left).",
		}, []string{"model", "version", "reason"}),
		waited: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ferry", Name: "batch_queue_delay_seconds",
			Help: "How long each dynamic batch's oldest request waited before the batch ran, by why it ran: " +
				"full (max_batch_size rows), preferred (a preferred batch size), delay (max_queue_delay expired) " +
				"or idle (an instance was free and no more requests were expected in time).",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 12), // 25 µs .. 51 ms
		}, []string{"model", "version", "reason"}),
	}
}

func (s schedulerMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.batchSize, s.depth, s.dropped, s.waited}
}

// Scheduler returns the observer for one model version's scheduler.
func (m *Metrics) Scheduler(model, version string) scheduler.Observer {
	return &versionObserver{m: m.sched, model: model, version: version,
		batchSize: m.sched.batchSize.WithLabelValues(model, version)}
}

type versionObserver struct {
	m              schedulerMetrics
	model, version string
	batchSize      prometheus.Observer
	depth          sync.Map // priority level -> prometheus.Gauge, looked up once each
	waited         sync.Map // reason -> prometheus.Observer, looked up once each
}

func (o *versionObserver) Executed(rows int) {
	o.batchSize.Observe(float64(rows))
}

func (o *versionObserver) Dropped(reason string) {
	o.m.dropped.WithLabelValues(o.model, o.version, reason).Inc()
}

// Batched runs once per batch, which at low load is once per request.
func (o *versionObserver) Batched(waited time.Duration, reason string) {
	h, ok := o.waited.Load(reason)
	if !ok {
		h, _ = o.waited.LoadOrStore(reason, o.m.waited.WithLabelValues(o.model, o.version, reason))
	}
	h.(prometheus.Observer).Observe(waited.Seconds())
}

// QueueDepth runs twice per queued request.
func (o *versionObserver) QueueDepth(level, delta int) {
	g, ok := o.depth.Load(level)
	if !ok {
		g, _ = o.depth.LoadOrStore(level, o.m.depth.WithLabelValues(o.model, o.version, strconv.Itoa(level)))
	}
	g.(prometheus.Gauge).Add(float64(delta))
}
