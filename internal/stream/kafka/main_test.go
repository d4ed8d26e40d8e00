package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/lane/lanetest"
	"github.com/ferryml/ferry/internal/stream"
)

// testCore is a real core over the example models with ONNX Runtime, one per process.
var testCore *lanetest.Core

func TestMain(m *testing.M) {
	var err error
	testCore, err = lanetest.OpenExamples("tabular", "mlp") // mlp: BenchmarkKafkaLane
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafka lane tests need the example models and ONNX Runtime:", err)
		os.Exit(1)
	}
	code := m.Run()
	testCore.Close()
	if code == 0 {
		// Every consumer, client and cluster a test started has stopped.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left running:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var features = lanetest.TabularMapping

// row is a flat JSON row with an id and the six features.
func row(id int) []byte {
	return fmt.Appendf(nil, `{"id":%d,"age":%g,"income":0.1,"debt_ratio":0.2,"tenure":0.3,"late_payments":1,"utilization":0.5}`, id, float64(id%100)/10)
}

// rows are n rows for topic, message i keyed "k<i%keys>".
func rows(topic string, n, keys int) []*kgo.Record { return rowsOf(row, topic, n, keys) }

// rowsOf are rows whose values row makes.
func rowsOf(row func(int) []byte, topic string, n, keys int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i%keys)), Value: row(i)}
	}
	return recs
}

// v2 is a V2 JSON request for one row, its request id "v2-<id>".
func v2(id int) []byte {
	return fmt.Appendf(nil, `{"id":"v2-%d","inputs":[{"name":"features","datatype":"FP32","shape":[1,6],"data":[%g,0.1,0.2,0.3,1,0.5]}]}`, id, float64(id%100)/10)
}

func newProcessor(t testing.TB) *stream.Processor {
	t.Helper()
	return processorFor(t, "tabular", features)
}

func processorFor(t testing.TB, model string, m lane.Mapping) *stream.Processor {
	t.Helper()
	p, err := stream.NewProcessor(context.Background(), testCore, stream.Options{Model: model, Mapping: m})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newCluster is an in-process Kafka cluster with the topics, each of partitions.
func newCluster(t testing.TB, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	return kc
}

func newClient(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce writes the records and waits for every acknowledgement.
func produce(t testing.TB, cl *kgo.Client, recs []*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// running is a consumer started in the background.
type running struct {
	c    *Consumer
	stop context.CancelFunc
	err  chan error
}

func start(t testing.TB, cfg Config, p *stream.Processor) *running {
	t.Helper()
	c, err := New(cfg, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return run(t, c)
}

func run(t testing.TB, c *Consumer) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, stop: cancel, err: make(chan error, 1)}
	go func() { r.err <- c.Run(ctx) }()
	t.Cleanup(func() { r.wait(t) })
	return r
}

// wait stops the consumer and returns Run's error (nil again on a second call).
func (r *running) wait(t testing.TB) error {
	r.stop()
	select {
	case err, ok := <-r.err:
		if ok {
			close(r.err)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("consumer did not stop within 30s")
		return nil
	}
}

// totals sums a consumer's Stats over its partitions.
func totals(c *Consumer) stream.Stats {
	var s stream.Stats
	for _, p := range c.Stats() {
		s.Consumed += p.Consumed
		s.Produced += p.Produced
		s.Failed += p.Failed
		s.Retried += p.Retried
	}
	return s
}

// output is one record read back from an output or dead-letter topic.
type output struct {
	rec *kgo.Record
	id  string // the row's "id", or the V2 response's
}

// readTopic reads topic from its start until done says enough (or 60s pass).
func readTopic(t testing.TB, brokers []string, topic string, done func([]output) bool) []output {
	t.Helper()
	cl := newClient(t, kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var outs []output
	for !done(outs) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: %d records after 60s", topic, len(outs))
		}
		fs.EachRecord(func(r *kgo.Record) {
			var v struct {
				ID any `json:"id"`
			}
			json.Unmarshal(r.Value, &v)
			id := fmt.Sprint(v.ID)
			if f, ok := v.ID.(float64); ok {
				id = strconv.Itoa(int(f))
			}
			outs = append(outs, output{rec: r, id: id})
		})
	}
	return outs
}

// atLeast is a done function for readTopic: n records read.
func atLeast(n int) func([]output) bool { return func(o []output) bool { return len(o) >= n } }

// header is a record's header value.
func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// eventually polls cond every 10ms for up to 60s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(60 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("after 60s: %s", what)
		}
	}
}
