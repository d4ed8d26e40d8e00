package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/internal/core"
)

// routeMetrics follow routing: which route sent requests to which version, and what the
// shadow copies did. Shadow copies are requests to their version like any other (its
// statistics and latency histograms count them); these tell them apart.
type routeMetrics struct {
	routed     *prometheus.CounterVec   // model, version, route
	shadows    *prometheus.CounterVec   // model, version, outcome
	shadowTime *prometheus.HistogramVec // model, version
	shadowDiff *prometheus.HistogramVec // model, version

	series sync.Map // [3]string{model, version, route} -> prometheus.Counter
}

// diffBuckets span exact agreement (0) to a different answer: the largest absolute
// difference between a shadow's outputs and the primary's (+Inf: a shape or datatype
// differs).
var diffBuckets = []float64{0, 1e-6, 1e-4, 1e-3, 1e-2, 0.1, 1, 10}

func newRouteMetrics() *routeMetrics {
	labels := []string{"model", "version"}
	return &routeMetrics{
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Name: "routed_requests_total",
			Help: "Requests an endpoint's routing policy sent to a version, by route: match, sticky, weight, default, shadow.",
		}, []string{"model", "version", "route"}),
		shadows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Name: "shadow_requests_total",
			Help: "Shadow copies run on a version, by outcome: ok, error.",
		}, []string{"model", "version", "outcome"}),
		shadowTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ferry", Name: "shadow_duration_seconds", Help: "End-to-end time of shadow copies in the server core.",
			Buckets: latencyBuckets,
		}, labels),
		shadowDiff: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ferry", Name: "shadow_output_difference",
			Help:    "Largest absolute difference between a shadow copy's outputs and the primary's, when both succeeded (+Inf: shapes or datatypes differ).",
			Buckets: diffBuckets,
		}, labels),
	}
}

func (rm *routeMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{rm.routed, rm.shadows, rm.shadowTime, rm.shadowDiff}
}

// finished counts a routed request; a no-op for one that named its version.
func (rm *routeMetrics) finished(r *core.Record) {
	if r.Route == "" {
		return
	}
	k := [3]string{r.Model, r.Version, r.Route}
	c, ok := rm.series.Load(k)
	if !ok {
		c, _ = rm.series.LoadOrStore(k, rm.routed.WithLabelValues(r.Model, r.Version, r.Route))
	}
	c.(prometheus.Counter).Inc()
	if r.Shadow == nil {
		return
	}
	outcome := "ok"
	if r.Err != nil {
		outcome = "error"
	}
	rm.shadows.WithLabelValues(r.Model, r.Version, outcome).Inc()
	rm.shadowTime.WithLabelValues(r.Model, r.Version).Observe(r.Total.Seconds())
	if r.Err == nil && !r.Shadow.PrimaryFailed {
		rm.shadowDiff.WithLabelValues(r.Model, r.Version).Observe(r.Shadow.Diff)
	}
}

// ShadowsDropped is a counter of the shadow copies dropped because every shadow slot
// was busy (core.Server.ShadowsDropped), read at each scrape.
func ShadowsDropped(n func() int64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "ferry", Name: "shadow_dropped_total", Help: "Shadow copies dropped because every shadow slot was busy.",
	}, func() float64 { return float64(n()) })
}
