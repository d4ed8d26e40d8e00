package redisstream_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/ferryml/ferry/internal/lane/lanetest"
	"github.com/ferryml/ferry/internal/stream"
	"github.com/ferryml/ferry/internal/stream/redisstream"
)

// redisAddr is the redis-server the tests use: Debian's package, started by .ci/run.
const redisAddr = "127.0.0.1:6379"

var testCore *lanetest.Core

func TestMain(m *testing.M) {
	ignore := goleak.IgnoreCurrent()
	var err error
	testCore, err = lanetest.OpenExamples("tabular")
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisstream tests need the example models and ONNX Runtime:", err)
		os.Exit(1)
	}
	code := m.Run()
	testCore.Close()
	if code == 0 {
		if err := goleak.Find(ignore); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left running:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var features = lanetest.TabularMapping

// row is a flat JSON row of the tabular model with its id.
func row(id int) string {
	return fmt.Sprintf(`{"id":%d,"age":%g,"income":0.1,"debt_ratio":0.2,"tenure":0.3,"late_payments":%d,"utilization":0.5}`, id, float64(id%100)/10, id%5)
}

func processor(t testing.TB) *stream.Processor {
	t.Helper()
	p, err := stream.NewProcessor(context.Background(), testCore, stream.Options{Model: "tabular", Mapping: features})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// keys is a test's own key space on the shared server: a unique prefix, every key under
// it deleted when the test ends.
type keys struct {
	rdb    *redis.Client
	prefix string
}

func newKeys(t testing.TB) *keys {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		t.Skipf("redis-server not reachable at %s (start it: redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no): %v", redisAddr, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	k := &keys{rdb: rdb, prefix: "ferrytest:" + strings.ReplaceAll(t.Name(), "/", ":") + ":" + hex.EncodeToString(b) + ":"}
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, k.prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.Close()
	})
	return k
}

func (k *keys) name(s string) string { return k.prefix + s }

// config is a consumer of stream "in" writing "out" under k's prefix.
func (k *keys) config(name string) redisstream.Config {
	return redisstream.Config{Name: name, URL: "redis://" + redisAddr + "/0", Stream: k.name("in"), OutputStream: k.name("out")}
}

// add appends entries to a stream in pipelines of 1000 and returns their ids.
func (k *keys) add(t testing.TB, streamName string, n int, fields func(i int) []any) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, 0, n)
	for start := 0; start < n; start += 1000 {
		pipe := k.rdb.Pipeline()
		var cmds []*redis.StringCmd
		for i := start; i < min(start+1000, n); i++ {
			cmds = append(cmds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: streamName, Values: fields(i)}))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("filling %s: %v", streamName, err)
		}
		for _, c := range cmds {
			ids = append(ids, c.Val())
		}
	}
	return ids
}

func rows(i int) []any { return []any{"body", row(i)} }

// run starts c.Run and returns a stop that cancels it and checks it returned nil.
func run(t testing.TB, c *redisstream.Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds; a bound only so a broken consumer fails rather than
// hangs the test.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitProgress(t, what, cond, func() uint64 { return 0 })
}

// waitProgress polls cond until it holds, giving up only when progress has not moved
// for 90 s: a long run on a loaded machine is slow, not broken.
func waitProgress(t testing.TB, what string, cond func() bool, progress func() uint64) {
	t.Helper()
	const stall = 90 * time.Second
	last, deadline := progress(), time.Now().Add(stall)
	for !cond() {
		if p := progress(); p != last {
			last, deadline = p, time.Now().Add(stall)
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s: no progress for %v", what, stall)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// group is the consumer group's state from XINFO GROUPS.
func (k *keys) group(t testing.TB, streamName, group string) redis.XInfoGroup {
	t.Helper()
	gs, err := k.rdb.XInfoGroups(context.Background(), streamName).Result()
	if err != nil {
		t.Fatalf("XINFO GROUPS %s: %v", streamName, err)
	}
	for _, g := range gs {
		if g.Name == group {
			return g
		}
	}
	return redis.XInfoGroup{Lag: -1, Pending: -1}
}

// drained says the group has read every entry and acknowledged all it read.
func (k *keys) drained(t testing.TB, cfg redisstream.Config) bool {
	g := k.group(t, cfg.Stream, cfg.Group)
	return g.Lag == 0 && g.Pending == 0
}

// out is one output entry: the row's id and the entry's fields.
type out struct {
	ID     string
	RowID  int
	Body   string
	Key    string
	HasKey bool
}

// read returns a stream's entries, in order.
func (k *keys) read(t testing.TB, streamName string) []out {
	t.Helper()
	var outs []out
	for after := "-"; ; {
		msgs, err := k.rdb.XRangeN(context.Background(), streamName, after, "+", 1000).Result()
		if err != nil {
			t.Fatalf("XRANGE %s: %v", streamName, err)
		}
		if len(msgs) == 0 {
			return outs
		}
		for _, m := range msgs {
			o := out{ID: m.ID, RowID: -1}
			o.Body, _ = m.Values["body"].(string)
			o.Key, o.HasKey = m.Values["key"].(string)
			var r struct{ ID *int }
			if json.Unmarshal([]byte(o.Body), &r) == nil && r.ID != nil {
				o.RowID = *r.ID
			}
			outs = append(outs, o)
		}
		after = "(" + msgs[len(msgs)-1].ID
	}
}

// fields returns a stream entry's fields.
func (k *keys) fields(t testing.TB, streamName, id string) map[string]any {
	t.Helper()
	msgs, err := k.rdb.XRange(context.Background(), streamName, id, id).Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("XRANGE %s %s: %v %v", streamName, id, msgs, err)
	}
	return msgs[0].Values
}

var errCrash = errors.New("crash")
