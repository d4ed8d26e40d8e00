package kafka

import (
	"context"
	"encoding/json"
	"flag"
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

	"github.com/ferryml/ferry/internal/platform/gctune"
	"github.com/ferryml/ferry/internal/stream"
)

// BenchmarkKafkaLane compares, in alternating rounds (medians reported), messages/s through the Kafka lane
// (an in-process kfake cluster: a topic of -benchmessages rows over four partitions,
// consumed until every output is acknowledged) with calling the same Processor.Process
// directly on the same messages in the same batches, with the same concurrency (one
// goroutine per partition), no broker. It then paces benchPaced messages through a
// running lane and reports the end-to-end p99, from the input's produce time to its
// output's.
//
//	go test -run=NONE -bench=KafkaLane ./internal/stream/kafka/
//
// benchFlight sets the lane's MaxInFlight in BenchmarkKafkaLane (0: the default).
var (
	benchFlight = flag.Int("benchflight", 0, "BenchmarkKafkaLane: the lane's MaxInFlight (0: the default)")
	benchRounds = flag.Int("benchrounds", 5, "BenchmarkKafkaLane: rounds, each a lane run then a direct run of the same batches")
	// Rounds of 100,000 messages (0.15 s a run) gave ratios from 0.61 to 0.98 within one
	// run and medians from 0.68 to 0.87 between runs; rounds of 500,000 give 0.66-0.76
	// and 0.71-0.72.
	benchCount = flag.Int("benchmessages", 500_000, "BenchmarkKafkaLane: messages a round")
)

func BenchmarkKafkaLane(b *testing.B) {
	benchMessages, rounds := *benchCount, *benchRounds
	servingGC(b)
	p := newProcessor(b)
	var laneRate, directRate, laneCPU, directCPU []float64 // CPU: seconds per message, the process's
	for range rounds {
		kc := newCluster(b, 4, "in", "out")
		produce(b, newClient(b, kgo.SeedBrokers(kc.ListenAddrs()...)), rows("in", benchMessages, 64))
		c0 := cpuTime()
		lane, batches := laneRound(b, kc, p, uint64(benchMessages))
		c1 := cpuTime()
		direct := directRound(p, batches)
		c2 := cpuTime()
		m := float64(benchMessages)
		laneCPU, directCPU = append(laneCPU, (c1-c0)/m), append(directCPU, (c2-c1)/m)
		laneRate, directRate = append(laneRate, m/lane.Seconds()), append(directRate, m/direct.Seconds())
		n, sizes := 0, 0
		for _, bs := range batches {
			n += len(bs)
			for _, m := range bs {
				sizes += len(m)
			}
		}
		b.Logf("round: lane %v, direct %v; %d Process calls of %.0f messages on average; CPU %.1f and %.1f µs a message",
			lane, direct, n, float64(sizes)/float64(n), laneCPU[len(laneCPU)-1]*1e6, directCPU[len(directCPU)-1]*1e6)
		kc.Close()
	}
	var p99 time.Duration
	for b.Loop() {
		p99 = pacedP99(b, p)
	}
	l, d := median(laneRate), median(directRate)
	// Each round's own ratio too: a round's two runs are a second apart, so the
	// machine's speed, which drifts over minutes here, cancels out of it.
	perRound := make([]float64, len(laneRate))
	for i := range laneRate {
		perRound[i] = laneRate[i] / directRate[i]
	}
	b.ReportMetric(l, "lane-msgs/s")
	b.ReportMetric(d, "direct-msgs/s")
	b.ReportMetric(l/d, "ratio")
	b.ReportMetric(median(perRound), "round-ratio-median")
	b.Logf("per-round ratios %.2f", perRound)
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.Logf("%d rounds of %d messages: lane %.0f/s, core directly with the same batches %.0f/s, ratio %.2f (medians); CPU %.1f µs a message through the lane (broker and client included), %.1f directly; end-to-end p99 %v at %d msgs/s paced",
		len(laneRate), benchMessages, l, d, l/d, median(laneCPU)*1e6, median(directCPU)*1e6, p99, pacedRate)
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
// each Process call per partition. The time counts from the first Process call: joining
// the group and the first fetch (10-25 ms) are the consumer's start, once per process,
// not its throughput, and the direct run has no counterpart for them.
func laneRound(b *testing.B, kc *kfake.Cluster, p *stream.Processor, n uint64) (time.Duration, map[int32][][]stream.Message) {
	c, err := New(Config{Name: "bench", Brokers: kc.ListenAddrs(), InputTopic: "in", OutputTopic: "out", MaxInFlight: *benchFlight}, p, nil)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	batches := map[int32][][]stream.Message{}
	var first atomic.Pointer[time.Time]
	c.process = func(ctx context.Context, partition int32, msgs []stream.Message) []stream.Result {
		now := time.Now()
		first.CompareAndSwap(nil, &now)
		res := p.Process(ctx, msgs)
		mu.Lock()
		batches[partition] = append(batches[partition], msgs)
		mu.Unlock()
		return res
	}
	r := run(b, c)
	for totals(c).Produced < n {
		time.Sleep(time.Millisecond)
	}
	took := time.Since(*first.Load())
	if err := r.wait(b); err != nil {
		b.Fatal(err)
	}
	return took, batches
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

const pacedRate = 20_000 // messages/s for the latency phase

// pacedP99 produces 2 s of messages at pacedRate through a running lane and returns the
// 99th percentile of output time less input time.
func pacedP99(b *testing.B, p *stream.Processor) time.Duration {
	kc := newCluster(b, 4, "in", "out")
	c, err := New(Config{Name: "paced", Brokers: kc.ListenAddrs(), InputTopic: "in", OutputTopic: "out"}, p, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := run(b, c)
	prod := newClient(b, kgo.SeedBrokers(kc.ListenAddrs()...), kgo.ProducerLinger(0))
	const total, tick = 2 * pacedRate, time.Millisecond
	sent := make([]time.Time, total)
	var wg sync.WaitGroup
	begin := time.Now()
	for i := 0; i < total; {
		// Messages due by now go out together, so the rate holds however the sleeps fall.
		due := min(total, int(time.Since(begin).Seconds()*pacedRate)+1)
		for ; i < due; i++ {
			rec := &kgo.Record{Topic: "in", Key: []byte("k" + strconv.Itoa(i%64)), Value: row(i)}
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
