package redisstream_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/stream/redisstream"
)

// TestNoEntryLostAcrossACrash: a consumer stops dead mid-stream, either after scoring a
// batch or after writing its answers but before the XACK. Its pending entries are taken
// over by another consumer of the group once idle (XAUTOCLAIM), or read again by a
// consumer restarted under the same name (its own pending list, at once). Every entry
// is answered; duplicates (answers written twice) are counted and reported.
func TestNoEntryLostAcrossACrash(t *testing.T) {
	for _, tc := range []struct {
		name, stage string
		sameName    bool
	}{
		{"crash after scoring, another consumer reclaims", "scored", false},
		{"crash after writing, another consumer reclaims", "written", false},
		{"crash after writing, restart under the same name", "written", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKeys(t)
			const n, maxInFlight = 3000, 64
			k.add(t, k.name("in"), n, rows)
			p := processor(t)
			cfg := k.config("crash")
			cfg.MaxInFlight = maxInFlight
			cfg.Consumer = "first"

			// The first consumer dies at its tenth batch, taking nothing with it but
			// what it had read.
			first, err := redisstream.New(cfg, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var batches atomic.Int32
			first.SetHook(func(stage string) error {
				if stage == tc.stage && batches.Add(1) == 10 {
					cancel()
					return errCrash
				}
				return nil
			})
			if err := first.Run(ctx); err != nil {
				t.Fatalf("first consumer's Run: %v", err)
			}
			group := first.Config().Group
			left := k.group(t, cfg.Stream, group).Pending
			if left == 0 || left > maxInFlight {
				t.Fatalf("the crashed consumer left %d entries pending, want 1..%d", left, maxInFlight)
			}
			written := len(k.read(t, cfg.OutputStream))

			// The second one: a new member of the group, or the first restarted.
			if tc.sameName {
				cfg.ClaimIdle = time.Hour // only its own pending list can give the entries back
			} else {
				cfg.Consumer = "second"
				cfg.ClaimIdle = 100 * time.Millisecond
			}
			second, err := redisstream.New(cfg, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			run(t, second)
			waitFor(t, "every entry acknowledged", func() bool { return k.drained(t, second.Config()) })

			seen := make([]int, n)
			outs := k.read(t, cfg.OutputStream)
			for _, o := range outs {
				if o.RowID < 0 || o.RowID >= n {
					t.Fatalf("output %s: %s", o.ID, o.Body)
				}
				seen[o.RowID]++
			}
			dups := 0
			for id, c := range seen {
				if c == 0 {
					t.Fatalf("row %d never answered", id)
				}
				dups += c - 1
			}
			t.Logf("crash at %q: %d entries left pending, %d answers written before the crash, %d duplicates of %d rows; second consumer %+v",
				tc.stage, left, written, dups, n, second.Stats()[0])
			switch {
			case tc.stage == "scored" && dups != 0:
				t.Errorf("%d duplicates, want none: the crash came before any write", dups)
			case tc.stage == "written" && (dups == 0 || dups > maxInFlight):
				t.Errorf("%d duplicates, want 1..%d: the crashed batch was written and not acknowledged", dups, maxInFlight)
			}
		})
	}
}
