package gctune

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

const mib = 1 << 20

// heapGoal is the runtime's heap goal at GOGC=percent (gcControllerState.commit in
// runtime/mgcpacer.go), without its sub-MiB runway adjustments.
func heapGoal(live, roots uint64, percent int) uint64 {
	p := uint64(percent)
	return max(live+(live+roots)*p/100, minHeap*p/100)
}

// goalBound is what Percent promises: headroom over live, or GOGC=100's goal when that is
// larger.
func goalBound(live, roots, headroom uint64) uint64 {
	return max(live+headroom, 2*live+roots, minHeap)
}

func TestPercentKeepsTheHeapGoalWithinHeadroom(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		live, roots, headroom uint64
		want                  int
	}{
		{"before the first collection", 0, 0, 64 * mib, 1600}, // the floor minHeap*p/100 is the goal
		{"before the first collection, with roots", 0, mib / 2, 64 * mib, 1600},
		{"a tiny live heap", 1024, 0, 64 * mib, 1600},
		{"a live heap under minHeap", mib, mib / 2, 64 * mib, 1625}, // 4 MiB*16.25 = 65 MiB
		{"4 MiB live", 4 * mib, 0, 64 * mib, 1600},
		{"roots count as live", 4 * mib, 4 * mib, 64 * mib, 800},
		{"in between", 40 * mib, 0, 64 * mib, 160},
		{"Go's default from the headroom up", 64 * mib, 0, 64 * mib, 100},
		{"never below it", 1 << 30, mib, 64 * mib, 100},
		{"a headroom under minHeap", 0, 0, mib, 100},
		{"a large headroom stops at maxPercent", 0, 0, 1 << 30, maxPercent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Percent(tc.live, tc.roots, tc.headroom)
			if got != tc.want {
				t.Errorf("Percent(%d, %d, %d) = %d, want %d", tc.live, tc.roots, tc.headroom, got, tc.want)
			}
			if g, b := heapGoal(tc.live, tc.roots, got), goalBound(tc.live, tc.roots, tc.headroom); g > b {
				t.Errorf("heap goal at GOGC=%d is %.1f MiB, over the %.1f MiB bound", got, float64(g)/mib, float64(b)/mib)
			}
		})
	}
}

// heap reads what the runtime computes the heap goal from, and the goal.
type heap struct{ live, roots, goal, percent uint64 }

func readHeap() heap {
	s := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"}, {Name: "/gc/heap/goal:bytes"}, {Name: "/gc/gogc:percent"},
	}
	metrics.Read(s)
	return heap{s[0].Value.Uint64(), s[1].Value.Uint64() + s[2].Value.Uint64(), s[3].Value.Uint64(), s[4].Value.Uint64()}
}

// goalSlack covers the runtime's adjustments to the goal that Percent leaves out: the
// sweeper's 1 MiB minimum distance and the 64 KiB minimum runway.
const goalSlack = 2 * mib

// waitForGoal polls until the heap goal is within bound, or fails after 10 s.
func waitForGoal(t *testing.T, headroom uint64, when string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h := readHeap()
		b := goalBound(h.live, h.roots, headroom) + goalSlack
		if h.goal <= b {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: heap goal %.1f MiB at GOGC=%d over live %.1f MiB, roots %.1f MiB; want at most %.1f MiB",
				when, float64(h.goal)/mib, h.percent, float64(h.live)/mib, float64(h.roots)/mib, float64(b)/mib)
		}
		time.Sleep(time.Millisecond)
	}
}

var retained [][]byte

func TestRunBoundsTheHeapGoalAtOnceAndAfterEachGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	const headroom = 64 * mib
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { Run(ctx, headroom, time.Hour); close(done) }() // only the first setting and collections count
	defer func() { cancel(); <-done }()
	for readHeap().percent == 100 {
		time.Sleep(time.Millisecond)
	}
	waitForGoal(t, headroom, "after the first setting")

	// The live heap grows from next to nothing to 32 MiB: the percent set over the small one
	// would put the goal at hundreds of MiB until the next setting.
	for range 32 {
		retained = append(retained, make([]byte, mib))
	}
	defer func() { retained = nil }()
	runtime.GC()
	waitForGoal(t, headroom, "after a collection found 32 MiB live")
}

func TestRunRaisesGOGCAndRestoresIt(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { Run(ctx, 1<<40, time.Millisecond); close(done) }() // a headroom far above any live heap
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := debug.SetGCPercent(100) // read (and disturb: Run sets it again on its next tick)
		if p == maxPercent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC stayed %d, want Run to raise it to %d", p, maxPercent)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GOGC after Run returned = %d, want the 100 it found", p)
	}
}
