package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryml/ferry/internal/stream"
)

// partition is one assigned input partition: a queue of fetched records, the worker
// that scores them in order, and the produced results awaiting acknowledgement.
type partition struct {
	c      *Consumer
	cl     *kgo.Client
	topic  string
	id     int32
	st     *counters
	cancel context.CancelFunc // ends the worker: revoked, lost or stopping
	done   chan struct{}      // closed when the worker has returned
	acks   sync.WaitGroup     // results produced and not yet acknowledged
	wake   chan struct{}      // cap 1: the queue grew

	mu     sync.Mutex
	queue  []*kgo.Record // fetched, not yet taken by the worker
	held   int           // messages of this partition counted in flight
	heldB  int           // and their bytes
	chunks []*chunk      // produced results, oldest first, awaiting acknowledgement
	gone   bool          // given up: late acknowledgements mark nothing
	// spare holds the output records of acknowledged chunks for the next chunks to
	// reuse. A chunk's records are a thousand-odd kgo.Records, ~180 KB: allocated anew
	// for each chunk, the first writes to them faulted in fresh pages, and filling them
	// in took ~4% of the lane's CPU in BenchmarkKafkaLane's profile.
	spare [][]kgo.Record
}

// maxSpare is how many acknowledged chunks' records a partition keeps for reuse: one
// chunk is scored while the ones before it are acknowledged.
const maxSpare = 4

// chunk is one run of consecutive messages whose results were produced together; the
// offset past last is committed once every one of them is acknowledged.
type chunk struct {
	last       *kgo.Record
	n, pending int
	bytes      int          // the messages' sizes (recordBytes)
	outs       []kgo.Record // the results as produced; franz-go is done with them once all are acknowledged
}

// recordBytes is what a message counts against MaxInFlightBytes.
func recordBytes(recs []*kgo.Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Key) + len(r.Value)
	}
	return n
}

func newPartition(c *Consumer, cl *kgo.Client, id int32) (*partition, context.Context) {
	ctx, cancel := context.WithCancel(c.runCtx)
	return &partition{c: c, cl: cl, topic: c.cfg.InputTopic, id: id, st: c.counters(id), cancel: cancel,
		done: make(chan struct{}), wake: make(chan struct{}, 1)}, ctx
}

// add queues fetched records; false when the partition is no longer ours.
func (p *partition) add(recs []*kgo.Record) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return false
	}
	p.queue = append(p.queue, recs...)
	size := recordBytes(recs)
	p.held += len(recs)
	p.heldB += size
	p.c.acquire(len(recs), size)
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return true
}

// run scores the queue in order until ctx ends.
func (p *partition) run(ctx context.Context) {
	defer close(p.done)
	for {
		recs := p.next(ctx)
		if recs == nil {
			return
		}
		p.score(ctx, recs)
	}
}

// next takes the queue's head, up to a chunk, waiting for records; nil once ctx ends.
func (p *partition) next(ctx context.Context) []*kgo.Record {
	for {
		p.mu.Lock()
		q := p.queue
		if len(q) > p.c.chunk {
			q, p.queue = q[:p.c.chunk:p.c.chunk], q[p.c.chunk:]
		} else {
			p.queue = nil
		}
		p.mu.Unlock()
		if len(q) > 0 {
			return q
		}
		select {
		case <-p.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// score processes records and produces their results in order. Results from the
// first message the model could not take (Retry) on are thrown away: those messages
// are processed again after a backoff, with the partition's fetching paused, so
// nothing after them is produced first.
func (p *partition) score(ctx context.Context, recs []*kgo.Record) {
	msgs := make([]stream.Message, len(recs))
	for i, r := range recs {
		msgs[i] = stream.Message{Key: r.Key, Value: r.Value}
	}
	backoff, paused := backoffMin, false
	tp := map[string][]int32{p.topic: {p.id}}
	defer func() {
		if paused {
			p.cl.ResumeFetchPartitions(tp)
		}
	}()
	for {
		res := p.c.process(ctx, p.id, msgs)
		n := slices.IndexFunc(res, func(r stream.Result) bool { return r.Retry })
		if n < 0 {
			n = len(res)
		}
		p.produce(recs[:n], res[:n])
		recs, msgs = recs[n:], msgs[n:]
		if len(recs) == 0 {
			return
		}
		if ctx.Err() == nil {
			p.st.retried.Add(uint64(len(recs)))
			if !paused {
				p.cl.PauseFetchPartitions(tp)
				paused = true
				p.c.log.Warn("the model cannot take messages now; partition paused", "partition", p.id, "err", res[n].Err)
			}
			select {
			case <-time.After(backoff):
				backoff = min(2*backoff, backoffMax)
				continue
			case <-ctx.Done():
			}
		}
		p.drop(recs) // stopping: the next owner consumes them again
		return
	}
}

// produce sends each message's result, in order: franz-go keeps the order of records
// produced to one partition, so a key's outputs keep their inputs' order.
func (p *partition) produce(recs []*kgo.Record, res []stream.Result) {
	if len(recs) == 0 {
		return
	}
	ch := &chunk{last: recs[len(recs)-1], n: len(recs), pending: len(recs), bytes: recordBytes(recs)}
	p.mu.Lock()
	p.chunks = append(p.chunks, ch)
	outs := p.records(len(recs))
	p.mu.Unlock()
	ch.outs = outs
	p.acks.Add(len(recs))
	// One timestamp for the chunk's results, which are produced together: franz-go
	// would otherwise read the clock for each (~50 ns a message on a 2-core VM, 7% of
	// an echoed message's CPU).
	now := time.Now()
	for i, in := range recs {
		p.record(&outs[i], in, res[i])
		outs[i].Timestamp = now
		// Not the worker's context: a result handed over is delivered even while stopping,
		// so its offset can still be committed.
		p.cl.Produce(context.Background(), &outs[i], func(out *kgo.Record, err error) { p.acked(ch, in, out, err) })
	}
}

// records are n output records, a spare chunk's when one is large enough; p.mu is held.
func (p *partition) records(n int) []kgo.Record {
	for i, s := range p.spare {
		if cap(s) >= n {
			p.spare = slices.Delete(p.spare, i, i+1)
			return s[:n] // every element is overwritten (record)
		}
	}
	return make([]kgo.Record, n)
}

// record sets out to a message's output, keyed and headed as its input, or to the
// input itself for the dead-letter topic with why and where from.
func (p *partition) record(out, in *kgo.Record, res stream.Result) {
	h := slices.DeleteFunc(slices.Clone(in.Headers), func(h kgo.RecordHeader) bool {
		return h.Key == stream.HeaderError || h.Key == stream.HeaderSource // from an earlier dead letter
	})
	if res.Err == nil {
		*out = kgo.Record{Topic: p.c.cfg.OutputTopic, Key: in.Key, Value: res.Value, Headers: h}
		return
	}
	h = append(h,
		kgo.RecordHeader{Key: stream.HeaderError, Value: []byte(res.Err.Error())},
		kgo.RecordHeader{Key: stream.HeaderSource, Value: []byte(stream.Position(in.Topic, in.Partition, in.Offset))})
	*out = kgo.Record{Topic: p.c.cfg.DeadLetterTopic, Key: in.Key, Value: in.Value, Headers: h}
}

// acked counts an acknowledged result and, when it completes the oldest chunks,
// marks the offset past them for commit and frees their room in flight.
func (p *partition) acked(ch *chunk, in, out *kgo.Record, err error) {
	defer p.acks.Done()
	if err != nil {
		if !errors.Is(err, kgo.ErrClientClosed) {
			p.c.failed(fmt.Errorf("producing the result of %s to topic %q: %w", stream.Position(in.Topic, in.Partition, in.Offset), out.Topic, err))
		}
		return // the chunk never completes: nothing from here on is committed
	}
	if out.Topic == p.c.cfg.OutputTopic {
		p.st.produced.Add(1)
	} else {
		p.st.failed.Add(1)
	}
	p.mu.Lock()
	ch.pending--
	var last *kgo.Record
	n, size := 0, 0
	for len(p.chunks) > 0 && p.chunks[0].pending == 0 {
		done := p.chunks[0]
		last, n, size = done.last, n+done.n, size+done.bytes
		if len(p.spare) < maxSpare {
			p.spare = append(p.spare, done.outs)
		}
		p.chunks = p.chunks[1:]
	}
	mark := last != nil && !p.gone
	if mark {
		p.held -= n
		p.heldB -= size
		p.c.release(n, size)
		p.st.pos.Store(last.Offset + 1)
	}
	p.mu.Unlock()
	if mark && !p.c.crashed.Load() {
		p.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{p.topic: {p.id: {Epoch: last.LeaderEpoch, Offset: last.Offset + 1}}})
	}
}

// drop gives up messages the worker held: they were not produced.
func (p *partition) drop(recs []*kgo.Record) {
	size := recordBytes(recs)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.gone {
		p.held -= len(recs)
		p.heldB -= size
		p.c.release(len(recs), size)
	}
}

// close gives the partition up: what it still holds leaves the in-flight count,
// and acknowledgements arriving later mark nothing.
func (p *partition) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gone = true
	p.c.release(p.held, p.heldB)
	p.held, p.heldB, p.queue, p.chunks = 0, 0, nil, nil
}
