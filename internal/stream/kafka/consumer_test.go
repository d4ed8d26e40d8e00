package kafka

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/stream"
)

// keyed is n messages over keys keys: message i has key "k<i%keys>", id i, a header
// naming it, and every seventh is a V2 request rather than a row.
func keyed(topic string, n, keys int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v := row(i)
		if i%7 == 3 {
			v = v2(i)
		}
		recs[i] = &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i%keys)), Value: v,
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte(strconv.Itoa(i))}}}
	}
	return recs
}

// seq is the message number an output's id names ("17" or "v2-17").
func seq(t testing.TB, o output) int {
	n, err := strconv.Atoi(strings.TrimPrefix(o.id, "v2-"))
	if err != nil {
		t.Fatalf("output %s: no id", o.rec.Value)
	}
	return n
}

// TestOutputsKeepEachKeysOrder: many keys over four partitions, scored by a consumer
// whose in-flight bound cuts the stream into many polls: every key's outputs come in
// its inputs' order, keyed and headed as the inputs, rows and V2 requests alike.
func TestOutputsKeepEachKeysOrder(t *testing.T) {
	kc := newCluster(t, 4, "in", "out", "in.dlq")
	const n, keys = 6000, 24
	before := time.Now().Truncate(time.Millisecond) // Kafka's timestamps are milliseconds
	produce(t, newClient(t, kgo.SeedBrokers(kc.ListenAddrs()...)), keyed("in", n, keys))
	r := start(t, Config{Name: "order", Brokers: kc.ListenAddrs(), InputTopic: "in", OutputTopic: "out", MaxInFlight: 300}, newProcessor(t))

	outs := readTopic(t, kc.ListenAddrs(), "out", atLeast(n))
	after := time.Now()
	last := map[string]int{}
	for _, o := range outs {
		if ts := o.rec.Timestamp; ts.Before(before) || ts.After(after) {
			t.Fatalf("output %s: timestamp %v, not between the test's start %v and its reading %v", o.rec.Value, ts, before, after)
		}
		i := seq(t, o)
		key := string(o.rec.Key)
		if want := "k" + strconv.Itoa(i%keys); key != want {
			t.Fatalf("output of message %d keyed %q, want %q", i, key, want)
		}
		if prev, ok := last[key]; ok && i <= prev {
			t.Fatalf("key %s: output of message %d after message %d", key, i, prev)
		}
		last[key] = i
		if h := header(o.rec, "trace"); h != strconv.Itoa(i) {
			t.Fatalf("output of message %d: trace header %q", i, h)
		}
		if isV2 := strings.HasPrefix(o.id, "v2-"); isV2 != (i%7 == 3) || !strings.Contains(string(o.rec.Value), `"score"`) && !isV2 {
			t.Fatalf("output of message %d: %s", i, o.rec.Value)
		}
	}
	if len(outs) != n {
		t.Errorf("%d outputs for %d messages", len(outs), n)
	}
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	s := totals(r.c)
	if s.Consumed != n || s.Produced != n || s.Failed != 0 {
		t.Errorf("stats %+v, want %d consumed and produced", s, n)
	}
	for _, p := range r.c.Stats() {
		if p.Lag != 0 {
			t.Errorf("partition %d: lag %d after everything was produced", p.Partition, p.Lag)
		}
	}
	if r.c.peak > 300 {
		t.Errorf("%d messages in flight, bound 300", r.c.peak)
	}
}

// TestPoisonMessagesGoToTheDeadLetterTopic: undecodable and failing messages land in
// the dead-letter topic as they were, with the error and their position in headers;
// the good messages around them are produced.
func TestPoisonMessagesGoToTheDeadLetterTopic(t *testing.T) {
	kc := newCluster(t, 1, "in", "out", "dead")
	poison := map[int]string{ // message number -> what its error names
		3:  "not a JSON object",
		10: `"age"`,
		11: `"late_payments"`,
		20: "JSON null",
		21: "V2 request",
	}
	bodies := map[int][]byte{3: []byte(`not json`), 10: []byte(`{"id":10,"age":"old"}`), 11: []byte(`{"id":11,"age":1,"income":0.1,"debt_ratio":0.2,"tenure":0.3,"utilization":0.5}`),
		20: []byte(`null`),
		21: []byte(`{"inputs":[{"name":"features","datatype":"FP32","shape":[1,6],"data":[0]}]}`)}
	var recs []*kgo.Record
	for i := range 30 {
		v, ok := bodies[i]
		if !ok {
			v = row(i)
		}
		recs = append(recs, &kgo.Record{Topic: "in", Key: []byte("key" + strconv.Itoa(i)), Value: v, Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t")}}})
	}
	produce(t, newClient(t, kgo.SeedBrokers(kc.ListenAddrs()...)), recs)
	r := start(t, Config{Name: "poison", Brokers: kc.ListenAddrs(), InputTopic: "in", OutputTopic: "out", DeadLetterTopic: "dead"}, newProcessor(t))

	dead := readTopic(t, kc.ListenAddrs(), "dead", atLeast(len(poison)))
	outs := readTopic(t, kc.ListenAddrs(), "out", atLeast(30-len(poison)))
	for _, d := range dead {
		i, _ := strconv.Atoi(strings.TrimPrefix(string(d.rec.Key), "key"))
		errText := header(d.rec, stream.HeaderError)
		if want, ok := poison[i]; !ok || !strings.Contains(errText, want) {
			t.Errorf("dead letter %s (%s): error header %q, want one naming %q", d.rec.Key, d.rec.Value, errText, poison[i])
		}
		if string(d.rec.Value) != string(bodies[i]) || header(d.rec, "trace") != "t" {
			t.Errorf("dead letter %s: value %q, headers %v; want the message as it was", d.rec.Key, d.rec.Value, d.rec.Headers)
		}
		if src, want := header(d.rec, stream.HeaderSource), stream.Position("in", 0, int64(i)); src != want {
			t.Errorf("dead letter %s: source %q, want %q", d.rec.Key, src, want)
		}
	}
	got := map[string]bool{}
	for _, o := range outs {
		got[o.id] = true
	}
	for i := range 30 {
		if _, bad := poison[i]; !bad && !got[strconv.Itoa(i)] {
			t.Errorf("good message %d has no output", i)
		}
	}
	if len(dead) != len(poison) || len(outs) != 30-len(poison) {
		t.Errorf("%d dead letters, %d outputs; want %d and %d", len(dead), len(outs), len(poison), 30-len(poison))
	}
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	if s := totals(r.c); s.Failed != uint64(len(poison)) || s.Produced != uint64(30-len(poison)) {
		t.Errorf("stats %+v", s)
	}
}

// TestNothingIsLostAcrossACrash: a consumer stopped abruptly mid-stream (its in-flight
// work abandoned, nothing more committed, as if the process died) and a new member of
// the same group started: every message has an output. The duplicates are the results
// the first produced past its last commit (at least those acknowledged, at most those
// consumed), so the restart resumed from that commit.
func TestNothingIsLostAcrossACrash(t *testing.T) {
	kc := newCluster(t, 4, "in", "out")
	const n = 20000
	produce(t, newClient(t, kgo.SeedBrokers(kc.ListenAddrs()...)), rows("in", n, 16))
	cfg := Config{Name: "crash", Brokers: kc.ListenAddrs(), InputTopic: "in", OutputTopic: "out", MaxInFlight: 512}
	p := newProcessor(t)
	admin := newClient(t, kgo.SeedBrokers(kc.ListenAddrs()...))
	// The first consumer pauses at a third until it has committed, then crashes at a
	// half: mid-stream whatever the machine's speed, with results produced since its
	// last commit.
	resume := make(chan struct{})
	c, err := New(cfg, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.process = func(ctx context.Context, _ int32, msgs []stream.Message) []stream.Result {
		switch produced := totals(c).Produced; {
		case produced >= n/2:
			<-ctx.Done()
		case produced >= n/3:
			select {
			case <-resume:
			case <-ctx.Done():
			}
		}
		return p.Process(ctx, msgs)
	}
	first := run(t, c)
	eventually(t, "the first consumer produced a third and committed", func() bool {
		return totals(first.c).Produced >= n/3 && committed(t, admin, "ferry-crash", "in", 4) > 0
	})
	close(resume)
	eventually(t, "the first consumer produced half", func() bool { return totals(first.c).Produced >= n/2 })
	first.c.crashed.Store(true)
	if err := first.wait(t); err != nil {
		t.Fatal(err)
	}
	st := totals(first.c)
	crashedAt, consumed, resumeAt := int64(st.Produced), int64(st.Consumed), committed(t, admin, "ferry-crash", "in", 4)
	second := start(t, cfg, p)

	eventually(t, "the second consumer produced the rest", func() bool { return int64(totals(second.c).Produced) >= n-resumeAt })
	if err := second.wait(t); err != nil {
		t.Fatal(err)
	}
	outs := readTopic(t, kc.ListenAddrs(), "out", atLeast(int(endOffsets(t, admin, "out", 4))))
	seen := map[string]bool{}
	for _, o := range outs {
		seen[o.id] = true
	}
	dups := int64(len(outs) - len(seen))
	t.Logf("the first consumer produced %d and committed %d before the crash; %d duplicates of %d messages after the restart", crashedAt, resumeAt, dups, n)
	if len(seen) != n {
		t.Errorf("%d of %d messages have an output", len(seen), n)
	}
	if dups < crashedAt-resumeAt || dups > consumed-resumeAt {
		t.Errorf("%d duplicates, want between the %d results acknowledged and the %d messages consumed past the commit", dups, crashedAt-resumeAt, consumed-resumeAt)
	}
}

// TestACleanStopCommitsWhatWasProducedAndNoMore: a consumer stopped (its context
// ended) while messages are in flight commits exactly past what it produced; the next
// member of the group scores the rest, and no message is produced twice.
func TestACleanStopCommitsWhatWasProducedAndNoMore(t *testing.T) {
	kc := newCluster(t, 4, "in", "out")
	const n = 8000
	produce(t, newClient(t, kgo.SeedBrokers(kc.ListenAddrs()...)), rows("in", n, 16))
	cfg := Config{Name: "clean", Brokers: kc.ListenAddrs(), InputTopic: "in", OutputTopic: "out", MaxInFlight: n}
	p := newProcessor(t)
	admin := newClient(t, kgo.SeedBrokers(kc.ListenAddrs()...))
	c, stalled := stallAfter(t, cfg, p, 500, nil) // then holds what it fetched, unproduced
	first := run(t, c)
	eventually(t, "every partition produced 500 and holds more", func() bool { return stalled() == 4 && totals(first.c).Produced == 4*500 })
	if err := first.wait(t); err != nil {
		t.Fatal(err)
	}
	st := totals(first.c)
	if got := committed(t, admin, "ferry-clean", "in", 4); got != int64(st.Produced) {
		t.Fatalf("committed %d after producing %d (of %d consumed)", got, st.Produced, st.Consumed)
	}
	second := start(t, cfg, p)
	eventually(t, "the second consumer produced the rest", func() bool { return totals(second.c).Produced >= n-st.Produced })
	if err := second.wait(t); err != nil {
		t.Fatal(err)
	}
	outs := readTopic(t, kc.ListenAddrs(), "out", atLeast(int(endOffsets(t, admin, "out", 4))))
	seen := map[string]bool{}
	for _, o := range outs {
		seen[o.id] = true
	}
	t.Logf("stopped after producing %d of %d consumed; %d outputs, %d distinct", st.Produced, st.Consumed, len(outs), len(seen))
	if len(outs) != n || len(seen) != n {
		t.Errorf("%d outputs, %d distinct; want %d each", len(outs), len(seen), n)
	}
}

// stallAfter is a consumer whose partitions each score n messages and then answer
// Retry for the rest (the model "unavailable": the messages stay held, unproduced, the
// partition paused and retried) until release is closed. stalled counts the partitions
// held so.
func stallAfter(t testing.TB, cfg Config, p *stream.Processor, n int, release <-chan struct{}) (c *Consumer, stalled func() int) {
	c, err := New(cfg, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	scored := map[int32]int{}
	c.process = func(ctx context.Context, partition int32, msgs []stream.Message) []stream.Result {
		select {
		case <-release:
			return p.Process(ctx, msgs)
		default:
		}
		mu.Lock()
		allowed := min(len(msgs), n-scored[partition])
		scored[partition] += allowed
		mu.Unlock()
		res := p.Process(ctx, msgs[:allowed])
		for range msgs[allowed:] {
			res = append(res, stream.Result{Err: fmt.Errorf("held by the test: %w", core.ErrUnavailable), Retry: true})
		}
		return res
	}
	return c, func() int {
		mu.Lock()
		defer mu.Unlock()
		held := 0
		for _, k := range scored {
			if k >= n {
				held++
			}
		}
		return held
	}
}

// endOffsets is the sum of the topic's partitions' end offsets: how many records it holds.
func endOffsets(t testing.TB, cl *kgo.Client, topic string, partitions int32) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1 // -1: the end
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	var got []partOffset
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			got = append(got, partOffset{p.Partition, p.ErrorCode, p.Offset})
		}
	}
	return sumOffsets(t, "list offsets "+topic, got, err)
}

// committed is the sum of the group's committed offsets over the topic's partitions.
func committed(t testing.TB, cl *kgo.Client, group, topic string, partitions int32) int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rt.Partitions = append(rt.Partitions, p)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	var got []partOffset
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			got = append(got, partOffset{p.Partition, p.ErrorCode, p.Offset})
		}
	}
	return sumOffsets(t, "offset fetch "+topic, got, err)
}

type partOffset struct {
	partition int32
	code      int16
	offset    int64
}

// sumOffsets adds up an answer's offsets (none yet, -1, counts as 0), failing the test
// on the request's or a partition's error.
func sumOffsets(t testing.TB, what string, got []partOffset, err error) int64 {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	var sum int64
	for _, p := range got {
		if err := kerr.ErrorForCode(p.code); err != nil {
			t.Fatalf("%s/%d: %v", what, p.partition, err)
		}
		sum += max(0, p.offset)
	}
	return sum
}

// TestRebalanceCommitsWhatWasProduced: a second member joining mid-stream takes
// partitions from the first, which commits what it produced and drops the rest; the
// group together produces every message once (nothing produced is consumed again).
func TestRebalanceCommitsWhatWasProduced(t *testing.T) {
	kc := newCluster(t, 4, "in", "out")
	const n = 20000
	produce(t, newClient(t, kgo.SeedBrokers(kc.ListenAddrs()...)), rows("in", n, 16))
	cfg := Config{Name: "rebalance", Brokers: kc.ListenAddrs(), InputTopic: "in", OutputTopic: "out", MaxInFlight: n}
	p := newProcessor(t)
	joined := make(chan struct{})
	c, stalled := stallAfter(t, cfg, p, 500, joined) // until the second member has partitions
	first := run(t, c)
	eventually(t, "every partition produced 500 and holds more", func() bool { return stalled() == 4 && totals(first.c).Produced == 4*500 })
	second := start(t, cfg, p)
	eventually(t, "the second member was given partitions", func() bool {
		second.c.mu.Lock()
		defer second.c.mu.Unlock()
		return len(second.c.parts) > 0
	})
	close(joined)
	eventually(t, "the group produced every message", func() bool { return totals(first.c).Produced+totals(second.c).Produced >= n })
	for _, r := range []*running{first, second} {
		if err := r.wait(t); err != nil {
			t.Fatal(err)
		}
	}
	outs := readTopic(t, kc.ListenAddrs(), "out", atLeast(int(endOffsets(t, newClient(t, kgo.SeedBrokers(kc.ListenAddrs()...)), "out", 4))))
	seen := map[string]int{}
	last := map[string]int{}
	for _, o := range outs {
		seen[o.id]++
		i := seq(t, o)
		if prev, ok := last[string(o.rec.Key)]; ok && i <= prev {
			t.Errorf("key %s: output of message %d after message %d", o.rec.Key, i, prev)
		}
		last[string(o.rec.Key)] = i
	}
	a, b := totals(first.c), totals(second.c)
	t.Logf("first member produced %d, second %d; %d distinct outputs of %d", a.Produced, b.Produced, len(seen), len(outs))
	if b.Produced == 0 {
		t.Error("the second member produced nothing: no rebalance happened")
	}
	if len(seen) != n || len(outs) != n || a.Produced+b.Produced != n {
		t.Errorf("%d outputs, %d distinct, %d produced in all; want %d each", len(outs), len(seen), a.Produced+b.Produced, n)
	}
}

// TestRetriedMessagesAreScoredAgainInOrder: while the model cannot take work (the
// processor answers Retry), the messages are processed again after a backoff, never
// dead-lettered, never skipped, and later messages do not overtake them.
func TestRetriedMessagesAreScoredAgainInOrder(t *testing.T) {
	kc := newCluster(t, 1, "in", "out", "in.dlq")
	const n = 2000
	produce(t, newClient(t, kgo.SeedBrokers(kc.ListenAddrs()...)), rows("in", n, 1))
	p := newProcessor(t)
	c, err := New(Config{Name: "retry", Brokers: kc.ListenAddrs(), InputTopic: "in", OutputTopic: "out", MaxInFlight: 256}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	var calls, wrongPause atomic.Int64
	c.process = func(ctx context.Context, partition int32, msgs []stream.Message) []stream.Result {
		k := calls.Add(1)
		// A chunk's first call finds the partition fetching; the calls retrying it find
		// its fetching paused.
		c.mu.Lock()
		paused := c.parts[partition].cl.PauseFetchPartitions(nil)["in"]
		c.mu.Unlock()
		if slices.Contains(paused, partition) != (k%3 != 1) {
			wrongPause.Add(1)
		}
		res := p.Process(ctx, msgs)
		if k%3 != 0 { // two calls of three: the model is "unavailable" from the middle on
			for i := len(res) / 2; i < len(res); i++ {
				res[i] = stream.Result{Err: fmt.Errorf("call %d: %w", k, context.DeadlineExceeded), Retry: true}
			}
		}
		return res
	}
	r := run(t, c)
	outs := readTopic(t, kc.ListenAddrs(), "out", atLeast(n))
	for k, o := range outs {
		if i := seq(t, o); i != k {
			t.Fatalf("output %d is message %d's", k, i)
		}
	}
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	if s := totals(c); s.Retried == 0 || s.Failed != 0 || s.Produced != n {
		t.Errorf("stats %+v: want retries, no dead letters, %d produced", s, n)
	}
	if w := wrongPause.Load(); w > 0 {
		t.Errorf("%d of %d calls found the partition's fetching paused when it should not be, or not when it should", w, calls.Load())
	}
}

// TestBadConfigurationsSayWhatIsWrong: New names every missing or contradictory field
// at once, and a consumer for a model core does not serve fails before consuming.
func TestBadConfigurationsSayWhatIsWrong(t *testing.T) {
	p := newProcessor(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		p    *stream.Processor
		want []string
	}{
		{"nothing set", Config{}, p, []string{"name: required", "brokers: at least one", "input_topic: required", "output_topic: required"}},
		{"no brokers", Config{Name: "c", InputTopic: "in", OutputTopic: "out"}, p, []string{`kafka consumer "c": brokers: at least one seed broker is required`}},
		{"an empty broker", Config{Name: "c", Brokers: []string{"b:9092", ""}, InputTopic: "in", OutputTopic: "out"}, p, []string{"brokers[1]: empty address"}},
		{"no topics", Config{Name: "c", Brokers: []string{"b:9092"}}, p, []string{"input_topic: required", "output_topic: required"}},
		{"output is the input", Config{Name: "c", Brokers: []string{"b:9092"}, InputTopic: "in", OutputTopic: "in"}, p, []string{`must differ from input_topic "in"`}},
		{"dead letters into the input", Config{Name: "c", Brokers: []string{"b:9092"}, InputTopic: "in", OutputTopic: "out", DeadLetterTopic: "in"}, p, []string{`must differ from input_topic "in"`}},
		{"negative bound", Config{Name: "c", Brokers: []string{"b:9092"}, InputTopic: "in", OutputTopic: "out", MaxInFlight: -1}, p, []string{"max_in_flight: must be >= 0, got -1"}},
		{"unknown codec", Config{Name: "c", Brokers: []string{"b:9092"}, InputTopic: "in", OutputTopic: "out", Compression: "brotli"}, p, []string{`compression "brotli": want none, gzip, snappy, lz4 or zstd`}},
		{"negative byte bound", Config{Name: "c", Brokers: []string{"b:9092"}, InputTopic: "in", OutputTopic: "out", MaxInFlightBytes: -1}, p, []string{"max_in_flight_bytes: must be >= 0, got -1"}},
		{"no processor", Config{Name: "c", Brokers: []string{"b:9092"}, InputTopic: "in", OutputTopic: "out"}, nil, []string{"processor: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, tc.p, nil)
			if err == nil {
				t.Fatalf("New(%+v) = nil error", tc.cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New(%+v) = %q, want it to say %q", tc.cfg, err, w)
				}
			}
		})
	}
	_, err := stream.NewProcessor(context.Background(), testCore, stream.Options{Model: "nonesuch"})
	if err == nil || !strings.Contains(err.Error(), "nonesuch") {
		t.Errorf("a processor for an unknown model: %v, want an error naming it", err)
	}
	t.Logf("a consumer for an unknown model fails with %q", err)
	c, err := New(Config{Name: "d", Brokers: []string{"b:9092"}, InputTopic: "in", OutputTopic: "out"}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Group != "ferry-d" || c.cfg.DeadLetterTopic != "in.dlq" || c.cfg.MaxInFlight != 64*256 || c.chunk != 4*256 || c.cfg.MaxInFlightBytes != 64<<20 {
		t.Errorf("defaults: group %q, dead letters %q, in flight %d (%d bytes), chunk %d; want ferry-d, in.dlq, 16384 (64 MiB), 1024", c.cfg.Group, c.cfg.DeadLetterTopic, c.cfg.MaxInFlight, c.cfg.MaxInFlightBytes, c.chunk)
	}
}

// TestAMissingOutputTopicStopsTheConsumer: results that cannot be produced end Run with
// an error naming the topic, and nothing past them is committed.
func TestAMissingOutputTopicStopsTheConsumer(t *testing.T) {
	kc := newCluster(t, 1, "in")
	produce(t, newClient(t, kgo.SeedBrokers(kc.ListenAddrs()...)), []*kgo.Record{{Topic: "in", Value: row(1)}})
	c, err := New(Config{Name: "nowhere", Brokers: kc.ListenAddrs(), InputTopic: "in", OutputTopic: "missing"}, newProcessor(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), `topic "missing"`) || !strings.Contains(err.Error(), "in/0@0") {
		t.Fatalf("Run = %v, want an error naming the topic and the message", err)
	}
	t.Log(err)
	if got := committed(t, newClient(t, kgo.SeedBrokers(kc.ListenAddrs()...)), "ferry-nowhere", "in", 1); got != 0 {
		t.Errorf("committed offset %d for a message never produced", got)
	}
}

// TestCompressionOfOutputs: outputs go uncompressed by default and in the codec the
// configuration names otherwise.
func TestCompressionOfOutputs(t *testing.T) {
	for _, tc := range []struct {
		name string
		want uint8 // kgo.RecordAttrs.CompressionType
	}{{"", 0}, {"zstd", 4}} {
		kc := newCluster(t, 1, "in", "out", "in.dlq")
		const n = 200
		produce(t, newClient(t, kgo.SeedBrokers(kc.ListenAddrs()...)), rows("in", n, 4))
		r := start(t, Config{Name: "codec", Brokers: kc.ListenAddrs(), InputTopic: "in", OutputTopic: "out", Compression: tc.name}, newProcessor(t))
		outs := readTopic(t, kc.ListenAddrs(), "out", atLeast(n))
		if err := r.wait(t); err != nil {
			t.Fatal(err)
		}
		// franz-go sends a batch that compression does not shrink (a record or two)
		// uncompressed: so every output has the codec or none, and most have the codec.
		// (A fresh-clone make test once saw one output batch of codec 0 under zstd.)
		coded := 0
		for _, o := range outs {
			switch got := o.rec.Attrs.CompressionType(); got {
			case tc.want:
				coded++
			case 0:
			default:
				t.Fatalf("compression %q: an output batch has codec %d, want %d (or none)", tc.name, got, tc.want)
			}
		}
		if coded < len(outs)/2 {
			t.Fatalf("compression %q: %d of %d outputs in batches of codec %d, want most", tc.name, coded, len(outs), tc.want)
		}
	}
}
