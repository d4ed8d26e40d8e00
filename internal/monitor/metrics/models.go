package metrics

import "github.com/prometheus/client_golang/prometheus"

// modelMetrics follow model loads and unloads (on-demand loading, the memory budget).
type modelMetrics struct {
	loads    *prometheus.CounterVec // model, version
	unloads  *prometheus.CounterVec // model, version, reason
	resident *prometheus.GaugeVec   // model, version
}

func newModelMetrics() modelMetrics {
	return modelMetrics{
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Name: "model_loads_total", Help: "Model versions loaded successfully.",
		}, []string{"model", "version"}),
		unloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Name: "model_unloads_total",
			Help: "Model versions unloaded, by reason: evicted (memory budget), idle, api, replaced (by a reload), removed (from disk), shutdown.",
		}, []string{"model", "version", "reason"}),
		resident: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ferry", Name: "model_resident_bytes",
			Help: "Memory each loaded model version was measured to hold at load (set only with a memory budget).",
		}, []string{"model", "version"}),
	}
}

func (mm modelMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{mm.loads, mm.unloads, mm.resident}
}

// Unloaded is the repository's unload hook.
func (m *Metrics) Unloaded(model, version, reason string) {
	m.models.unloads.WithLabelValues(model, version, reason).Inc()
}

// Resident is the repository's resident-bytes hook: a loaded version's measured bytes,
// or a negative count when it is unloaded.
func (m *Metrics) Resident(model, version string, bytes int64) {
	if bytes < 0 {
		m.models.resident.DeleteLabelValues(model, version)
		return
	}
	m.models.resident.WithLabelValues(model, version).Set(float64(bytes))
}

// ResidentTotal is a gauge of the bytes the memory budget accounts for the loaded models
// (repository.Repository.ResidentBytes), read at each scrape. Register it only when the
// server has a memory budget.
func ResidentTotal(bytes func() int64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "ferry", Name: "models_resident_bytes",
		Help: "Memory the loaded models hold as the memory budget accounts it: measured at load, plus loads in progress.",
	}, func() float64 { return float64(bytes()) })
}
