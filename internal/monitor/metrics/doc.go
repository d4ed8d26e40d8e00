// Package metrics exports Ferry's Prometheus metrics. Request counters are read at scrape
// time from core's statistics table, so /metrics and the statistics extension report the
// same numbers; latency histograms come from core's request Tap, in-flight gauges and load
// metrics from the hooks core and repository declare. It observes and is never a hop on
// the request path.
package metrics
