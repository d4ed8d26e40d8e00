package scheduler

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// seqBatch is one execution of the sequence batcher: rows[i] runs in row i; a nil row
// is padding (Direct keeps every sequence in its own row), with READY false.
type seqBatch struct {
	inst int
	rows []*seqItem
	seqs []*sequence // every sequence the batch holds busy
}

// formLocked forms the batches that are due and returns the earliest time a batch that
// is still waiting becomes due (zero: none).
func (q *sequencer) formLocked(now time.Time) ([]*seqBatch, time.Time) {
	if q.cfg.Strategy == StrategyOldest {
		return q.formOldestLocked(now)
	}
	return q.formDirectLocked(now)
}

// formDirectLocked forms, for every idle instance, a batch of the slots that have a
// request ready, once enough slots are ready or the oldest has waited MaxQueueDelay.
func (q *sequencer) formDirectLocked(now time.Time) ([]*seqBatch, time.Time) {
	var batches []*seqBatch
	var due time.Time
	n := len(q.busy)
	for inst := range n {
		if q.busy[inst] {
			continue
		}
		rows := make([]*seqItem, q.perInst)
		ready := 0
		var first *Request
		var oldest time.Time
		for r := range q.perInst {
			seq := q.slots[r*n+inst]
			if seq == nil || seq.busy || len(seq.queue) == 0 {
				continue
			}
			head := seq.queue[0]
			if first != nil && !compatible(first, head.req) {
				continue // it runs in a later batch
			}
			if first == nil {
				first = head.req
			}
			rows[r] = head
			ready++
			if oldest.IsZero() || head.enq.Before(oldest) {
				oldest = head.enq
			}
		}
		if ready == 0 {
			continue
		}
		deadline := oldest.Add(q.cfg.MaxQueueDelay)
		if ready < q.perInst && float64(ready)/float64(q.perInst) < q.cfg.MinSlotUtilization && now.Before(deadline) {
			if due.IsZero() || deadline.Before(due) {
				due = deadline
			}
			continue
		}
		last := 0
		for r, it := range rows {
			if it != nil {
				last = r
			}
		}
		batches = append(batches, q.takeLocked(inst, rows[:last+1]))
	}
	return batches, due
}

// formOldestLocked forms batches on idle instances from the ready sequences whose next
// requests are oldest, dispatching at a preferred size, at the maximum, or when the
// oldest has waited MaxQueueDelay.
func (q *sequencer) formOldestLocked(now time.Time) ([]*seqBatch, time.Time) {
	var cands []*sequence
	for _, seq := range q.slots {
		if seq != nil && !seq.busy && len(seq.queue) > 0 {
			cands = append(cands, seq)
		}
	}
	slices.SortFunc(cands, byArrival)
	limit := q.perInst
	var batches []*seqBatch
	for len(cands) > 0 {
		inst := slices.Index(q.busy, false)
		if inst < 0 {
			return batches, time.Time{} // a finishing batch wakes the loop
		}
		var picked []*seqItem
		prefix := 0
		rest := cands[:0:0]
		for _, seq := range cands {
			head := seq.queue[0]
			if len(picked) == limit || (len(picked) > 0 && !compatible(picked[0].req, head.req)) {
				rest = append(rest, seq)
				continue
			}
			picked = append(picked, head)
			if slices.Contains(q.cfg.PreferredBatchSizes, len(picked)) {
				prefix = len(picked)
			}
		}
		deadline := picked[0].enq.Add(q.cfg.MaxQueueDelay)
		switch {
		case prefix > 0:
			for _, it := range picked[prefix:] {
				rest = append(rest, it.seq)
			}
			picked = picked[:prefix]
		case len(picked) >= limit, !now.Before(deadline):
		default:
			return batches, deadline
		}
		batches = append(batches, q.takeLocked(inst, picked))
		slices.SortFunc(rest, byArrival)
		cands = rest
	}
	return batches, time.Time{}
}

// byArrival orders sequences by the arrival of their next requests.
func byArrival(a, b *sequence) int { return cmp.Compare(a.queue[0].n, b.queue[0].n) }

// takeLocked dequeues the batch's items, holds their sequences and the instance busy,
// and records where each item's state starts from.
func (q *sequencer) takeLocked(inst int, rows []*seqItem) *seqBatch {
	b := &seqBatch{inst: inst, rows: rows}
	for _, it := range rows {
		if it == nil {
			continue
		}
		seq := it.seq
		seq.queue = seq.queue[1:]
		seq.busy = true
		it.queued = false
		it.start = it.req.Sequence.Start || seq.fresh
		if !it.start {
			it.state = seq.state
		}
		b.seqs = append(b.seqs, seq)
	}
	q.busy[inst] = true
	q.s.opts.Observer.QueueDepth(1, -len(b.seqs))
	return b
}

// run executes one batch and hands each request its row of the outputs.
func (q *sequencer) run(b *seqBatch) {
	start := time.Now()
	var dropped []*seqItem
	live := 0
	for i, it := range b.rows {
		if it == nil {
			continue
		}
		if it.ctx.Err() != nil { // its caller left after it was taken: it becomes padding
			q.s.opts.Observer.Dropped(dropReason(it.ctx))
			it.err = context.Cause(it.ctx)
			dropped = append(dropped, it)
			b.rows[i] = nil
			continue
		}
		live++
	}
	for len(b.rows) > 0 && b.rows[len(b.rows)-1] == nil {
		b.rows = b.rows[:len(b.rows)-1]
	}
	var parts [][]*tensor.Tensor
	var err error
	var t Timing
	if live > 0 {
		parts, t, err = q.execute(b, start)
		t.Batch = live
		q.s.opts.Observer.Executed(live)
	}
	q.complete(b, parts, err, start, t, dropped)
}

// execute assembles the batch's tensors, runs them and splits the outputs by row.
func (q *sequencer) execute(b *seqBatch, start time.Time) ([][]*tensor.Tensor, Timing, error) {
	in, want, err := q.assemble(b.rows)
	packed := time.Now()
	t := Timing{Input: packed.Sub(start)}
	if err != nil {
		return nil, t, err
	}
	ctx := context.Background() // a batch serves several callers; none may cancel it alone
	if len(b.rows) == 1 {
		ctx = b.rows[0].ctx
	}
	out, err := execute(ctx, q.s.instances[b.inst], in, want)
	inferred := time.Now()
	t.Infer = inferred.Sub(packed)
	if err != nil {
		return nil, t, err
	}
	var parts [][]*tensor.Tensor
	if q.batching {
		ones := make([]int64, len(b.rows))
		for i := range ones {
			ones[i] = 1
		}
		parts, err = unpack(out, ones)
	} else {
		parts = [][]*tensor.Tensor{out}
	}
	t.Output = time.Since(inferred)
	return parts, t, err
}

// complete stores each sequence's new state, frees the sequences and the instance, and
// answers the requests.
func (q *sequencer) complete(b *seqBatch, parts [][]*tensor.Tensor, err error, start time.Time, t Timing, dropped []*seqItem) {
	now := time.Now()
	leader := true
	q.mu.Lock()
	for i, it := range b.rows {
		if it == nil {
			continue
		}
		it.err = err
		if err == nil {
			var state []*tensor.Tensor
			state, it.err = q.stateOutputs(parts[i])
			if it.err == nil {
				it.seq.state, it.seq.fresh = state, false
				tt := t
				tt.Queue, tt.Leader = start.Sub(it.enq), leader
				leader = false
				it.res = &Result{Outputs: q.responseOutputs(parts[i], it.req.Outputs), Timing: tt}
			}
		}
	}
	for _, seq := range b.seqs {
		seq.busy = false
	}
	for _, it := range append(slices.Clip(b.rows), dropped...) {
		if it == nil {
			continue
		}
		// After END (run, failed or abandoned) the client is done with the sequence; a
		// START queued behind it keeps the slot.
		if it.req.Sequence.End && len(it.seq.queue) == 0 {
			q.releaseLocked(it.seq)
		} else {
			q.idleLocked(it.seq, now)
		}
	}
	q.busy[b.inst] = false
	q.mu.Unlock()
	q.signal()
	for _, it := range append(b.rows, dropped...) {
		if it != nil {
			close(it.done)
		}
	}
}

// stateOutputs picks the state outputs out of one row's outputs.
func (q *sequencer) stateOutputs(out []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(q.cfg.States) == 0 {
		return nil, nil
	}
	state := make([]*tensor.Tensor, len(q.cfg.States))
	for k, st := range q.cfg.States {
		i := slices.IndexFunc(out, func(t *tensor.Tensor) bool { return t.Name == st.Output })
		if i < 0 {
			return nil, fmt.Errorf("the model returned no state output %q", st.Output)
		}
		s := out[i]
		want := st.Dims
		if q.batching {
			want = append(tensor.Shape{1}, want...)
		}
		if s.DType != st.DType || !s.Shape.Equal(want) {
			return nil, fmt.Errorf("state output %q is %s%v, the config says %s%v", st.Output, s.DType, s.Shape, st.DType, want)
		}
		state[k] = &tensor.Tensor{Name: st.Input, DType: s.DType, Shape: s.Shape, Data: s.Data}
	}
	return state, nil
}

// responseOutputs returns the outputs a request named (all but the state outputs when
// it named none).
func (q *sequencer) responseOutputs(out []*tensor.Tensor, want []string) []*tensor.Tensor {
	if want != nil {
		return pickOutputs(out, want)
	}
	var keep []*tensor.Tensor
	for _, t := range out {
		if !slices.ContainsFunc(q.cfg.States, func(s State) bool { return s.Output == t.Name }) {
			keep = append(keep, t)
		}
	}
	return keep
}

// assemble builds the batch's inputs: the requests' own (zeros in padding rows), then
// the control inputs and the states, and lists the outputs to compute.
func (q *sequencer) assemble(rows []*seqItem) ([]*tensor.Tensor, []string, error) {
	var tmpl *Request
	for _, it := range rows {
		if it != nil {
			tmpl = it.req
			break
		}
	}
	var in []*tensor.Tensor
	for j, t := range tmpl.Inputs {
		col := make([]*tensor.Tensor, len(rows))
		for i, it := range rows {
			if it != nil {
				col[i] = it.req.Inputs[j]
			} else {
				col[i] = zeros(t.Name, t.DType, t.Shape)
			}
		}
		x, err := tensor.Concat(col)
		if err != nil {
			return nil, nil, err
		}
		in = append(in, x)
	}
	for _, c := range q.cfg.Controls {
		in = append(in, q.control(c, rows))
	}
	for k, st := range q.cfg.States {
		x, err := q.stateInput(k, st, rows)
		if err != nil {
			return nil, nil, err
		}
		in = append(in, x)
	}
	return in, q.wanted(rows), nil
}

// control builds a control tensor: [rows, 1] when the model batches, else [1].
func (q *sequencer) control(c Control, rows []*seqItem) *tensor.Tensor {
	var data []byte
	for _, it := range rows {
		var on bool
		switch c.Kind {
		case ControlCorrID:
			data = appendCorrID(data, c.DType, it)
			continue
		case ControlStart:
			on = it != nil && it.start
		case ControlEnd:
			on = it != nil && it.req.Sequence.End
		case ControlReady:
			on = it != nil
		}
		if on {
			data = append(data, c.True...)
		} else {
			data = append(data, c.False...)
		}
	}
	shape := tensor.Shape{1}
	if q.batching {
		shape = tensor.Shape{int64(len(rows)), 1}
	}
	return &tensor.Tensor{Name: c.Input, DType: c.DType, Shape: shape, Data: data}
}

// appendCorrID appends one row's correlation ID as d (0 or "" in padding rows).
func appendCorrID(data []byte, d tensor.DType, it *seqItem) []byte {
	var id Sequence
	if it != nil {
		id = it.seq.id
	}
	switch d {
	case tensor.Bytes:
		s := id.IDString
		if s == "" && id.ID != 0 {
			s = strconv.FormatUint(id.ID, 10)
		}
		return tensor.AppendBytesElement(data, []byte(s))
	case tensor.Int32, tensor.Uint32:
		return binary.LittleEndian.AppendUint32(data, uint32(min(id.ID, math.MaxUint32)))
	default:
		return binary.LittleEndian.AppendUint64(data, id.ID)
	}
}

// stateInput stacks the rows' state k: the sequence's last state output, or the initial
// state on START and in padding rows.
func (q *sequencer) stateInput(k int, st State, rows []*seqItem) (*tensor.Tensor, error) {
	shape := st.Dims.Clone()
	if q.batching {
		shape = append(tensor.Shape{1}, shape...)
	}
	col := make([]*tensor.Tensor, len(rows))
	for i, it := range rows {
		if it != nil && !it.start && it.state != nil {
			col[i] = it.state[k]
			continue
		}
		if st.Initial != nil {
			col[i] = &tensor.Tensor{Name: st.Input, DType: st.DType, Shape: shape, Data: st.Initial}
		} else {
			col[i] = zeros(st.Input, st.DType, shape)
		}
	}
	return tensor.Concat(col)
}

// wanted lists the outputs the batch needs: the union the requests named plus the state
// outputs; nil (every output) when one request named none.
func (q *sequencer) wanted(rows []*seqItem) []string {
	var want []string
	for _, it := range rows {
		if it == nil {
			continue
		}
		if it.req.Outputs == nil {
			return nil
		}
		for _, o := range it.req.Outputs {
			if !slices.Contains(want, o) {
				want = append(want, o)
			}
		}
	}
	for _, st := range q.cfg.States {
		if !slices.Contains(want, st.Output) {
			want = append(want, st.Output)
		}
	}
	return want
}

// zeros is a tensor of that shape holding zero numbers, or empty strings for BYTES.
func zeros(name string, d tensor.DType, shape tensor.Shape) *tensor.Tensor {
	n, _ := shape.NumElements()
	size := cmp.Or(d.Size(), 4) // a BYTES element of length 0 is its 4-byte prefix
	return &tensor.Tensor{Name: name, DType: d, Shape: shape, Data: make([]byte, int(n)*size)}
}
