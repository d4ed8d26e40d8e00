package scheduler

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// Sequence identifies the stateful sequence a request belongs to (the V2 parameters
// sequence_id, sequence_start and sequence_end). Triton allows a uint64 or a string
// correlation ID: one of ID and IDString is set; ID 0 with IDString "" means none.
type Sequence struct {
	ID         uint64
	IDString   string
	Start, End bool
}

func (q *Sequence) String() string {
	if q.IDString != "" {
		return strconv.Quote(q.IDString)
	}
	return strconv.FormatUint(q.ID, 10)
}

// SequenceStrategy is how the sequence batcher forms batches.
type SequenceStrategy int

// The strategies of Triton's sequence_batching.
const (
	// StrategyDirect gives each sequence a batch slot (an instance and a row of its
	// batches) for its lifetime; the sequence's requests always run in that row.
	StrategyDirect SequenceStrategy = iota
	// StrategyOldest batches the next requests of the oldest waiting sequences on any
	// idle instance, like the dynamic batcher does across requests.
	StrategyOldest
)

// ControlKind is what a control input tells the model.
type ControlKind int

// The control kinds of Triton's sequence_batching.control_input.
const (
	ControlStart  ControlKind = iota // true on a sequence's first request
	ControlEnd                       // true on its last request
	ControlReady                     // true in rows that hold a request (false in padding)
	ControlCorrID                    // the sequence's correlation ID
)

// Control is one control input the scheduler adds to every execution; clients never
// send it.
type Control struct {
	Kind  ControlKind
	Input string       // the model input that carries it
	DType tensor.DType // INT32, FP32 or BOOL; for CORRID the ID's type (BYTES for strings)
	// False and True are one element of DType each (START, END and READY).
	False, True []byte
}

// State is one implicit state: the scheduler feeds a sequence's last Output back to the
// model as Input on its next request, and keeps Output out of the responses.
type State struct {
	Input, Output string
	DType         tensor.DType
	Dims          tensor.Shape // without the batch dimension
	Initial       []byte       // the state on START, elements of DType; nil means zeros
}

// Sequencing is Triton's sequence_batching: requests carry a Sequence, the requests of
// one sequence run in order and one at a time, and a sequence idle for IdleTimeout is
// released with its slot and state.
type Sequencing struct {
	Strategy      SequenceStrategy
	MaxQueueDelay time.Duration // how long a batch may wait to fill
	// MinSlotUtilization (Direct) runs an instance's batch before MaxQueueDelay once
	// this fraction of its slots has a request ready; 0 runs whatever is ready at once.
	MinSlotUtilization float64
	// MaxCandidates (Oldest) is how many sequences are batched among at once; later
	// ones wait in a backlog. 0 means instances × max(MaxBatchSize, 1).
	MaxCandidates       int
	PreferredBatchSizes []int         // Oldest: batch sizes dispatched as soon as formed
	IdleTimeout         time.Duration // 0 means 1 s, Triton's default
	Controls            []Control
	States              []State
}

// SequenceError is a request the sequence batcher refuses (no sequence ID, a sequence
// that is not active, more than one row): the request's fault, 400 at the edge.
type SequenceError struct{ Reason string }

func (e *SequenceError) Error() string { return e.Reason }

// InvalidInput marks the error as the request's fault.
func (e *SequenceError) InvalidInput() bool { return true }

type seqKey struct {
	n uint64
	s string
}

// sequence is one active sequence. Guarded by sequencer.mu, except that state is read
// by the batch that holds it busy.
type sequence struct {
	id       Sequence
	slot     int // index into sequencer.slots; -1 while in the backlog
	queue    []*seqItem
	busy     bool             // one of its requests is executing
	ended    bool             // its last submitted request carried END
	fresh    bool             // nothing ran since START: the next request starts from the initial state
	state    []*tensor.Tensor // one per State (a single row when batching); nil: initial
	idleFrom time.Time        // last submit or completion, for the idle timeout
}

// seqItem is one queued request of a sequence.
type seqItem struct {
	ctx    context.Context //nolint:containedctx // the loop must drop work whose caller has gone
	req    *Request
	seq    *sequence
	enq    time.Time
	n      uint64 // arrival order, which breaks ties between equal enq times
	queued bool
	// Set when the item is taken for a batch (under the lock): whether it starts from
	// the initial state, and otherwise the state it continues from.
	start bool
	state []*tensor.Tensor
	res   *Result
	err   error
	done  chan struct{}
}

// sequencer is the sequence batcher of one model version. One goroutine (loop) forms
// batches and releases idle sequences; each batch runs in its own goroutine on the
// instance it was formed for.
type sequencer struct {
	s        *Scheduler
	cfg      Sequencing
	batching bool // the model batches (max_batch_size > 0)
	perInst  int  // Direct: slots (rows) per instance

	mu       sync.Mutex
	seqs     map[seqKey]*sequence
	slots    []*sequence      // nil: free. Direct: slot k is row k/instances of instance k%instances
	backlog  []*sequence      // sequences waiting for a slot, oldest first
	busy     []bool           // per instance
	work     []chan *seqBatch // per instance: batches for its thread (onThread)
	nextIdle time.Time        // no idle sequence expires before this (zero: none idle)
	arrivals uint64

	wake    chan struct{} // buffered 1
	quit    chan struct{}
	exited  chan struct{}
	running sync.WaitGroup
}

func newSequencer(s *Scheduler, cfg Sequencing) *sequencer {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Second
	}
	n := len(s.instances)
	q := &sequencer{s: s, cfg: cfg, batching: s.opts.MaxBatchSize > 0, perInst: max(s.opts.MaxBatchSize, 1),
		seqs: map[seqKey]*sequence{}, busy: make([]bool, n),
		wake: make(chan struct{}, 1), quit: make(chan struct{}), exited: make(chan struct{})}
	slots := n * q.perInst
	if cfg.Strategy == StrategyOldest && cfg.MaxCandidates > 0 {
		slots = cfg.MaxCandidates
	}
	q.slots = make([]*sequence, slots)
	q.work = make([]chan *seqBatch, n)
	for i := range q.work {
		q.work[i] = make(chan *seqBatch, 1)
		go onThread(q.work[i], func(b *seqBatch) { // exits when stop closes its channel
			defer q.running.Done()
			q.run(b)
		})
	}
	return q
}

func (q *sequencer) submit(ctx context.Context, req *Request) (*Result, error) {
	if err := q.admit(req); err != nil {
		return nil, err
	}
	it := &seqItem{ctx: ctx, req: req, enq: time.Now(), queued: true, done: make(chan struct{})}
	q.mu.Lock()
	if err := q.enqueueLocked(it); err != nil {
		q.mu.Unlock()
		return nil, err
	}
	q.mu.Unlock()
	q.s.opts.Observer.QueueDepth(1, 1)
	q.signal()
	select {
	case <-it.done:
		return it.res, it.err
	case <-ctx.Done():
		q.mu.Lock()
		wasQueued := q.removeLocked(it)
		q.mu.Unlock()
		if wasQueued {
			q.s.opts.Observer.QueueDepth(1, -1)
			q.s.opts.Observer.Dropped(dropReason(ctx))
			q.signal() // the sequence may now be idle
		}
		return nil, context.Cause(ctx)
	}
}

// admit checks what can be checked without the sequence table.
func (q *sequencer) admit(req *Request) error {
	sq := req.Sequence
	if sq == nil || (sq.ID == 0 && sq.IDString == "") {
		return &SequenceError{"this model is stateful (sequence_batching): the request needs a sequence_id parameter, a non-zero integer or a non-empty string"}
	}
	if q.batching {
		if rows := q.s.rows(req); rows != 1 {
			return &SequenceError{fmt.Sprintf("sequence %v: requests to a sequence model must have batch size 1, got %d", sq, rows)}
		}
	}
	for _, c := range q.cfg.Controls {
		if c.Kind == ControlCorrID {
			if err := corrIDFits(sq, c.DType); err != nil {
				return err
			}
		}
	}
	return nil
}

// corrIDFits checks that the sequence ID can be given to the model as its CORRID type.
func corrIDFits(sq *Sequence, d tensor.DType) error {
	if d == tensor.Bytes {
		return nil // integers are passed as their decimal text
	}
	if sq.IDString != "" {
		return &SequenceError{fmt.Sprintf("sequence %v: this model's CORRID control is %s, so sequence_id must be an integer", sq, d)}
	}
	limit := map[tensor.DType]uint64{tensor.Int32: math.MaxInt32, tensor.Uint32: math.MaxUint32, tensor.Int64: math.MaxInt64}[d]
	if limit > 0 && sq.ID > limit {
		return &SequenceError{fmt.Sprintf("sequence %v: sequence_id does not fit this model's %s CORRID control", sq, d)}
	}
	return nil
}

// enqueueLocked finds or starts the item's sequence and queues the item on it.
func (q *sequencer) enqueueLocked(it *seqItem) error {
	sq := it.req.Sequence
	key := seqKey{sq.ID, sq.IDString}
	seq := q.seqs[key]
	if !sq.Start && (seq == nil || seq.ended) {
		return &SequenceError{fmt.Sprintf("sequence %v is not active: it never started, it ended, or it was idle longer than max_sequence_idle_microseconds (%v); its first request must set sequence_start", sq, q.cfg.IdleTimeout)}
	}
	if seq == nil {
		seq = &sequence{id: Sequence{ID: sq.ID, IDString: sq.IDString}, slot: -1, fresh: true}
		q.seqs[key] = seq
		q.placeLocked(seq)
	}
	// A START for an active sequence restarts it: the item resets the state when it
	// runs, after the requests queued before it.
	it.seq, it.n = seq, q.arrivals
	q.arrivals++
	seq.queue = append(seq.queue, it)
	seq.ended = sq.End
	seq.idleFrom = it.enq
	return nil
}

// placeLocked gives a new sequence the lowest free slot, or puts it in the backlog. With
// slot k on instance k%instances, the first sequences spread over the instances.
func (q *sequencer) placeLocked(seq *sequence) {
	for k, owner := range q.slots {
		if owner == nil {
			q.slots[k], seq.slot = seq, k
			return
		}
	}
	q.backlog = append(q.backlog, seq)
}

// releaseLocked forgets a sequence and hands its slot to the oldest backlogged one.
func (q *sequencer) releaseLocked(seq *sequence) {
	key := seqKey{seq.id.ID, seq.id.IDString}
	if q.seqs[key] == seq {
		delete(q.seqs, key)
	}
	if seq.slot < 0 {
		for i, b := range q.backlog {
			if b == seq {
				q.backlog = append(q.backlog[:i], q.backlog[i+1:]...)
				break
			}
		}
		return
	}
	k := seq.slot
	q.slots[k], seq.slot = nil, -1
	if len(q.backlog) > 0 {
		next := q.backlog[0]
		q.backlog = q.backlog[1:]
		q.slots[k], next.slot = next, k
	}
}

// removeLocked takes a still-queued item out of its sequence's queue.
func (q *sequencer) removeLocked(it *seqItem) bool {
	if !it.queued {
		return false
	}
	it.queued = false
	seq := it.seq
	for i, x := range seq.queue {
		if x == it {
			seq.queue = append(seq.queue[:i], seq.queue[i+1:]...)
			break
		}
	}
	if len(seq.queue) == 0 && it.req.Sequence.End {
		seq.ended = false // the END never ran: the sequence goes on until it is idle
	}
	q.idleLocked(seq, time.Now())
	return true
}

// idleLocked notes activity on a sequence, which may leave it idle.
func (q *sequencer) idleLocked(seq *sequence, now time.Time) {
	seq.idleFrom = now
	if !seq.busy && len(seq.queue) == 0 && q.nextIdle.IsZero() {
		q.nextIdle = now.Add(q.cfg.IdleTimeout)
	}
}

// expireLocked releases sequences idle for the idle timeout and returns when the next
// one may expire (zero: none is idle). Expiries only grow, so nextIdle is a lower bound
// and the table is scanned only when it is due.
func (q *sequencer) expireLocked(now time.Time) time.Time {
	if q.nextIdle.IsZero() || now.Before(q.nextIdle) {
		return q.nextIdle
	}
	q.nextIdle = time.Time{}
	for _, seq := range q.seqs {
		if seq.busy || len(seq.queue) > 0 {
			continue
		}
		exp := seq.idleFrom.Add(q.cfg.IdleTimeout)
		if !now.Before(exp) {
			q.releaseLocked(seq)
			continue
		}
		if q.nextIdle.IsZero() || exp.Before(q.nextIdle) {
			q.nextIdle = exp
		}
	}
	return q.nextIdle
}

func (q *sequencer) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// loop forms batches and expires idle sequences until stop.
func (q *sequencer) loop() {
	defer close(q.exited)
	for {
		q.mu.Lock()
		now := time.Now()
		next := q.expireLocked(now)
		batches, due := q.formLocked(now)
		q.mu.Unlock()
		for _, b := range batches {
			q.running.Add(1)
			q.work[b.inst] <- b // never blocks: an instance holds one batch at a time
		}
		if !due.IsZero() && (next.IsZero() || due.Before(next)) {
			next = due
		}
		if !q.sleepUntil(next) {
			return
		}
	}
}

// sleepUntil waits for new work, the time t (zero: no limit) or stop; false on stop.
func (q *sequencer) sleepUntil(t time.Time) bool {
	var timer <-chan time.Time
	if !t.IsZero() {
		tm := time.NewTimer(time.Until(t))
		defer tm.Stop()
		timer = tm.C
	}
	select {
	case <-q.wake:
	case <-timer:
	case <-q.quit:
		return false
	}
	return true
}

// stop ends the loop and waits for running batches. Called by Scheduler.Close once no
// request is in flight.
func (q *sequencer) stop() {
	close(q.quit)
	<-q.exited
	q.running.Wait()
	for _, w := range q.work {
		close(w)
	}
}
