package redisstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/stream"
	"github.com/ferryml/ferry/internal/stream/redisstream"
)

// BenchmarkLaneAgainstDirect scores b.N rows twice: through the processor directly, in
// the consumer's chunks one after another, and through the Redis lane (XREADGROUP,
// score, XADD, XACK) from a stream filled beforehand. It reports both rates and their
// ratio (lane/direct).
//
//	go test -run '^$' -bench LaneAgainstDirect -benchtime 200000x ./internal/stream/redisstream/
func BenchmarkLaneAgainstDirect(b *testing.B) {
	k := newKeys(b)
	n := b.N
	k.add(b, k.name("in"), n, rows)
	p := processor(b)
	c, err := redisstream.New(k.config("bench"), p, nil)
	if err != nil {
		b.Fatal(err)
	}
	chunk := c.Config().MaxInFlight / 4
	msgs := make([]stream.Message, n)
	for i := range msgs {
		msgs[i].Value = []byte(row(i))
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i += chunk {
		for _, r := range p.Process(context.Background(), msgs[i:min(i+chunk, n)]) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	direct := time.Since(start)

	start = time.Now()
	stop := run(b, c)
	for !k.drained(b, c.Config()) {
		time.Sleep(time.Millisecond)
	}
	lane := time.Since(start)
	b.StopTimer()
	stop()
	if s := c.Stats()[0]; s.Produced != uint64(n) {
		b.Fatalf("stats %+v for %d rows", s, n)
	}
	b.ReportMetric(float64(n)/direct.Seconds(), "direct_rows/s")
	b.ReportMetric(float64(n)/lane.Seconds(), "lane_rows/s")
	b.ReportMetric(direct.Seconds()/lane.Seconds(), "lane/direct")
}
