package scheduler

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// TimeoutAction is what happens to a request whose queue timeout expires.
type TimeoutAction int

// The timeout actions, as Triton's ModelQueuePolicy names them.
const (
	Reject TimeoutAction = iota // fail the request with ErrTimeout
	Delay                       // keep it, behind every request that has not timed out
)

// QueuePolicy is one priority level's queue policy.
type QueuePolicy struct {
	Action         TimeoutAction
	DefaultTimeout time.Duration // 0: no timeout
	AllowOverride  bool          // a request's own timeout replaces DefaultTimeout
	MaxQueueSize   int           // 0: unbounded; a full level refuses at once with ErrQueueFull
}

// Batching is Triton's dynamic_batching: requests wait up to MaxQueueDelay to be packed,
// by rows, into batches of at most Options.MaxBatchSize rows.
type Batching struct {
	PreferredBatchSizes []int // batch sizes (rows) dispatched as soon as they can be formed
	MaxQueueDelay       time.Duration
	PreserveOrdering    bool // responses are returned in the order requests arrived
	PriorityLevels      int  // 0 or 1: one level; level 1 is the highest
	DefaultPriority     int  // level of requests that give none (or an out-of-range one)
	DefaultPolicy       QueuePolicy
	LevelPolicies       map[int]QueuePolicy
	// Adaptive runs a batch short of full as soon as more requests are not expected
	// within the queue delay (see adaptive.go) instead of waiting the delay out for
	// requests that cannot come; MaxQueueDelay stays the bound. False keeps Triton's
	// semantics.
	Adaptive bool
}

// item is one queued request.
type item struct {
	ctx     context.Context //nolint:containedctx // the batcher must drop work whose caller has gone
	req     *Request
	rows    int
	level   int // index into batcher.levels
	enq     time.Time
	expires time.Time // zero: never
	seq     uint64
	queued  bool // still in a queue (guarded by batcher.mu)
	res     *Result
	err     error
	done    chan struct{}
}

type level struct {
	policy QueuePolicy
	items  []*item
}

// batcher owns the queue of one dynamically batched model version. One goroutine (loop)
// forms batches; each batch runs in its own goroutine on the instance it was formed for.
type batcher struct {
	s       *Scheduler
	cfg     Batching
	maxRows int

	mu       sync.Mutex
	levels   []*level // the configured priority levels, then the background level
	delayed  []*item  // timed out with DELAY: served after everything else
	rows     int      // rows queued, delayed included
	seq      uint64
	next     uint64           // with PreserveOrdering: the next sequence number to deliver
	ready    map[uint64]*item // finished, waiting for earlier ones
	arrivals                  // the adaptive wait's view of the traffic (adaptive.go)
	// lastOnline is when a request other than a background one last arrived; bgFree is
	// the earliest a batch of background requests alone may start (backgroundShare).
	lastOnline, bgFree time.Time

	wake    chan struct{} // new work; buffered 1
	quit    chan struct{}
	exited  chan struct{}
	running sync.WaitGroup
}

func newBatcher(s *Scheduler, cfg Batching) *batcher {
	n := max(cfg.PriorityLevels, 1)
	b := &batcher{s: s, cfg: cfg, maxRows: max(s.opts.MaxBatchSize, 1), ready: map[uint64]*item{},
		wake: make(chan struct{}, 1), quit: make(chan struct{}), exited: make(chan struct{})}
	for i := range n {
		p, ok := cfg.LevelPolicies[i+1]
		if !ok {
			p = cfg.DefaultPolicy
		}
		b.levels = append(b.levels, &level{policy: p})
	}
	// Background requests (Request.Background) queue last, with no timeout and no size
	// limit of their own: the job that sends them bounds how many it has in flight.
	b.levels = append(b.levels, &level{})
	return b
}

// levelOf maps a request to a level index: a background request to the last, a priority
// to its level; 0 or out of range means the default, as Triton does.
func (b *batcher) levelOf(req *Request) int {
	configured := len(b.levels) - 1
	if req.Background {
		return configured
	}
	p := req.Priority
	if p < 1 || p > configured {
		p = b.cfg.DefaultPriority
	}
	if p < 1 || p > configured {
		p = configured
	}
	return p - 1
}

func (b *batcher) submit(ctx context.Context, req *Request) (*Result, error) {
	now := time.Now()
	it := &item{ctx: ctx, req: req, rows: b.s.rows(req), enq: now, done: make(chan struct{}), queued: true}
	it.level = b.levelOf(req)
	lv := b.levels[it.level]
	timeout := lv.policy.DefaultTimeout
	if lv.policy.AllowOverride && req.Timeout > 0 {
		timeout = req.Timeout
	}
	if timeout > 0 {
		it.expires = now.Add(timeout)
	}
	if res, err, ok := b.runNow(it); ok {
		return res, err
	}
	if m := lv.policy.MaxQueueSize; m > 0 && len(lv.items) >= m {
		b.mu.Unlock()
		b.s.opts.Observer.Dropped("queue_full")
		return nil, ErrQueueFull
	}
	it.seq = b.seq
	b.seq++
	wake := b.mustWake(it)
	lv.items = append(lv.items, it)
	b.rows += it.rows
	b.mu.Unlock()
	b.s.opts.Observer.QueueDepth(it.level+1, 1)
	if wake {
		b.signal()
	}

	select {
	case <-it.done:
		return it.res, it.err
	case <-ctx.Done():
		b.mu.Lock()
		wasQueued := b.removeLocked(it)
		b.mu.Unlock()
		if wasQueued {
			b.s.opts.Observer.Dropped(dropReason(ctx))
			b.finish(it, nil, context.Cause(ctx))
		}
		return nil, context.Cause(ctx)
	}
}

// runNow is the fast path: a request that finds the queue empty and an instance free,
// when it would form a batch of one at once anyway (no queue delay, or the adaptive wait
// expects no other request within it), runs on the caller's goroutine, skipping two
// goroutine hand-offs. It takes b.mu and returns holding it unless it ran the request.
func (b *batcher) runNow(it *item) (*Result, error, bool) {
	b.mu.Lock()
	if b.cfg.Adaptive { // only the adaptive wait reads the traffic
		b.arrive(it.enq, b.pending()+b.executing+1)
	}
	if !it.req.Background {
		b.lastOnline = it.enq
	} else if b.holdBackgroundLocked(it.enq) {
		return nil, nil, false
	}
	if b.cfg.PreserveOrdering || b.pending() > 0 || !b.aloneNow(it) {
		return nil, nil, false
	}
	select {
	case sl := <-b.s.idle:
		it.queued = false
		b.executing++
		b.mu.Unlock()
		b.s.opts.Observer.Batched(0, b.reasonAlone(it))
		b.run(sl.inst, []*item{it})
		b.s.idle <- sl
		return it.res, it.err, true
	default:
		return nil, nil, false
	}
}

// aloneNow reports whether it, with nothing else queued, would run at once as a batch of
// its own: with no queue delay, or when the adaptive wait expects no one else in time.
func (b *batcher) aloneNow(it *item) bool {
	if b.cfg.MaxQueueDelay == 0 {
		return true
	}
	if !b.cfg.Adaptive {
		return false
	}
	more, _ := b.expectMore(it.enq, it.enq.Add(b.cfg.MaxQueueDelay), b.executing+1, b.maxRows)
	return !more
}

// reasonAlone is why a request alone in the queue runs at once: it fills a batch (or a
// preferred size), else because the instance is free.
func (b *batcher) reasonAlone(it *item) string {
	switch {
	case slices.Contains(b.cfg.PreferredBatchSizes, it.rows):
		return ReasonPreferred
	case it.rows >= b.maxRows, b.s.opts.MaxBatchSize == 0:
		return ReasonFull
	}
	return ReasonIdle
}

// mustWake reports whether queueing it can change what the batch-forming loop does, so
// that it is woken only then: for the first request (the loop is idle or starts the
// queue delay), for a batch that may now be full or of a preferred size, and for a
// request with a timeout (the loop watches expiries). A request that only adds rows to
// a batch still short of full changes nothing before the queue delay ends; waking the
// loop for each of 64 single-item requests cost a goroutine switch and a scan of the
// queue per request. With the adaptive wait, a request that brings every recent client
// into the system can end the wait too. Called with b.mu held, before it is queued.
func (b *batcher) mustWake(it *item) bool {
	return b.pending() == 0 || b.rows+it.rows >= b.maxRows || len(b.cfg.PreferredBatchSizes) > 0 ||
		!it.expires.IsZero() || b.s.opts.MaxBatchSize == 0 ||
		(b.cfg.Adaptive && b.everyone(b.pending()+b.executing+1))
}

func (b *batcher) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// removeLocked takes a still-queued item out of its queue.
func (b *batcher) removeLocked(it *item) bool {
	if !it.queued {
		return false
	}
	it.queued = false
	b.rows -= it.rows
	b.s.opts.Observer.QueueDepth(it.level+1, -1)
	if i := slices.Index(b.delayed, it); i >= 0 {
		b.delayed = slices.Delete(b.delayed, i, i+1)
		return true
	}
	lv := b.levels[it.level]
	if i := slices.Index(lv.items, it); i >= 0 {
		lv.items = slices.Delete(lv.items, i, i+1)
	}
	return true
}

// finish delivers an item's outcome; with PreserveOrdering, only after every earlier one.
func (b *batcher) finish(it *item, res *Result, err error) {
	it.res, it.err = res, err
	if !b.cfg.PreserveOrdering {
		close(it.done)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ready[it.seq] = it
	for {
		x, ok := b.ready[b.next]
		if !ok {
			return
		}
		delete(b.ready, b.next)
		close(x.done)
		b.next++
	}
}

// loop forms batches until stop. Exits when quit is closed.
func (b *batcher) loop() {
	defer close(b.exited)
	for {
		if !b.waitWork() {
			return
		}
		var sl *slot
		select {
		case sl = <-b.s.idle:
		case <-b.quit:
			return
		}
		batch := b.form()
		if len(batch) == 0 {
			b.s.idle <- sl
			continue
		}
		sl.work <- batch
	}
}

// start launches the batch-forming loop and one worker per instance.
func (b *batcher) start() {
	for _, sl := range b.s.slots {
		sl.work = make(chan []*item, 1)
		b.running.Add(1)
		go func() { // exits when stop closes its work channel
			defer b.running.Done()
			onThread(sl.work, func(batch []*item) {
				b.run(sl.inst, batch)
				b.s.idle <- sl
			})
		}()
	}
	go b.loop()
}

func (b *batcher) pending() int {
	n := len(b.delayed)
	for _, lv := range b.levels {
		n += len(lv.items)
	}
	return n
}

// waitWork blocks until something is queued; false once the batcher stops.
func (b *batcher) waitWork() bool {
	for {
		b.mu.Lock()
		n := b.pending()
		b.mu.Unlock()
		if n > 0 {
			return true
		}
		select {
		case <-b.wake:
		case <-b.quit:
			return false
		}
	}
}

// Why a batch ran, as the queue-delay metric reports it.
const (
	ReasonFull      = "full"      // it reached max_batch_size rows (or the model does not batch)
	ReasonPreferred = "preferred" // it reached a preferred batch size
	ReasonDelay     = "delay"     // its oldest request waited out max_queue_delay
	ReasonIdle      = "idle"      // an instance was free and no more requests were expected in time
)

// form picks the next batch, waiting up to the queue delay for it to fill; it returns
// nil when the queue emptied meanwhile or the batcher stops.
func (b *batcher) form() []*item {
	for {
		b.mu.Lock()
		now := time.Now()
		nextExpiry := b.expireLocked(now)
		cands, prefix, oldest := b.pickLocked()
		if len(cands) == 0 {
			b.mu.Unlock()
			return nil
		}
		if b.isBackground(cands[0]) && b.holdBackgroundLocked(now) {
			// Online requests come first anyway (pickLocked); this leaves the cores to
			// them between the background batches, so their latency holds.
			retry := b.bgFree
			b.mu.Unlock()
			if !b.sleep(max(retry.Sub(now), 0)) {
				return nil
			}
			continue
		}
		reason, retry := b.whyRun(now, cands, prefix, oldest)
		if reason == "" {
			b.mu.Unlock()
			if !nextExpiry.IsZero() && nextExpiry.Before(retry) {
				retry = nextExpiry
			}
			if !b.sleep(max(retry.Sub(now), 0)) {
				return nil
			}
			continue
		}
		if reason == ReasonPreferred {
			cands = cands[:prefix]
		}
		for _, it := range cands {
			b.removeLocked(it)
		}
		b.executing += len(cands)
		if reason != ReasonIdle {
			b.probeDone()
		}
		b.mu.Unlock()
		b.s.opts.Observer.Batched(now.Sub(oldest), reason)
		return cands
	}
}

// whyRun says why the candidate batch should run now, or "" and when to look again.
func (b *batcher) whyRun(now time.Time, cands []*item, prefix int, oldest time.Time) (reason string, retry time.Time) {
	rows := 0
	for _, it := range cands {
		rows += it.rows
	}
	deadline := oldest.Add(b.cfg.MaxQueueDelay)
	switch {
	case prefix > 0:
		return ReasonPreferred, now
	case rows >= b.maxRows, b.s.opts.MaxBatchSize == 0:
		return ReasonFull, now
	case b.cfg.MaxQueueDelay == 0:
		return ReasonIdle, now
	case !now.Before(deadline):
		return ReasonDelay, now
	case b.cfg.Adaptive:
		more, quietAt := b.expectMore(now, deadline, b.pending()+b.executing, b.maxRows)
		if !more {
			return ReasonIdle, now
		}
		if !quietAt.IsZero() && quietAt.Before(deadline) {
			return "", quietAt
		}
		return "", deadline
	}
	return "", deadline
}

// sleep waits for new work, the timeout or stop; false on stop.
func (b *batcher) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-b.wake:
	case <-t.C:
	case <-b.quit:
		return false
	}
	return true
}

// expireLocked applies the queue policies to items past their timeout and returns the
// nearest future expiry (zero if none).
func (b *batcher) expireLocked(now time.Time) time.Time {
	var next time.Time
	for _, lv := range b.levels {
		kept := lv.items[:0]
		for _, it := range lv.items {
			switch {
			case it.expires.IsZero() || now.Before(it.expires):
				kept = append(kept, it)
				if !it.expires.IsZero() && (next.IsZero() || it.expires.Before(next)) {
					next = it.expires
				}
			case lv.policy.Action == Delay:
				b.delayed = append(b.delayed, it)
			default:
				it.queued = false
				b.rows -= it.rows
				b.s.opts.Observer.QueueDepth(it.level+1, -1)
				b.s.opts.Observer.Dropped("timeout")
				go b.finish(it, nil, ErrTimeout) // finish takes b.mu
			}
		}
		clear(lv.items[len(kept):])
		lv.items = kept
	}
	return next
}

// backgroundShare is the most of an instance's time batches of background requests
// (batch jobs) take while online requests keep arriving; with none for
// backgroundQuiet, background batches run back to back. On a small machine a job
// that keeps the model busy also takes the cores online requests need to be decoded,
// answered and batched: at 1000 online requests/s of the example mlp on 2 cores, a job
// running flat out raised their p99 2.1-2.6x; at 0.5 of the time 1.52-1.54x, at 0.4
// 1.39x, at 0.35 1.23x (BenchmarkOnlineP99WithJob, cmd/ferry).
const (
	backgroundShare = 0.4
	backgroundQuiet = time.Second
)

func (b *batcher) isBackground(it *item) bool { return it.level == len(b.levels)-1 }

// holdBackgroundLocked reports whether a background-only batch must wait for bgFree.
func (b *batcher) holdBackgroundLocked(now time.Time) bool {
	return now.Before(b.bgFree) && now.Sub(b.lastOnline) < backgroundQuiet
}

// backgroundRan spaces the next background batch so that background batches take at
// most backgroundShare of the instance's time.
func (b *batcher) backgroundRan(start time.Time) {
	end := time.Now()
	b.mu.Lock()
	b.bgFree = end.Add(time.Duration(float64(end.Sub(start)) * (1 - backgroundShare) / backgroundShare))
	b.mu.Unlock()
}

// pickLocked lists, in priority then arrival order (delayed items last), the requests
// that fit one batch: compatible shapes, at most maxRows rows. prefix > 0 is the length
// of the longest leading run whose rows add up to a preferred batch size.
func (b *batcher) pickLocked() (cands []*item, prefix int, oldest time.Time) {
	limit := b.maxRows
	if b.s.opts.MaxBatchSize == 0 {
		limit = 1 // a model that does not batch runs one request per execution
	}
	rows := 0
	add := func(it *item) bool {
		if rows+it.rows > limit || (len(cands) > 0 && !compatible(cands[0].req, it.req)) {
			return false
		}
		cands = append(cands, it)
		rows += it.rows
		if slices.Contains(b.cfg.PreferredBatchSizes, rows) {
			prefix = len(cands)
		}
		if oldest.IsZero() || it.enq.Before(oldest) {
			oldest = it.enq
		}
		return true
	}
	for _, lv := range b.levels {
		for _, it := range lv.items {
			if !add(it) {
				return
			}
		}
	}
	for _, it := range b.delayed {
		if !add(it) {
			return
		}
	}
	return
}

// compatible reports whether two requests can share a batch: the same inputs with the
// same datatypes and the same dimensions after the batch dimension.
func compatible(a, b *Request) bool {
	if len(a.Inputs) != len(b.Inputs) {
		return false
	}
	for i, x := range a.Inputs {
		y := b.Inputs[i]
		if x.Name != y.Name || x.DType != y.DType || len(x.Shape) != len(y.Shape) || len(x.Shape) == 0 || !x.Shape[1:].Equal(y.Shape[1:]) {
			return false
		}
	}
	return true
}

// stop ends the loop and waits for running batches. Called by Scheduler.Close once no
// request is in flight.
func (b *batcher) stop() {
	close(b.quit)
	<-b.exited
	for _, sl := range b.s.slots {
		close(sl.work)
	}
	b.running.Wait()
}

// run executes one batch and hands each request its slice of the outputs.
func (b *batcher) run(inst Instance, batch []*item) {
	start := time.Now()
	if b.isBackground(batch[0]) { // online requests are picked first: all of it is background
		defer b.backgroundRan(start)
	}
	var live, gone []*item
	for _, it := range batch {
		if it.ctx.Err() != nil { // its caller left after it was picked
			gone = append(gone, it)
			continue
		}
		live = append(live, it)
	}
	if len(gone) > 0 {
		b.delivering(len(gone))
		for _, it := range gone {
			b.s.opts.Observer.Dropped(dropReason(it.ctx))
			b.finish(it, nil, context.Cause(it.ctx))
		}
	}
	if len(live) == 0 {
		return
	}
	if ri, ok := inst.(RequestsInstance); ok && len(live) > 1 {
		b.runRequests(ri, live, start) // requests.go
		return
	}
	in, rows, want, err := b.pack(live)
	packed := time.Now()
	var out []*tensor.Tensor
	ctx := live[0].ctx
	if len(live) > 1 {
		// A batch serves several callers; none may cancel it alone. It keeps the first
		// one's values, though: its trace context, so a remote upstream's call of the
		// batch is still part of a trace.
		ctx = context.WithoutCancel(ctx)
	}
	if err == nil {
		out, err = execute(ctx, inst, in, want)
		b.s.opts.Observer.Executed(sum(rows))
	}
	inferred := time.Now()
	var parts [][]*tensor.Tensor
	if err == nil {
		parts, err = unpack(out, rows)
	}
	done := time.Now()
	b.delivering(len(live))
	for i, it := range live {
		if err != nil {
			b.finish(it, nil, err)
			continue
		}
		b.finish(it, &Result{Outputs: pickOutputs(parts[i], it.req.Outputs), Timing: Timing{
			Queue: start.Sub(it.enq), Input: packed.Sub(start), Infer: inferred.Sub(packed),
			Output: done.Sub(inferred), Batch: sum(rows), Leader: i == 0,
		}}, nil)
	}
}

// delivering takes n requests out of the running count just before their outcomes are
// delivered: a client answered may send again at once, and must not be counted twice by
// the adaptive wait's peak.
func (b *batcher) delivering(n int) {
	now := time.Now()
	b.mu.Lock()
	b.executing -= n
	b.freed = now
	b.mu.Unlock()
}

// pack concatenates the batch's inputs and lists the outputs any request wants.
func (b *batcher) pack(batch []*item) ([]*tensor.Tensor, []int64, []string, error) {
	rows := make([]int64, len(batch))
	for i, it := range batch {
		rows[i] = int64(it.rows)
	}
	want := outputUnion(batch)
	if len(batch) == 1 {
		return batch[0].req.Inputs, rows, want, nil
	}
	in := make([]*tensor.Tensor, len(batch[0].req.Inputs))
	parts := make([]*tensor.Tensor, len(batch))
	for j := range in {
		for i, it := range batch {
			parts[i] = it.req.Inputs[j]
		}
		t, err := tensor.Concat(parts)
		if err != nil {
			return nil, nil, nil, err
		}
		in[j] = t
	}
	return in, rows, want, nil
}

func outputUnion(batch []*item) []string {
	var want []string
	for _, it := range batch {
		if it.req.Outputs == nil {
			return nil
		}
		for _, o := range it.req.Outputs {
			if !slices.Contains(want, o) {
				want = append(want, o)
			}
		}
	}
	return want
}

// unpack splits every output along the batch dimension, one slice of rows per request.
func unpack(out []*tensor.Tensor, rows []int64) ([][]*tensor.Tensor, error) {
	parts := make([][]*tensor.Tensor, len(rows))
	if len(rows) == 1 {
		parts[0] = out
		return parts, nil
	}
	for _, t := range out {
		split, err := tensor.Split(t, rows)
		if err != nil {
			return nil, err
		}
		for i := range rows {
			parts[i] = append(parts[i], split[i])
		}
	}
	return parts, nil
}

// pickOutputs returns the outputs a request named, in its order (all when it named none).
func pickOutputs(out []*tensor.Tensor, want []string) []*tensor.Tensor {
	if want == nil {
		return out
	}
	picked := make([]*tensor.Tensor, 0, len(want))
	for _, name := range want {
		for _, t := range out {
			if t.Name == name {
				picked = append(picked, t)
				break
			}
		}
	}
	return picked
}

func sum(xs []int64) int {
	n := int64(0)
	for _, x := range xs {
		n += x
	}
	return int(n)
}
