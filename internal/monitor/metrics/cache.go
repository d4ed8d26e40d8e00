package metrics

import (
	"github.com/ferryml/ferry/internal/core"
	"github.com/prometheus/client_golang/prometheus"
)

// The response cache's counters are read from core's statistics table, like the request
// counters, so /stats (cache_hit, cache_miss) and /metrics agree.
var (
	descCacheHits   = prometheus.NewDesc("ferry_cache_hits_total", "Requests answered from the response cache.", []string{"model", "version"}, nil)
	descCacheMisses = prometheus.NewDesc("ferry_cache_misses_total", "Requests that looked in the response cache, missed, and stored their response.", []string{"model", "version"}, nil)
)

func describeCache(ch chan<- *prometheus.Desc) {
	ch <- descCacheHits
	ch <- descCacheMisses
}

func collectCache(ch chan<- prometheus.Metric, s core.ModelStats) {
	ch <- prometheus.MustNewConstMetric(descCacheHits, prometheus.CounterValue, float64(s.CacheHit.Count), s.Name, s.Version)
	ch <- prometheus.MustNewConstMetric(descCacheMisses, prometheus.CounterValue, float64(s.CacheMiss.Count), s.Name, s.Version)
}

// CacheBytes is a gauge of the bytes the response cache holds, read at each scrape from
// bytes (cache.Cache.Bytes). Register it only when the server has a cache.
func CacheBytes(bytes func() int64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "ferry", Name: "cache_bytes", Help: "Bytes held by the response cache (data plus per-entry overhead).",
	}, func() float64 { return float64(bytes()) })
}
