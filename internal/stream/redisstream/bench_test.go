package redisstream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// BenchmarkLaneLatency writes b.N rows to the input stream at a steady rate while the
// lane runs, each row carrying its send time (a field the model does not read, so the
// answer keeps it), and reads the answers as they come: it reports the end-to-end
// latency's median and 99th percentile, from XADD to the answer read back.
//
//	go test -run '^$' -bench LaneLatency -benchtime 20000x ./internal/stream/redisstream/
func BenchmarkLaneLatency(b *testing.B) {
	const perMilli = 5 // 5000 rows/s
	k := newKeys(b)
	c, err := redisstream.New(k.config("latency"), processor(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	run(b, c)
	ctx := context.Background()
	n := b.N
	b.ResetTimer()
	go func() { // the producer: perMilli rows every millisecond
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for sent := 0; sent < n; <-tick.C {
			pipe := k.rdb.Pipeline()
			for range min(perMilli, n-sent) {
				body := fmt.Sprintf(`{"sent":%d,%s`, time.Now().UnixNano(), row(sent)[1:])
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: k.name("in"), Values: []any{"body", body}})
				sent++
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	lat := make([]time.Duration, 0, n)
	for last := "0"; len(lat) < n; {
		res, err := k.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{k.name("out"), last}, Count: 1000, Block: 5 * time.Second}).Result()
		if err != nil {
			b.Fatalf("reading answers (%d of %d): %v", len(lat), n, err)
		}
		now := time.Now().UnixNano()
		for _, m := range res[0].Messages {
			var a struct{ Sent int64 }
			if err := json.Unmarshal([]byte(m.Values["body"].(string)), &a); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Duration(now-a.Sent))
			last = m.ID
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}
