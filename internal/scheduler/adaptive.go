package scheduler

import "time"

// The adaptive wait. Triton's dynamic batcher holds a batch short of full until its oldest
// request has waited max_queue_delay, even when no further request can come: N
// closed-loop clients (N below the batch size) are all queued already, and none sends
// again until it is answered, so every request pays the whole delay. Measured with the
// mlp example (max_batch_size 32, one instance, REST): 16 clients got 2,370 requests/s
// at p50 6.7 ms with a 5 ms delay, against 6,840/s at 2.2 ms without batching.
//
// The adaptive batcher runs a batch short of full as soon as an instance is free and no
// more requests are expected within the delay, which it reads from the traffic:
//
//   - every client seen lately is here: the requests queued or running reach the most
//     that were in the system at once over this window and the last (100 ms each). In
//     a closed loop no one else can arrive before something is answered.
//   - the mean gap between arrivals is longer than what is left of the delay: the next
//     request would most likely come after the batch had to run anyway.
//   - arrivals stopped: nothing came for quietGaps mean gaps since the last arrival or
//     the last answer, whichever is later; unless a full batch's worth of clients were
//     in the system at once lately, when the batch waits to fill.
//
// Otherwise it waits, at most until the oldest request's delay ends, so
// max_queue_delay_microseconds stays the bound. A cold batcher (fewer than two arrivals)
// does not wait on a guess.
//
// The first rule needs a probe. One closed-loop client and an open-loop trickle that is
// answered before its next request look the same: one request in the system at a time.
// They differ only when the batcher waits: the trickle's requests pile up, the client's
// do not. So the first batch of each window waits by the other rules only (full, a
// preferred size, the delay out, or arrivals stopped), and the peak it lets the traffic
// show holds for the rest of the window and the next. The probe costs a closed loop one
// wait of probeGaps mean gaps per window.
type arrivals struct {
	window    time.Time // start of the current window
	cur, prev traffic   // the current window so far and the one before it
	last      time.Time // the last arrival
	executing int       // requests taken from the queue whose outcome is not delivered yet
	freed     time.Time // when the last batch's outcomes were delivered
}

// traffic is what one window saw.
type traffic struct {
	arrivals int
	peak     int  // most requests in the system (queued or running) at once
	probed   bool // a batch formed in this window without the peak rule
}

const (
	window    = 100 * time.Millisecond
	quietGaps = 8 // arrivals have stopped after 8 mean gaps without one (1 in 3,000 Poisson gaps is that long)
	// probeGaps ends a probe sooner: it only has to see whether requests pile up when the
	// batcher waits. Clients running elsewhere count in the peak whatever it waits for.
	probeGaps = 2
)

// arrive records an arrival that brings the requests in the system to inSystem.
func (a *arrivals) arrive(now time.Time, inSystem int) {
	if d := now.Sub(a.window); d >= window {
		a.prev = a.cur
		if d >= 2*window {
			a.prev = traffic{} // an idle spell: the old traffic says nothing now
		}
		a.cur, a.window = traffic{}, now
	}
	a.cur.arrivals++
	a.cur.peak = max(a.cur.peak, inSystem)
	a.last = now
}

// everyone reports whether inSystem requests are all the clients seen lately.
func (a *arrivals) everyone(inSystem int) bool {
	return inSystem >= max(a.cur.peak, a.prev.peak)
}

// meanGap is the mean time between the arrivals of this window and the last; 0 while
// fewer than two say nothing yet. A silence since the last arrival is the quiet rule's
// to judge, not counted here.
func (a *arrivals) meanGap() time.Duration {
	n, span := a.cur.arrivals, a.last.Sub(a.window) // a window starts at an arrival
	if a.prev.arrivals > 0 {
		n, span = n+a.prev.arrivals, span+window
	}
	if n < 2 {
		return 0
	}
	return span / time.Duration(n-1)
}

// expectMore reports whether more requests are expected before deadline for the
// inSystem requests queued or running; when they are, quietAt is when arrivals will have
// stopped unless another comes (zero: the batch waits for full or the deadline).
func (a *arrivals) expectMore(now, deadline time.Time, inSystem, full int) (more bool, quietAt time.Time) {
	gap := a.meanGap()
	if gap == 0 || deadline.Sub(now) < gap || (a.cur.probed && a.everyone(inSystem)) {
		return false, time.Time{}
	}
	if a.cur.probed && max(a.cur.peak, a.prev.peak) >= full {
		// A full batch's worth of clients were in the system at once lately: the batch
		// will fill. A lull in arrivals here is the CPU answering the last batch's clients
		// (64 closed-loop clients on 2 cores over REST: 1 batch in 6 ran short on a lull,
		// 0.91 of the fixed delay's requests/s).
		return true, time.Time{}
	}
	quietAt = a.last
	if a.freed.After(quietAt) {
		quietAt = a.freed // while an instance ran, arrivals may have waited for the CPU
	}
	gaps := time.Duration(quietGaps)
	if !a.cur.probed {
		gaps = probeGaps
	}
	quietAt = quietAt.Add(gaps * gap)
	if !now.Before(quietAt) {
		a.probeDone()
		return false, time.Time{}
	}
	return true, quietAt
}

// probeDone records that a batch ran after waiting for all it could get (full, a preferred
// size, the delay out, or arrivals stopped): the most requests in the system since
// then are what the traffic brings when the batcher waits, so the peak rule holds until
// the next window.
func (a *arrivals) probeDone() { a.cur.probed = true }
