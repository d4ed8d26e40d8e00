package stream

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats is one consumer's counts for one partition (Kafka) or stream (Redis, partition
// 0), as the metrics report them.
type Stats struct {
	Broker    string // "kafka" or "redis"
	Consumer  string // the consumer's name in the streams file
	Topic     string // the input topic or stream
	Partition int32
	Consumed  uint64 // messages read
	Produced  uint64 // output messages written
	Failed    uint64 // messages written to the dead-letter topic
	Retried   uint64 // messages put back to be consumed again (core unavailable)
	Lag       int64  // messages in the input not yet consumed by the group; -1 when unknown
}

var (
	labels       = []string{"broker", "consumer", "topic", "partition"}
	consumedDesc = prometheus.NewDesc("ferry_stream_consumed_total", "Messages a streaming consumer read from its input topic or stream.", labels, nil)
	producedDesc = prometheus.NewDesc("ferry_stream_produced_total", "Output messages a streaming consumer wrote.", labels, nil)
	failedDesc   = prometheus.NewDesc("ferry_stream_failed_total", "Messages a streaming consumer wrote to its dead-letter topic (undecodable, or failed inference).", labels, nil)
	retriedDesc  = prometheus.NewDesc("ferry_stream_retried_total", "Messages a streaming consumer left to be consumed again because the model could not take them then.", labels, nil)
	lagDesc      = prometheus.NewDesc("ferry_stream_lag", "Messages in the input partition or stream the consumer group has not consumed yet.", labels, nil)
)

// Collector reports every consumer's Stats, read when Prometheus scrapes.
func Collector(stats func() []Stats) prometheus.Collector { return collector(stats) }

type collector func() []Stats

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{consumedDesc, producedDesc, failedDesc, retriedDesc, lagDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c() {
		lv := []string{s.Broker, s.Consumer, s.Topic, strconv.Itoa(int(s.Partition))}
		ch <- prometheus.MustNewConstMetric(consumedDesc, prometheus.CounterValue, float64(s.Consumed), lv...)
		ch <- prometheus.MustNewConstMetric(producedDesc, prometheus.CounterValue, float64(s.Produced), lv...)
		ch <- prometheus.MustNewConstMetric(failedDesc, prometheus.CounterValue, float64(s.Failed), lv...)
		ch <- prometheus.MustNewConstMetric(retriedDesc, prometheus.CounterValue, float64(s.Retried), lv...)
		if s.Lag >= 0 {
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(s.Lag), lv...)
		}
	}
}
