package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryml/ferry/internal/batch/batchgen"
)

// streamRow is one flat JSON row for the tabular model, as the streaming examples send.
func streamRow(i int) []byte {
	r := batchgen.RowAt(7, i)
	return fmt.Appendf(nil, `{"id":"r%d","age":%v,"income":%v,"debt_ratio":%v,"tenure":%v,"late_payments":%v,"utilization":%v}`,
		i, r.Age, r.Income, r.DebtRatio, r.Tenure, r.LatePayments, r.Utilization)
}

var tabularMapping = map[string][]string{"features": batchgen.Features}

// TestServeConsumesKafkaAndRedis: `ferry serve` with a Kafka consumer given by --consume
// and a Redis Streams consumer given by --streams scores every message of both inputs,
// once, and reports them in /metrics.
func TestServeConsumesKafkaAndRedis(t *testing.T) {
	const n = 2000
	repo, _ := batchSetup(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "events", "scores", "events.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	brokers := kc.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("scores"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: "events", Key: []byte(fmt.Sprint(i % 7)), Value: streamRow(i)})
	}
	recs = append(recs, &kgo.Record{Topic: "events", Value: []byte(`{"id":"poison"}`)})
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	prefix := fmt.Sprintf("ferry-test-%d-", time.Now().UnixNano())
	useRedis := rdb.Ping(context.Background()).Err() == nil
	if !useRedis {
		t.Log("redis-server not reachable at 127.0.0.1:6379: the Redis half is skipped (start it: redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no)")
	}
	streams := filepath.Join(t.TempDir(), "streams.yaml")
	var file strings.Builder
	file.WriteString("consumers:\n")
	if useRedis {
		defer func() {
			keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
			if len(keys) > 0 {
				rdb.Del(context.Background(), keys...)
			}
		}()
		for i := range n {
			if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: prefix + "in", Values: []any{"body", streamRow(i)}}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		m, _ := json.Marshal(tabularMapping)
		fmt.Fprintf(&file, "  - name: redis-scorer\n    model: tabular\n    mapping: %s\n    passthrough: [id]\n    redis: {url: \"redis://127.0.0.1:6379/0\", stream: %s, output_stream: %s}\n",
			m, prefix+"in", prefix+"out")
	}
	if err := os.WriteFile(streams, []byte(file.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	consume := "kafka://" + strings.Join(brokers, ",") + "/events?model=tabular&output=scores&name=kafka-scorer&mapping=features:" + strings.Join(batchgen.Features, ",")
	ts := startServer(t, repo, onlyTabular, func(c *serveConfig) { c.lanes.consume, c.lanes.streamsFile = []string{consume}, streams })

	// Kafka: every row scored once (flat rows carry every field the model does not read).
	seen := map[string]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for len(seen) < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			var out struct {
				ID    string  `json:"id"`
				Score float64 `json:"score"`
			}
			if err := json.Unmarshal(r.Value, &out); err != nil || out.ID == "" {
				t.Fatalf("output %s: %v", r.Value, err)
			}
			if seen[out.ID] {
				t.Logf("duplicate %s (at-least-once)", out.ID)
			}
			seen[out.ID] = true
		})
	}
	if len(seen) != n {
		t.Fatalf("kafka: %d of %d rows scored", len(seen), n)
	}
	if useRedis {
		waitFor(t, func() bool { l, _ := rdb.XLen(context.Background(), prefix+"out").Result(); return l >= n })
		out, err := rdb.XRangeN(context.Background(), prefix+"out", "-", "+", 3).Result()
		if err != nil || len(out) == 0 || !strings.Contains(fmt.Sprint(out[0].Values["body"]), `"id":"r0"`) {
			t.Fatalf("redis output %v %v", out, err)
		}
	}
	waitFor(t, func() bool {
		_, _, m := httpDo(t, http.MethodGet, ts.URL+"/metrics", "", nil)
		return strings.Contains(string(m), fmt.Sprintf(`ferry_stream_failed_total{broker="kafka",consumer="kafka-scorer"`)) &&
			strings.Contains(string(m), `ferry_stream_produced_total{broker="kafka",consumer="kafka-scorer"`) &&
			(!useRedis || strings.Contains(string(m), `ferry_stream_produced_total{broker="redis",consumer="redis-scorer",partition="0",topic="`+prefix+`in"} 2000`))
	})
}

// TestStreamsConfigErrors: a consumer that cannot work is refused at start, naming it.
func TestStreamsConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ file, consume, want string }{
		{consume: "nats://x/y?model=m&output=o", want: `scheme "nats"`},
		{consume: "kafka://b:9092/in?output=o", want: "model is required"},
		{consume: "kafka://b:9092/in?model=m", want: "output_topic"},
		{consume: "redis://127.0.0.1:6379/0?model=m&output=o", want: "stream and output_stream"},
		{consume: "kafka://b:9092/in?model=m&output=o&max_in_flight=x", want: "max_in_flight"},
		{consume: "kafka://b:9092/in?model=m&output=o&max_in_flight_bytes=1MiB", want: "max_in_flight_bytes"},
		{file: "consumers:\n  - {name: a, model: m, kafka: {brokers: [b], input_topic: i, output_topic: o, max_in_flight_bytes: -1}}\n", want: "max_in_flight_bytes must not be negative"},
		{consume: "kafka://b:9092/in?model=m&output=o&mapping=features", want: "INPUT:column"},
		{file: "consumers:\n  - {name: a, model: m, kafka: {brokers: [b], input_topic: i, output_topic: o}, redis: {stream: s, output_stream: o}}\n", want: "exactly one of kafka and redis"},
		{file: "consumers:\n  - {name: a, model: m, kafka: {brokers: [b], input_topic: i, output_topic: o}}\n  - {name: a, model: m, kafka: {brokers: [b], input_topic: i, output_topic: o}}\n", want: `two consumers are named "a"`},
		{file: "consumers:\n  - {name: a, model: m, kafka: {brokers: [b], input_topic: i, output_topic: o, typo: 1}}\n", want: "typo"},
	} {
		cfg := lanesConfig{}
		if tc.consume != "" {
			cfg.consume = []string{tc.consume}
		}
		if tc.file != "" {
			cfg.streamsFile = filepath.Join(dir, "s.yaml")
			os.WriteFile(cfg.streamsFile, []byte(tc.file), 0o644)
		}
		if _, err := cfg.specs(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q%q: %v, want an error naming %q", tc.consume, tc.file, err, tc.want)
		}
	}
}

// TestRedisLoggerLevels: go-redis's failed dials are debug lines (the consumer reports
// each failed connection itself, with its backoff); its other messages stay warnings.
func TestRedisLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := redisLogger{slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 5, errors.New("connection refused"))
	l.Printf(context.Background(), "redis: discarding bad PubSub connection: %v", errors.New("EOF"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"level":"DEBUG"`) || !strings.Contains(lines[1], `"level":"WARN"`) {
		t.Errorf("go-redis lines:\n%s\nwant the failed dial at DEBUG, the other at WARN", buf.String())
	}
}
