package gctune

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

// childEnv makes the test binary run TestProcessHeapStaysWithinHeadroomFromTheStart's
// child: a process of its own, so that its first collection is still ahead of it.
const childEnv = "GCTUNE_TEST_CHILD"

// TestProcessHeapStaysWithinHeadroomFromTheStart runs what `ferry serve` does at start in
// a fresh process: gctune with a 64 MiB headroom over 1 MiB of reachable data, then 300
// MiB of short-lived garbage in 64 KiB buffers. The heap must peak within the headroom
// over the largest live heap a collection marked, plus 8 MiB for the runtime's runway
// and the test binary's own allocations. Marked live is more than the 1 MiB reachable:
// what is allocated while a collection marks counts as live to it (10-25 MiB here).
// Before Run bounded the goal with nothing marked yet, the first collection was due at
// 400 MiB and this heap reached the full 300 MiB without one.
func TestProcessHeapStaysWithinHeadroomFromTheStart(t *testing.T) {
	const headroom, slack = 64 * mib, 8 * mib
	if os.Getenv(childEnv) != "" {
		heapChild(headroom)
		return
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestProcessHeapStaysWithinHeadroomFromTheStart$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1", "GOGC=", "GOMEMLIMIT=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var peak, live, cycles0, cycles uint64
	i := strings.Index(string(out), "peak=")
	if i < 0 {
		t.Fatalf("child printed no peak:\n%s", out)
	}
	if _, err := fmt.Sscanf(string(out[i:]), "peak=%d live=%d cycles_at_start=%d cycles=%d", &peak, &live, &cycles0, &cycles); err != nil {
		t.Fatalf("child output: %v\n%s", err, out)
	}
	t.Logf("heap peak %.1f MiB, largest live heap a collection marked %.1f MiB; collections %d before Run's first setting, %d at the end",
		float64(peak)/mib, float64(live)/mib, cycles0, cycles)
	if allowed := live + headroom + slack; peak > allowed {
		t.Errorf("heap peaked at %.1f MiB with a %d MiB headroom over at most %.1f MiB live, want at most %.1f MiB",
			float64(peak)/mib, headroom/mib, float64(live)/mib, float64(allowed)/mib)
	}
}

// heapChild starts Run as serve does, waits for its first setting, allocates garbage and
// prints the heap's peak.
func heapChild(headroom uint64) {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/gogc:percent"},
		{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	cycles0 := s[0].Value.Uint64()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, headroom, time.Second); close(done) }()
	for s[1].Value.Uint64() == 100 {
		time.Sleep(100 * time.Microsecond)
		metrics.Read(s)
	}
	var ring [16][]byte // 1 MiB live
	var peak, live uint64
	page := make([]byte, 64<<10)
	for i := range 300 * mib / len(page) {
		// As a server handles a request: fill a buffer, then give way to others.
		ring[i%len(ring)] = make([]byte, len(page))
		copy(ring[i%len(ring)], page)
		runtime.Gosched()
		metrics.Read(s)
		peak = max(peak, s[2].Value.Uint64())
		live = max(live, s[3].Value.Uint64())
	}
	cancel()
	<-done
	fmt.Printf("peak=%d live=%d cycles_at_start=%d cycles=%d\n", peak, live, cycles0, s[0].Value.Uint64())
}
