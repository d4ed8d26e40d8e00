package redisstream_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/stream"
	"github.com/ferryml/ferry/internal/stream/redisstream"
)

// TestScoresEveryEntryInOrder: one consumer writes an answer for every entry, in the
// stream's order, each the processor's own answer to that row, with the entry's key.
func TestScoresEveryEntryInOrder(t *testing.T) {
	k := newKeys(t)
	const n = 1000
	k.add(t, k.name("in"), n, func(i int) []any {
		if i%2 == 0 {
			return []any{"body", row(i), "key", fmt.Sprint("k", i%7)}
		}
		return rows(i)
	})
	p := processor(t)
	c, err := redisstream.New(k.config("score"), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.Config()
	if cfg.Group != "ferry-score" || cfg.DeadLetterStream != k.name("in.dlq") || cfg.Field != "body" || cfg.MaxInFlight != 1024 || cfg.Consumer == "" {
		t.Errorf("defaults: %+v", cfg)
	}
	run(t, c)
	waitFor(t, "every entry acknowledged", func() bool { return k.drained(t, cfg) })

	outs := k.read(t, cfg.OutputStream)
	if len(outs) != n {
		t.Fatalf("%d output entries for %d input entries", len(outs), n)
	}
	msgs := make([]stream.Message, n)
	for i := range msgs {
		msgs[i].Value = []byte(row(i))
	}
	want := p.Process(context.Background(), msgs)
	for i, o := range outs {
		if o.RowID != i || o.Body != string(want[i].Value) {
			t.Fatalf("output %d: %s, want %s", i, o.Body, want[i].Value)
		}
		if wantKey := fmt.Sprint("k", i%7); o.HasKey != (i%2 == 0) || (o.HasKey && o.Key != wantKey) {
			t.Fatalf("output %d: key %q (present %v)", i, o.Key, o.HasKey)
		}
	}
	t.Logf("first output: body %s, key %s", outs[0].Body, outs[0].Key)
	waitFor(t, "the lag gauge to reach 0", func() bool { return c.Stats()[0].Lag == 0 })
	got := c.Stats()[0]
	if got.Broker != "redis" || got.Consumer != "score" || got.Topic != cfg.Stream || got.Consumed != n || got.Produced != n || got.Failed != 0 || got.Retried != 0 {
		t.Errorf("stats %+v", got)
	}
}

// TestPoisonEntriesGoToTheDeadLetterStream: entries that cannot be scored land in the
// dead-letter stream with their body, the error and their entry id; the good ones around
// them are answered in order.
func TestPoisonEntriesGoToTheDeadLetterStream(t *testing.T) {
	k := newKeys(t)
	in := k.name("in")
	entries := [][]any{
		{"payload", row(0)},
		{"payload", `not json`, "key", "k1"},
		{"payload", row(1)},
		{"other", row(99)},
		{"payload", `{"id":3,"age":"old","income":0.1,"debt_ratio":0.2,"tenure":0.3,"late_payments":1,"utilization":0.5}`},
		{"payload", row(2)},
		{"payload", `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,5],"data":[0,0,0,0,0]}]}`},
		{"payload", row(3)},
	}
	ids := k.add(t, in, len(entries), func(i int) []any { return entries[i] })
	cfg := k.config("poison")
	cfg.Field = "payload"
	cfg.DeadLetterStream = k.name("dead")
	c, err := redisstream.New(cfg, processor(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, c)
	waitFor(t, "every entry acknowledged", func() bool { return k.drained(t, c.Config()) })

	var got []int
	for _, o := range k.read(t, cfg.OutputStream) {
		got = append(got, o.RowID)
	}
	if fmt.Sprint(got) != "[0 1 2 3]" {
		t.Errorf("output rows %v, want [0 1 2 3]", got)
	}
	dead := k.read(t, cfg.DeadLetterStream)
	want := []struct {
		at   int
		body string
		err  string
	}{{1, `not json`, "JSON"}, {3, ``, `no "payload" field`}, {4, entries[4][1].(string), `"age"`}, {6, entries[6][1].(string), `features`}}
	if len(dead) != len(want) {
		t.Fatalf("%d dead letters, want %d: %+v", len(dead), len(want), dead)
	}
	for i, w := range want {
		f := k.fields(t, cfg.DeadLetterStream, dead[i].ID)
		if f["body"] != w.body || f["source"] != ids[w.at] || !strings.Contains(fmt.Sprint(f["error"]), w.err) {
			t.Errorf("dead letter %d: %v, want body %q, source %s, an error naming %s", i, f, w.body, ids[w.at], w.err)
		}
	}
	if f := k.fields(t, cfg.DeadLetterStream, dead[0].ID); f["key"] != "k1" {
		t.Errorf("dead letter of a keyed entry: %v, want its key", f)
	}
	if s := c.Stats()[0]; s.Consumed != 8 || s.Produced != 4 || s.Failed != 4 {
		t.Errorf("stats %+v", s)
	}
}

// TestEntriesWaitWhileTheModelIsUnavailable: with the model unloaded nothing is written
// or acknowledged; once it is back every entry is answered exactly once, in order.
func TestEntriesWaitWhileTheModelIsUnavailable(t *testing.T) {
	k := newKeys(t)
	const n = 300
	k.add(t, k.name("in"), n, rows)
	p := processor(t)
	ctx := context.Background()
	if err := testCore.UnloadModel(ctx, "tabular", false); err != nil {
		t.Fatal(err)
	}
	loaded := false
	load := func() {
		if !loaded {
			loaded = true
			if err := testCore.LoadModel(ctx, "tabular", core.LoadOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(load)
	cfg := k.config("unavailable")
	cfg.MaxInFlight = 64
	c, err := redisstream.New(cfg, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, c)
	waitFor(t, "a retry", func() bool { return c.Stats()[0].Retried > 0 })
	if n := len(k.read(t, cfg.OutputStream)); n != 0 {
		t.Fatalf("%d outputs written while the model was unloaded", n)
	}
	if g := k.group(t, cfg.Stream, c.Config().Group); g.Pending == 0 || g.Pending > 64 {
		t.Fatalf("pending entries while unavailable: %d, want 1..64", g.Pending)
	}
	load()
	waitFor(t, "every entry acknowledged", func() bool { return k.drained(t, c.Config()) })
	outs := k.read(t, cfg.OutputStream)
	for i, o := range outs {
		if o.RowID != i {
			t.Fatalf("output %d is row %d", i, o.RowID)
		}
	}
	if len(outs) != n {
		t.Fatalf("%d outputs for %d entries", len(outs), n)
	}
	t.Logf("stats after the model came back: %+v", c.Stats()[0])
}

func TestBadConfig(t *testing.T) {
	p := processor(t)
	good := redisstream.Config{Name: "c", Stream: "in", OutputStream: "out"}
	for _, tc := range []struct {
		name string
		edit func(*redisstream.Config)
		want []string
	}{
		{"empty config names every missing field", func(c *redisstream.Config) { *c = redisstream.Config{} },
			[]string{"name: required", "stream: required", "output_stream: required"}},
		{"URL of another scheme", func(c *redisstream.Config) { c.URL = "http://127.0.0.1:6379" }, []string{`url "http://127.0.0.1:6379"`, "invalid URL scheme"}},
		{"URL with a bad database", func(c *redisstream.Config) { c.URL = "redis://127.0.0.1:6379/x" }, []string{`url "redis://127.0.0.1:6379/x"`, "invalid database"}},
		{"output is the input", func(c *redisstream.Config) { c.OutputStream = "in" }, []string{`output_stream: "in" is also the input stream`}},
		{"dead letters into the input", func(c *redisstream.Config) { c.DeadLetterStream = "in" }, []string{`dead_letter_stream: "in" is also the input stream`}},
		{"negative limits", func(c *redisstream.Config) { c.MaxInFlight, c.ClaimIdle, c.MaxLen = -1, -time.Second, -5 },
			[]string{"max_in_flight: must be >= 0, got -1", "claim_idle: must be >= 0, got -1s", "max_len: must be >= 0, got -5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			_, err := redisstream.New(cfg, p, nil)
			if err == nil {
				t.Fatalf("New(%+v) = nil error", cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New(%+v) error %q, want it to say %q", cfg, err, w)
				}
			}
		})
	}
	if _, err := redisstream.New(good, nil, nil); err == nil || !strings.Contains(err.Error(), "no processor") {
		t.Errorf("New without a processor: %v", err)
	}
}

// TestUnreachableServerFailsRun: Run says which address it could not reach, and returns.
func TestUnreachableServerFailsRun(t *testing.T) {
	cfg := redisstream.Config{Name: "c", URL: "redis://127.0.0.1:1/0", Stream: "in", OutputStream: "out"}
	c, err := redisstream.New(cfg, processor(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connecting to redis at 127.0.0.1:1") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Run against a closed port: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Run(ctx); err != nil {
		t.Errorf("Run with its context already ended: %v, want nil", err)
	}
}

// TestInputOfTheWrongTypeFailsRun: an input key that is not a stream fails Run at once,
// naming the group, the stream and the server's reason.
func TestInputOfTheWrongTypeFailsRun(t *testing.T) {
	k := newKeys(t)
	if err := k.rdb.Set(t.Context(), k.name("in"), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c, err := redisstream.New(k.config("wrongtype"), processor(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), `creating group "ferry-wrongtype" on stream "`+k.name("in")+`"`) || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("Run over a string key: %v", err)
	}
}
