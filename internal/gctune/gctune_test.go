package gctune

import (
	"context"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, headroom uint64
		want           int
	}{
		{4 * mib, 64 * mib, 1600}, // 64 MiB to allocate over 4 MiB live
		{64 * mib, 64 * mib, 100}, // Go's default from the headroom up
		{1 << 30, 64 * mib, 100},  // never below it
		{40 * mib, 64 * mib, 160}, // in between
		{0, 64 * mib, maxPercent}, // no live heap yet
		{1024, 64 * mib, maxPercent},
	} {
		if got := Percent(tc.live, tc.headroom); got != tc.want {
			t.Errorf("Percent(%d, %d) = %d, want %d", tc.live, tc.headroom, got, tc.want)
		}
	}
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
