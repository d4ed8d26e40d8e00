package inferlog

import "github.com/prometheus/client_golang/prometheus"

var (
	descRecords = prometheus.NewDesc("ferry_inference_log_records_total",
		"Inference log entries a sink delivered.", []string{"sink"}, nil)
	descDropped = prometheus.NewDesc("ferry_inference_log_dropped_total",
		"Inference log entries dropped because a queue was full (sink=\"capture\": before any sink).", []string{"sink"}, nil)
	descFailed = prometheus.NewDesc("ferry_inference_log_failed_total",
		"Inference log entries a sink failed to deliver (after its retries).", []string{"sink"}, nil)
)

// Collector exports the log's counters; register it once.
func (l *Logger) Collector() prometheus.Collector { return collector{l} }

// collector reads the atomic counters at scrape time: the request path only adds to
// an atomic when it drops.
type collector struct{ l *Logger }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRecords
	ch <- descDropped
	ch <- descFailed
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, sink string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), sink)
	}
	counter(descDropped, c.l.dropped.Load(), SinkCapture)
	for _, r := range c.l.sinks {
		name := r.s.name()
		counter(descRecords, r.records.Load(), name)
		counter(descDropped, r.dropped.Load(), name)
		counter(descFailed, r.failed.Load(), name)
	}
}
