package kafka

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryml/ferry/internal/stream"
)

// BenchmarkKafkaLaneEcho is the lane with the model taken out: each message's result is
// its own value, so it measures what the lane adds to Process (BenchmarkKafkaLane): the
// in-process broker, franz-go and the consumer's own bookkeeping.
//
//	go test -run=NONE -bench=KafkaLaneEcho ./internal/stream/kafka/
func BenchmarkKafkaLaneEcho(b *testing.B) {
	servingGC(b)
	p := newProcessor(b)
	n := *benchCount
	var rates, cpus []float64
	for range *benchRounds {
		kc := newCluster(b, 4, "in", "out")
		produce(b, newClient(b, kgo.SeedBrokers(kc.ListenAddrs()...)), rows("in", n, 64))
		c0 := cpuTime()
		took := timeLane(b, kc, p, uint64(n), func(_ context.Context, _ int32, msgs []stream.Message) []stream.Result {
			res := make([]stream.Result, len(msgs))
			for i, m := range msgs {
				res[i].Value = m.Value
			}
			return res
		})
		cpus, rates = append(cpus, (cpuTime()-c0)/float64(n)), append(rates, float64(n)/took.Seconds())
		kc.Close()
	}
	for b.Loop() {
	}
	b.ReportMetric(median(rates), "msgs/s")
	b.ReportMetric(median(cpus)*1e6, "cpu-µs/msg")
	b.Logf("%d rounds of %d messages echoed: %.0f msgs/s, %.2f µs of CPU a message, joining the group included", len(rates), n, median(rates), median(cpus)*1e6)
}
