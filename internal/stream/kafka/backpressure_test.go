package kafka

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// endlessTopic is a cluster whose every partition serves, from any offset, copies of
// one record batch of rows (kfake's SyntheticFetch: a topic of 2^62 messages that
// takes no memory) and that discards what is produced (BlackholeProduce), so the
// process heap is the consumer's own.
func endlessTopic(t testing.TB, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	var recs []byte
	const rows = 1000
	for i := range rows {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte("k" + strconv.Itoa(i%32)), Value: row(i)}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // the length counts what follows its own varint
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: rows - 1, FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: rows, Records: recs}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...),
		kfake.SyntheticFetch(kfake.SyntheticBatch{Batch: raw}), kfake.BlackholeProduce())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	return kc
}

// backpressureMessages is how many messages the backpressure test consumes: a million
// without the race detector, fewer under it (FERRY_KAFKA_BACKPRESSURE sets it).
func backpressureMessages(t testing.TB) uint64 {
	if s := os.Getenv("FERRY_KAFKA_BACKPRESSURE"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FERRY_KAFKA_BACKPRESSURE=%q: %v", s, err)
		}
		return n
	}
	if raceEnabled {
		return 150_000
	}
	return 1_000_000
}

type heapSample struct {
	consumed uint64
	live     uint64 // heap live after the last GC
	inflight int
}

// TestBackpressureHoldsMemoryFlat: a consumer with a small in-flight bound reads a
// topic far larger than memory; it never holds more than the bound, and the live heap
// after the first tenth of the run stays where it was, however many messages pass.
func TestBackpressureHoldsMemoryFlat(t *testing.T) {
	const bound = 64
	n := backpressureMessages(t)
	kc := endlessTopic(t, 4, "in", "out", "in.dlq")
	r := start(t, Config{Name: "flat", Brokers: kc.ListenAddrs(), InputTopic: "in", OutputTopic: "out", MaxInFlight: bound}, newProcessor(t))

	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var got []heapSample
	begin := time.Now()
	eventually(t, "the consumer read the messages", func() bool {
		metrics.Read(samples)
		r.c.mu.Lock()
		inflight := r.c.inflight
		r.c.mu.Unlock()
		s := heapSample{consumed: totals(r.c).Consumed, live: samples[0].Value.Uint64(), inflight: inflight}
		got = append(got, s)
		return s.consumed >= n
	})
	elapsed := time.Since(begin)
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	runtime.GC()

	var early, late uint64 // the most live heap in the run's second tenth, and its last half
	maxIn := 0
	for _, s := range got {
		switch {
		case s.consumed >= n/10 && s.consumed < n/5:
			early = max(early, s.live)
		case s.consumed >= n/2:
			late = max(late, s.live)
		}
		maxIn = max(maxIn, s.inflight)
	}
	st := totals(r.c)
	t.Logf("%d messages in %v (%.0f/s), bound %d: most in flight %d (sampled %d), live heap %.1f MiB at 10-20%%, at most %.1f MiB over the last half; lag %d",
		st.Consumed, elapsed.Round(time.Millisecond), float64(st.Consumed)/elapsed.Seconds(), bound, r.c.peak, maxIn, mib(early), mib(late), r.c.Stats()[0].Lag)
	if r.c.peak > bound {
		t.Errorf("%d messages in flight, bound %d", r.c.peak, bound)
	}
	if early == 0 || late == 0 {
		t.Fatalf("too few heap samples (%d)", len(got))
	}
	if late > early+early/4+4<<20 {
		t.Errorf("live heap grew from %.1f MiB to %.1f MiB while consuming", mib(early), mib(late))
	}
	if st.Produced+bound < st.Consumed {
		t.Errorf("stats %+v: more than the bound consumed and not produced", st)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// TestByteBoundHoldsLargeMessages: with messages of 20 KB and a count bound far above
// what fits, MaxInFlightBytes is what stops fetching: the bytes held never pass it by
// more than the small first poll, and every message is still scored.
func TestByteBoundHoldsLargeMessages(t *testing.T) {
	const n, size, bound = 400, 20_000, 256 << 10
	kc := newCluster(t, 4, "in", "out", "in.dlq")
	recs := rows("in", n, 16)
	for _, r := range recs {
		r.Value = append(r.Value, bytes.Repeat([]byte(" "), size)...) // JSON allows the whitespace
	}
	produce(t, newClient(t, kgo.SeedBrokers(kc.ListenAddrs()...)), recs)
	r := start(t, Config{Name: "bytes", Brokers: kc.ListenAddrs(), InputTopic: "in", OutputTopic: "out", MaxInFlight: 100_000, MaxInFlightBytes: bound}, newProcessor(t))
	eventually(t, "every message scored", func() bool { return totals(r.c).Produced >= n })
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	r.c.mu.Lock()
	peak, peakB := r.c.peak, r.c.peakB
	r.c.mu.Unlock()
	t.Logf("bound %d bytes: at most %d bytes (%d messages) in flight", bound, peakB, peak)
	if over := bound + minChunk*(size+200); peakB > over {
		t.Errorf("%d bytes in flight, bound %d (the first poll may bring %d messages: %d)", peakB, bound, minChunk, over)
	}
	if st := totals(r.c); st.Failed != 0 {
		t.Errorf("stats %+v: the padded rows should all score", st)
	}
}
