package remote

import (
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
)

// The upstream metrics, per model and version: what the retries, hedges and breaker do.
var (
	descTries   = prometheus.NewDesc("ferry_remote_tries_total", "Tries sent to the upstream (first tries, retries and hedges).", []string{"model", "version"}, nil)
	descRetries = prometheus.NewDesc("ferry_remote_retries_total", "Retries after a failed try.", []string{"model", "version"}, nil)
	descHedges  = prometheus.NewDesc("ferry_remote_hedges_total", "Second tries sent because the first had not answered by the hedge delay.", []string{"model", "version"}, nil)
	descOpen    = prometheus.NewDesc("ferry_remote_circuit_open", "1 while the upstream's circuit breaker is open (requests fail fast).", []string{"model", "version"}, nil)
)

var _ prometheus.Collector = (*Backend)(nil)

// Describe implements prometheus.Collector.
func (b *Backend) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTries
	ch <- descRetries
	ch <- descHedges
	ch <- descOpen
}

// Collect implements prometheus.Collector: one series per open upstream, read at scrape
// time from the counters the request path bumps.
func (b *Backend) Collect(ch chan<- prometheus.Metric) {
	b.mu.Lock()
	ups := make([]*upstream, 0, len(b.shared))
	for _, u := range b.shared {
		ups = append(ups, u)
	}
	b.mu.Unlock()
	for _, u := range ups {
		model, version := u.model, u.version
		isOpen := 0.0
		if u.breaker.snapshot() == open {
			isOpen = 1
		}
		ch <- prometheus.MustNewConstMetric(descTries, prometheus.CounterValue, float64(u.tries.Load()), model, version)
		ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(u.retries.Load()), model, version)
		ch <- prometheus.MustNewConstMetric(descHedges, prometheus.CounterValue, float64(u.hedges.Load()), model, version)
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, isOpen, model, version)
	}
}

// versionOf names the version from the key Open is given (the version folder).
func versionOf(key string) string { return filepath.Base(key) }
