package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Sequences configure the requests to a stateful model, as perf_analyzer's
// --sequence-length, --sequence-id-range and --num-of-sequences do.
type Sequences struct {
	Length int // requests per sequence; 0 is DefaultSequenceLength
	// IDs are taken in turn from [FirstID, LastID), wrapping around; LastID 0 has no end.
	FirstID, LastID uint64
	// Open is how many sequences an open-loop level keeps going at once; 0 is
	// DefaultOpenSequences. (A closed-loop level has one per client.)
	Open int
}

// DefaultSequenceLength and DefaultOpenSequences are perf_analyzer's defaults.
const (
	DefaultSequenceLength = 20
	DefaultOpenSequences  = 4
)

func (s Sequences) validate() error {
	switch {
	case s.Length < 0:
		return fmt.Errorf("sequence length %d: must be at least 1", s.Length)
	case s.Open < 0:
		return fmt.Errorf("sequences %d: must be at least 1", s.Open)
	case s.LastID != 0 && s.LastID <= s.FirstID:
		return fmt.Errorf("sequence id range %d:%d: the end must be above the start", s.FirstID, s.LastID)
	}
	return nil
}

// ParseIDRange reads perf_analyzer's --sequence-id-range: "start" or "start:end", ids
// from start up to end, excluded. Sequence id 0 means "no sequence" in V2, so start is
// at least 1.
func ParseIDRange(s string) (first, last uint64, err error) {
	a, b, hasEnd := strings.Cut(s, ":")
	if first, err = strconv.ParseUint(a, 10, 64); err != nil || first == 0 {
		return 0, 0, fmt.Errorf("sequence id range %q: want start[:end] with 1 <= start < end", s)
	}
	if hasEnd {
		if last, err = strconv.ParseUint(b, 10, 64); err != nil || last <= first {
			return 0, 0, fmt.Errorf("sequence id range %q: want start[:end] with 1 <= start < end", s)
		}
	}
	return first, last, nil
}

// sequencer hands out sequences for one run; nil for a model without sequences.
type sequencer struct {
	length int
	first  uint64
	span   uint64 // ids in the range; 0: unbounded
	open   int
	taken  atomic.Uint64
}

func newSequencer(m Model, s Sequences) *sequencer {
	if !m.Sequence {
		return nil
	}
	q := &sequencer{length: s.Length, first: max(s.FirstID, 1), open: s.Open}
	if q.length == 0 {
		q.length = DefaultSequenceLength
	}
	if q.open == 0 {
		q.open = DefaultOpenSequences
	}
	if s.LastID != 0 {
		q.span = s.LastID - q.first
	}
	return q
}

func (q *sequencer) id() uint64 {
	k := q.taken.Add(1) - 1
	if q.span != 0 {
		k %= q.span
	}
	return q.first + k
}

// single is a whole sequence of one request: the run's first, checking request.
func (q *sequencer) single() Step {
	if q == nil {
		return Step{}
	}
	return Step{ID: q.id(), Start: true, End: true}
}

// walker steps through one sequence after another, for one client; nil for a model
// without sequences. Not safe for concurrent use.
type walker struct {
	q   *sequencer
	id  uint64
	pos int // requests of the current sequence sent so far; 0: none open
}

func (q *sequencer) walker() *walker {
	if q == nil {
		return nil
	}
	return &walker{q: q}
}

// next is the step of the client's next request.
func (w *walker) next() Step {
	if w == nil {
		return Step{}
	}
	if w.pos == 0 {
		w.id = w.q.id()
	}
	w.pos++
	st := Step{ID: w.id, Start: w.pos == 1, End: w.pos == w.q.length}
	if st.End {
		w.pos = 0
	}
	return st
}

// finish ends the open sequence, if any, with one more request, so that the server
// frees its slot now rather than after max_sequence_idle (perf_analyzer does the
// same when it stops). Its outcome is not counted: the server may never have seen
// the sequence's start, cut off by the window's end.
func (w *walker) finish(ctx context.Context, send Sender, i int) {
	if w == nil || w.pos == 0 {
		return
	}
	w.pos = 0
	_ = send(ctx, i, Step{ID: w.id, End: true})
}

// lane is one of an open-loop level's sequences. Requests take turns on the lanes, and
// each lane sends one request at a time so that its sequence stays in order.
type lane struct {
	turn chan struct{} // holds a token while the lane's request is in flight
	w    *walker
}

// lanes is nil for a model without sequences.
type lanes []lane

func (q *sequencer) lanes() lanes {
	if q == nil {
		return nil
	}
	l := make(lanes, q.open)
	for k := range l {
		l[k] = lane{turn: make(chan struct{}, 1), w: q.walker()}
	}
	return l
}

// send sends request i on its lane, after the lane's earlier requests.
func (l lanes) send(ctx context.Context, send Sender, i int) error {
	if l == nil {
		return send(ctx, i, Step{})
	}
	ln := l[i%len(l)]
	ln.turn <- struct{}{}
	defer func() { <-ln.turn }()
	return send(ctx, i, ln.w.next())
}

// finish ends every lane's open sequence, once no request is in flight.
func (l lanes) finish(ctx context.Context, send Sender) {
	var wg sync.WaitGroup
	for k, ln := range l {
		wg.Go(func() { ln.w.finish(ctx, send, k) })
	}
	wg.Wait()
}
