package metrics

import (
	"github.com/ferryml/ferry/internal/objstore"
	"github.com/prometheus/client_golang/prometheus"
)

// UpstreamStats is what one remote model version's upstream did so far: the remote
// backend counts, cmd/ferry hands the counts over, and these are the series.
type UpstreamStats struct {
	Model, Version         string
	Tries, Retries, Hedges int64
	CircuitOpen            bool
}

// The upstream metrics, per model and version: what the retries, hedges and breaker do.
var (
	descTries   = prometheus.NewDesc("ferry_remote_tries_total", "Tries sent to the upstream (first tries, retries and hedges).", []string{"model", "version"}, nil)
	descRetries = prometheus.NewDesc("ferry_remote_retries_total", "Retries after a failed try.", []string{"model", "version"}, nil)
	descHedges  = prometheus.NewDesc("ferry_remote_hedges_total", "Second tries sent because the first had not answered by the hedge delay.", []string{"model", "version"}, nil)
	descOpen    = prometheus.NewDesc("ferry_remote_circuit_open", "1 while the upstream's circuit breaker is open (requests fail fast).", []string{"model", "version"}, nil)
)

// Upstreams exports the remote backend's counters, read from stats at each scrape.
func Upstreams(stats func() []UpstreamStats) prometheus.Collector { return upstreams(stats) }

type upstreams func() []UpstreamStats

func (upstreams) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTries
	ch <- descRetries
	ch <- descHedges
	ch <- descOpen
}

func (u upstreams) Collect(ch chan<- prometheus.Metric) {
	for _, s := range u() {
		open := 0.0
		if s.CircuitOpen {
			open = 1
		}
		ch <- prometheus.MustNewConstMetric(descTries, prometheus.CounterValue, float64(s.Tries), s.Model, s.Version)
		ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(s.Retries), s.Model, s.Version)
		ch <- prometheus.MustNewConstMetric(descHedges, prometheus.CounterValue, float64(s.Hedges), s.Model, s.Version)
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, open, s.Model, s.Version)
	}
}

// Store exports an object-store mirror's counters (objstore.Syncer.Stats), read at each
// scrape. Register it only when the repository is an object store.
func Store(stats func() objstore.Stats) []prometheus.Collector {
	var cs []prometheus.Collector
	for _, c := range []struct {
		name, help string
		get        func(objstore.Stats) int64
	}{
		{"model_store_syncs_total", "Syncs of the model repository from its object store.", func(s objstore.Stats) int64 { return s.Syncs }},
		{"model_store_sync_failures_total", "Syncs that could not list the object store or update the cache.", func(s objstore.Stats) int64 { return s.Failures }},
		{"model_store_downloads_total", "Objects downloaded and verified.", func(s objstore.Stats) int64 { return s.Downloads }},
		{"model_store_downloaded_bytes_total", "Bytes of the objects downloaded and verified.", func(s objstore.Stats) int64 { return s.DownloadedBytes }},
		{"model_store_refused_objects_total", "Objects refused: download failed, or size or checksum mismatch.", func(s objstore.Stats) int64 { return s.Refused }},
		{"model_store_deleted_files_total", "Cached files deleted because their object is gone.", func(s objstore.Stats) int64 { return s.Deleted }},
	} {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "ferry", Name: c.name, Help: c.help},
			func() float64 { return float64(c.get(stats())) }))
	}
	return cs
}
