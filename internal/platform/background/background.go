package background

import "runtime"

// Yield puts the calling goroutine behind the goroutines already waiting for a
// processor (runtime.Gosched: it waits in the runtime's global queue, which a
// processor reads when its own is empty, and first once every 61 scheduling rounds, so
// the work is delayed, never starved). Call it after waking and every few items of a
// long drain.
func Yield() { runtime.Gosched() }
