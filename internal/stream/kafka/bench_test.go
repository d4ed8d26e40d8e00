package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"hash/crc32"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/platform/gctune"
	"github.com/ferryml/ferry/internal/stream"
)

// BenchmarkKafkaLane compares, in alternating rounds (medians reported), messages/s through the Kafka lane
// (an in-process kfake cluster: four partitions, consumed until a round's messages' results
// are acknowledged) with calling the same Processor.Process directly on the same
// messages in the same batches, with the same concurrency (one goroutine per partition),
// no broker. It then paces messages through a running lane and reports the
// end-to-end p99, from the input's produce time to its output's.
//
// Two models, each a sub-benchmark:
//
//   - mlp (256 features in a JSON array, 10 outputs), a model that computes, as
//     BenchmarkBatchVsEngine measures the batch lane on: the ratio is what the lane
//     costs a deployment.
//   - tabular (6 flat fields -> a sigmoid score, a tiny graph): the lane's worst case. The
//     model and the row path take ~1 µs a message, about what the in-process broker and
//     franz-go take, so its ratio is near 0.5 by construction; it watches the lane's own
//     cost per message, which BenchmarkKafkaLaneEcho isolates.
//
// The lane runs against two brokers each round, each with its own direct run:
//
//   - stored: a topic of the round's rows, its outputs written to the broker's log;
//
//   - broker storage out: kfake's benchmark modes (SyntheticFetch, BlackholeProduce).
//     Fetches are served from one canned batch of the same rows, snappy-compressed as
//     a producer sends them, and produced results are acknowledged but not stored. In a
//     deployment the broker's log is on other machines; kfake keeps it in this process,
//     where writing it (a growing in-memory segment per partition, copied as it doubles)
//     took about a fifth of the lane's CPU. The broker's request handling, franz-go
//     and the consumer are all still measured.
//
//     go test -run=NONE -bench=KafkaLane ./internal/stream/kafka/
//
// benchFlight sets the lane's MaxInFlight in BenchmarkKafkaLane (0: the default).
var (
	benchFlight = flag.Int("benchflight", 0, "BenchmarkKafkaLane: the lane's MaxInFlight (0: the default)")
	benchRounds = flag.Int("benchrounds", 5, "BenchmarkKafkaLane: rounds, each a lane run then a direct run of the same batches, per broker")
	// Rounds of 100,000 messages (0.15 s a run) gave ratios from 0.61 to 0.98 within one
	// run and medians from 0.68 to 0.87 between runs; rounds of 500,000 give 0.66-0.76
	// and 0.71-0.72.
	benchCount = flag.Int("benchmessages", 500_000, "BenchmarkKafkaLane: messages a round of the tabular model (mlp's rounds are a tenth)")
)

func BenchmarkKafkaLane(b *testing.B) {
	servingGC(b)
	for _, ld := range []benchLoad{
		{model: "mlp", row: mlpRow, messages: *benchCount / 10, paced: 5_000},
		{model: "tabular", mapping: features, row: row, messages: *benchCount, paced: 20_000},
	} {
		b.Run(ld.model, func(b *testing.B) { benchLane(b, ld) })
	}
}

// benchLoad is one model's traffic in BenchmarkKafkaLane.
type benchLoad struct {
	model    string
	mapping  lane.Mapping
	row      func(int) []byte
	messages int // a round's
	paced    int // messages/s of the latency phase
}

func benchLane(b *testing.B, ld benchLoad) {
	p := processorFor(b, ld.model, ld.mapping)
	canned := cannedBatch(b, ld.row)
	stored := &laneFigures{name: ld.model + ", stored", n: ld.messages}
	storageOut := &laneFigures{name: ld.model + ", broker storage out", n: ld.messages}
	for range *benchRounds {
		// A round's broker and producer are closed and dropped when it ends, not at the
		// benchmark's cleanup, which kept every round's stored messages in this
		// process's heap, for the collector to mark, until the last round.
		kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "in", "out"))
		if err != nil {
			b.Fatal(err)
		}
		pc, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...))
		if err != nil {
			b.Fatal(err)
		}
		produce(b, pc, rowsOf(ld.row, "in", ld.messages, 64))
		pc.Close()
		stored.round(b, kc, p)
		kc.Close()
		sc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "in", "out"),
			kfake.SyntheticFetch(kfake.SyntheticBatch{Batch: canned}), kfake.BlackholeProduce())
		if err != nil {
			b.Fatal(err)
		}
		storageOut.round(b, sc, p)
		sc.Close()
	}
	var p99 time.Duration
	for b.Loop() {
		p99 = pacedP99(b, p, ld)
	}
	stored.report(b, "")
	storageOut.report(b, "nostore-")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.Logf("%s: end-to-end p99 %v at %d msgs/s paced (stored broker)", ld.model, p99, ld.paced)
}

// mlpRow is a row for the mlp example: an id and its 256 features as a JSON array
// (~1.5 KB), filling the model's input "input" by name.
func mlpRow(id int) []byte {
	out := strconv.AppendInt([]byte(`{"id":`), int64(id), 10)
	out = append(out, `,"input":[`...)
	for j := range 256 {
		if j > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendFloat(out, float64((id*7+j*13)%1000)/1000, 'g', -1, 64)
	}
	return append(out, "]}"...)
}

// laneFigures are one broker's rounds: messages/s and CPU seconds a message, through
// the lane and directly.
type laneFigures struct {
	name                                     string
	n                                        int // messages a round
	laneRate, directRate, laneCPU, directCPU []float64
}

// round runs the lane against kc until -benchmessages results are acknowledged, then
// Process directly on the batches the lane made.
func (f *laneFigures) round(b *testing.B, kc *kfake.Cluster, p *stream.Processor) {
	c0 := cpuTime()
	lane, batches := laneRound(b, kc, p, uint64(f.n))
	c1 := cpuTime()
	direct := directRound(p, batches)
	c2 := cpuTime()
	// The direct run takes every message the lane's Process calls took; against a
	// canned broker that may be a chunk or so past the count the lane was timed to.
	calls, msgs := 0, 0
	for _, bs := range batches {
		calls += len(bs)
		for _, m := range bs {
			msgs += len(m)
		}
	}
	n := float64(f.n)
	f.laneCPU, f.directCPU = append(f.laneCPU, (c1-c0)/n), append(f.directCPU, (c2-c1)/float64(msgs))
	f.laneRate, f.directRate = append(f.laneRate, n/lane.Seconds()), append(f.directRate, float64(msgs)/direct.Seconds())
	b.Logf("round (%s): lane %v, direct %v; %d Process calls of %.0f messages on average; CPU %.1f and %.1f µs a message",
		f.name, lane, direct, calls, float64(msgs)/float64(calls), f.laneCPU[len(f.laneCPU)-1]*1e6, f.directCPU[len(f.directCPU)-1]*1e6)
}

func (f *laneFigures) report(b *testing.B, prefix string) {
	l, d := median(f.laneRate), median(f.directRate)
	// Each round's own ratio too: a round's two runs are a second apart, so the
	// machine's speed, which drifts over minutes here, cancels out of it.
	perRound := make([]float64, len(f.laneRate))
	for i := range f.laneRate {
		perRound[i] = f.laneRate[i] / f.directRate[i]
	}
	b.ReportMetric(l, prefix+"lane-msgs/s")
	b.ReportMetric(d, prefix+"direct-msgs/s")
	b.ReportMetric(l/d, prefix+"ratio")
	b.ReportMetric(median(perRound), prefix+"round-ratio-median")
	b.Logf("%s: %d rounds of %d messages: lane %.0f/s, core directly with the same batches %.0f/s, ratio %.2f (medians; per round %.2f); CPU %.1f µs a message through the lane (broker and client included), %.1f directly",
		f.name, len(f.laneRate), f.n, l, d, l/d, perRound, median(f.laneCPU)*1e6, median(f.directCPU)*1e6)
}

// cannedBatch is a v2 record batch of up to 1000 rows of row, keyed as rowsOf keys
// them, under 512 KB before compression (a fetch's partition limit is 1 MB),
// snappy-compressed as franz-go's producer compresses by default, for kfake's
// SyntheticFetch.
func cannedBatch(b *testing.B, row func(int) []byte) []byte {
	var recs []byte
	n := 0
	for i, r := range rowsOf(row, "in", 1000, 64) {
		if len(recs)+len(r.Value) > 512<<10 {
			break
		}
		n++
		rec := kmsg.Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1) // the body after a one-byte length of 0
		recs = rec.AppendTo(recs)
	}
	comp, err := kgo.DefaultCompressor(kgo.SnappyCompression())
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	body, codec := comp.Compress(&buf, recs)
	if codec != 2 { // the batch attribute of snappy
		b.Fatalf("snappy compression gave codec %d", codec)
	}
	now := time.Now().UnixMilli()
	raw := (&kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(codec), LastOffsetDelta: int32(n - 1),
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(n), Records: body}).AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12)) // Length: what follows it
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// servingGC runs the garbage collector as `ferry serve`, where the lane runs, runs it:
// gctune with --gc-headroom's default, unless GOGC is set. Both sides of the
// comparison share the process, so both get it.
func servingGC(b *testing.B) {
	if os.Getenv("GOGC") != "" {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { gctune.Run(ctx, gctune.DefaultHeadroom, time.Second); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
}

// laneRound runs a consumer until n results are acknowledged, recording the messages of
// each Process call per partition.
func laneRound(b *testing.B, kc *kfake.Cluster, p *stream.Processor, n uint64) (time.Duration, map[int32][][]stream.Message) {
	var mu sync.Mutex
	batches := map[int32][][]stream.Message{}
	took := timeLane(b, kc, p, n, func(ctx context.Context, partition int32, msgs []stream.Message) []stream.Result {
		res := p.Process(ctx, msgs)
		mu.Lock()
		batches[partition] = append(batches[partition], msgs)
		mu.Unlock()
		return res
	})
	return took, batches
}

// timeLane runs a consumer whose model calls are process until n results are
// acknowledged. The time counts from the first call: joining the group and the first
// fetch (10-25 ms) are the consumer's start, once per process, not its throughput, and
// the direct run has no counterpart for them.
func timeLane(b *testing.B, kc *kfake.Cluster, p *stream.Processor, n uint64, process func(context.Context, int32, []stream.Message) []stream.Result) time.Duration {
	c, err := New(Config{Name: "bench", Brokers: kc.ListenAddrs(), InputTopic: "in", OutputTopic: "out", MaxInFlight: *benchFlight}, p, nil)
	if err != nil {
		b.Fatal(err)
	}
	var first atomic.Pointer[time.Time]
	c.process = func(ctx context.Context, partition int32, msgs []stream.Message) []stream.Result {
		now := time.Now()
		first.CompareAndSwap(nil, &now)
		return process(ctx, partition, msgs)
	}
	r := run(b, c)
	for totals(c).Produced < n {
		time.Sleep(time.Millisecond)
	}
	took := time.Since(*first.Load())
	if err := r.wait(b); err != nil {
		b.Fatal(err)
	}
	return took
}

// directRound calls Process on the recorded batches, one goroutine per partition as the
// lane runs them.
func directRound(p *stream.Processor, batches map[int32][][]stream.Message) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for _, bs := range batches {
		wg.Go(func() {
			for _, msgs := range bs {
				p.Process(context.Background(), msgs)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// pacedP99 produces 2 s of messages at ld.paced a second through a running lane and
// returns the 99th percentile of output time less input time.
func pacedP99(b *testing.B, p *stream.Processor, ld benchLoad) time.Duration {
	kc := newCluster(b, 4, "in", "out")
	c, err := New(Config{Name: "paced", Brokers: kc.ListenAddrs(), InputTopic: "in", OutputTopic: "out"}, p, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := run(b, c)
	prod := newClient(b, kgo.SeedBrokers(kc.ListenAddrs()...), kgo.ProducerLinger(0))
	const tick = time.Millisecond
	total := 2 * ld.paced
	sent := make([]time.Time, total)
	var wg sync.WaitGroup
	begin := time.Now()
	for i := 0; i < total; {
		// Messages due by now go out together, so the rate holds however the sleeps fall.
		due := min(total, int(time.Since(begin).Seconds()*float64(ld.paced))+1)
		for ; i < due; i++ {
			rec := &kgo.Record{Topic: "in", Key: []byte("k" + strconv.Itoa(i%64)), Value: ld.row(i)}
			sent[i] = time.Now()
			rec.Timestamp = sent[i]
			wg.Add(1)
			prod.Produce(context.Background(), rec, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
				wg.Done()
			})
		}
		time.Sleep(tick)
	}
	wg.Wait()
	outs := readTopic(b, kc.ListenAddrs(), "out", atLeast(total))
	lat := make([]time.Duration, 0, total)
	for _, o := range outs {
		var v struct{ ID int }
		if json.Unmarshal(o.rec.Value, &v) == nil && v.ID < total {
			lat = append(lat, o.rec.Timestamp.Sub(sent[v.ID]))
		}
	}
	if err := r.wait(b); err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	return lat[len(lat)*99/100]
}

// cpuTime is the CPU time the process has used, user and system, in seconds.
func cpuTime() float64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return float64(u.Utime.Nano()+u.Stime.Nano()) / 1e9
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
