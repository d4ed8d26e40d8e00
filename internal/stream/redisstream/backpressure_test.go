package redisstream_test

import (
	"flag"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/stream/redisstream"
)

var entries = flag.Int("entries", 200_000, "entries in TestBackpressureHoldsMemoryFlat's input stream (1000000 for the acceptance figure, without -race)")

// TestBackpressureHoldsMemoryFlat: a long input stream read with a small MaxInFlight.
// The group's pending count (read, not acknowledged) never exceeds MaxInFlight on any
// sample, nor does the consumer's own count at any time, and the heap after a GC does
// not grow from the first quarter of the stream to the end. The output stream is capped
// with MaxLen, as a long-running deployment would.
func TestBackpressureHoldsMemoryFlat(t *testing.T) {
	k := newKeys(t)
	n := *entries
	k.add(t, k.name("in"), n, rows)
	cfg := k.config("backpressure")
	cfg.MaxInFlight = 64
	cfg.MaxLen = 10_000
	c, err := redisstream.New(cfg, processor(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	group := c.Config().Group
	start := time.Now()
	run(t, c)

	var heap []uint64 // MiB after a GC at each quarter of the stream
	var pendingMax int64
	samples := 0
	waitProgress(t, "every entry acknowledged", func() bool {
		g := k.group(t, cfg.Stream, group)
		samples++
		pendingMax = max(pendingMax, g.Pending)
		if g.Pending > int64(cfg.MaxInFlight) {
			t.Fatalf("%d entries pending in the group, MaxInFlight %d", g.Pending, cfg.MaxInFlight)
		}
		for done := int(c.Stats()[0].Produced); len(heap) < 4 && done >= (len(heap)+1)*n/4; {
			heap = append(heap, heapMiB())
		}
		return g.Lag == 0 && g.Pending == 0
	}, func() uint64 { return c.Stats()[0].Produced })
	took := time.Since(start)
	s := c.Stats()[0]
	if s.Produced != uint64(n) || s.Failed != 0 {
		t.Fatalf("stats %+v for %d entries", s, n)
	}
	if peak := c.PeakInFlight(); peak > cfg.MaxInFlight {
		t.Errorf("the consumer held %d entries at once, MaxInFlight %d", peak, cfg.MaxInFlight)
	}
	if l, err := k.rdb.XLen(t.Context(), cfg.OutputStream).Result(); err != nil || l > cfg.MaxLen+1000 {
		t.Errorf("output stream holds %d entries (%v), MaxLen ~%d", l, err, cfg.MaxLen)
	}
	if len(heap) == 4 && heap[3] > heap[0]+8 {
		t.Errorf("heap grew with the stream: %v MiB at each quarter", heap)
	}
	t.Logf("%d entries scored in %v: heap %v MiB at each quarter, peak RSS %s; pending at most %d over %d samples, consumer peak %d (MaxInFlight %d)",
		n, took.Round(time.Millisecond), heap, peakRSS(), pendingMax, samples, c.PeakInFlight(), cfg.MaxInFlight)
}

// peakRSS is the process's peak resident set (VmHWM), where Linux tells it.
func peakRSS() string {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func heapMiB() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc >> 20
}
