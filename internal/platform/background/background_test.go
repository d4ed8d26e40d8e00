package background

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// TestYieldRunsWaitingGoroutinesFirst: on one processor, goroutines made runnable
// before the yield have mostly run by the time it returns. Not always: the runtime
// looks at its global queue, where the yielding goroutine waits, first once every 61
// scheduling rounds.
func TestYieldRunsWaitingGoroutinesFirst(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const tries, waiting = 200, 4
	first := 0
	for range tries {
		var ran atomic.Int32
		for range waiting {
			go ran.Add(1)
		}
		Yield()
		if ran.Load() == waiting {
			first++
		}
		for ran.Load() < waiting {
			runtime.Gosched()
		}
	}
	if first < tries*8/10 {
		t.Fatalf("the waiting goroutines had all run after %d of %d yields; want most", first, tries)
	}
	t.Logf("the waiting goroutines had all run after %d of %d yields", first, tries)
}
