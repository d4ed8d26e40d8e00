package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryml/ferry/internal/platform/kgolog"
	"github.com/ferryml/ferry/internal/stream"
)

// Consumer is one member of a consumer group, from its input topic through a Processor
// to its output and dead-letter topics. Build it with New and run it with Run, once.
type Consumer struct {
	cfg Config
	p   *stream.Processor
	log *slog.Logger
	// process is p.Process on one partition's messages; tests wrap it (the benchmark
	// records the batches the lane made).
	process func(ctx context.Context, partition int32, msgs []stream.Message) []stream.Result

	// chunk is the most messages one Process call takes: four model batches, and at
	// most a quarter of the in-flight bound, so a partition scores one chunk while the
	// results of the one before are acknowledged and the next is fetched.
	chunk int
	codec kgo.CompressionCodec // Config.Compression's

	running atomic.Bool
	// runCtx is Run's context, the parent of the partition workers that
	// OnPartitionsAssigned starts (franz-go hands its callbacks only the client's).
	runCtx  context.Context //nolint:containedctx // set once by Run before the client exists
	fail    context.CancelCauseFunc
	fatal   atomic.Pointer[error]
	crashed atomic.Bool // tests: stop as a crash would, committing nothing more

	// Lock order: partition.mu before mu.
	mu       sync.Mutex
	parts    map[int32]*partition // assigned partitions of the input topic
	stats    map[int32]*counters  // every partition consumed, kept across rebalances
	inflight int                  // messages fetched and not finished, across partitions
	bytes    int                  // their keys' and values' bytes
	peak     int                  // the most inflight ever was
	peakB    int                  // the most bytes ever were
	// seen and seenB count every message fetched and its bytes: their mean turns
	// the bytes free into a poll's count.
	seen, seenB int
	freed       chan struct{} // cap 1: inflight went down
}

// New validates cfg and builds a consumer around p; it connects to nothing until Run.
func New(cfg Config, p *stream.Processor, log *slog.Logger) (*Consumer, error) {
	if err := cfg.validate(p); err != nil {
		return nil, fmt.Errorf("kafka consumer %q: %w", cfg.Name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Consumer{cfg: cfg, p: p, log: log.With("consumer", cfg.Name, "topic", cfg.InputTopic),
		parts: map[int32]*partition{}, stats: map[int32]*counters{}, freed: make(chan struct{}, 1)}
	c.chunk = max(1, min(cfg.MaxInFlight/4, max(chunkBatches*p.Schema().MaxBatch, minChunk)))
	c.codec, _ = codec(cfg.Compression) // validated
	c.process = func(ctx context.Context, _ int32, msgs []stream.Message) []stream.Result { return p.Process(ctx, msgs) }
	return c, nil
}

// clientOpts are the consumer's franz-go options, then the configuration's own.
func (c *Consumer) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ConsumerGroup(c.cfg.Group),
		kgo.ConsumeTopics(c.cfg.InputTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// A poll takes its records partition by partition from the buffered fetch; small
		// pieces per partition let one poll feed several partitions' workers at once
		// instead of one partition's megabyte filling the whole in-flight bound.
		kgo.FetchMaxPartitionBytes(fetchPartitionBytes),
		// Offsets are marked only once a message's result is acknowledged, and
		// committed from the marks every second and when partitions go.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(commitEvery),
		// A poll and the hand-over of its records are one step no rebalance cuts in
		// two; processing is not (revoking cancels it).
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
		// A worker produces a whole chunk of results at once, so lingering would batch
		// nothing and only hold back the acknowledgements the in-flight bound waits for.
		kgo.ProducerLinger(0),
		// Each message in flight has at most one result buffered, so Produce never blocks.
		kgo.MaxBufferedRecords(max(50_000, 2*c.cfg.MaxInFlight)),
		kgo.ProducerBatchCompression(c.codec),
		kgo.WithLogger(kgolog.New(c.log)),
	}
	return append(opts, c.cfg.Opts...)
}

// Run consumes until ctx ends or producing fails for good. On the way out it
// abandons the work in progress, waits (a bounded time) for the results already
// produced, commits the offsets past them and leaves the group; whatever was not
// produced is consumed again by the group's next owner. It returns nil when ctx
// ended, and the failure otherwise.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return fmt.Errorf("kafka consumer %q: Run called twice", c.cfg.Name)
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c.runCtx, c.fail = runCtx, cancel
	cl, err := kgo.NewClient(c.clientOpts()...)
	if err != nil {
		return fmt.Errorf("kafka consumer %q: %w", c.cfg.Name, err)
	}
	c.log.Info("kafka consumer started", "group", c.cfg.Group, "output", c.cfg.OutputTopic, "max_in_flight", c.cfg.MaxInFlight)
	c.poll(runCtx, cl)
	c.finish(context.Background(), cl, c.take(nil, true), !c.crashed.Load())
	cl.Close() // leaves the group; revoked finds nothing left to do
	if err := c.fatal.Load(); err != nil {
		return *err
	}
	return nil
}

// poll fetches while there is room in flight and hands each partition's records to
// its worker.
func (c *Consumer) poll(ctx context.Context, cl *kgo.Client) {
	paused := false
	var lastErr string
	var lastLog time.Time
	for {
		room, ok := c.room(ctx, cl, &paused)
		if !ok {
			return
		}
		fs := cl.PollRecords(ctx, room)
		if ctx.Err() != nil || fs.IsClientClosed() {
			cl.AllowRebalance()
			return
		}
		failed := false
		fs.EachError(func(topic string, p int32, err error) {
			// franz-go retries on its own; say so once, not at every poll.
			failed = true
			if msg := err.Error(); msg != lastErr || time.Since(lastLog) > 30*time.Second {
				c.log.Warn("fetch failed", "partition", p, "err", err)
				lastErr, lastLog = msg, time.Now()
			}
		})
		fs.EachPartition(c.dispatch)
		cl.AllowRebalance()
		if failed && fs.NumRecords() == 0 {
			// A poll that returns only errors returns at once; do not spin on it.
			select {
			case <-time.After(backoffMin):
			case <-ctx.Done():
			}
		}
	}
}

// room waits until fewer than MaxInFlight messages are in flight and answers how
// many more may be polled. At the bound it pauses fetching the input topic and
// resumes once a chunk is free again, so a poll brings at least a chunk.
func (c *Consumer) room(ctx context.Context, cl *kgo.Client, paused *bool) (int, bool) {
	for {
		c.mu.Lock()
		free := c.cfg.MaxInFlight - c.inflight
		if *paused && c.inflight > c.cfg.MaxInFlight-c.chunk {
			free = 0
		}
		// The byte bound pauses alike, and resumes with a quarter of it free. A poll
		// is counted in messages, so the bytes still free become messages at the mean
		// size seen so far; before any, a small first poll learns it.
		if c.bytes >= c.cfg.MaxInFlightBytes || *paused && c.bytes > c.cfg.MaxInFlightBytes*3/4 {
			free = 0
		} else if c.seen == 0 {
			free = min(free, minChunk)
		} else {
			free = min(free, max(1, (c.cfg.MaxInFlightBytes-c.bytes)/max(1, c.seenB/c.seen)))
		}
		c.mu.Unlock()
		switch {
		case free > 0 && *paused:
			cl.ResumeFetchTopics(c.cfg.InputTopic)
			*paused = false
		case free <= 0 && !*paused:
			cl.PauseFetchTopics(c.cfg.InputTopic)
			*paused = true
		}
		if free > 0 {
			return free, true
		}
		select {
		case <-c.freed:
		case <-ctx.Done():
			return 0, false
		}
	}
}

// dispatch queues one partition's fetched records on its worker.
func (c *Consumer) dispatch(ftp kgo.FetchTopicPartition) {
	if ftp.Topic != c.cfg.InputTopic {
		return
	}
	st := c.counters(ftp.Partition)
	st.hwm.Store(ftp.HighWatermark)
	if len(ftp.Records) == 0 {
		return
	}
	c.mu.Lock()
	p := c.parts[ftp.Partition]
	c.mu.Unlock()
	// A partition revoked since the poll is not ours: its next owner fetches the
	// records again from the last commit.
	if p == nil || !p.add(ftp.Records) {
		return
	}
	st.consumed.Add(uint64(len(ftp.Records)))
	st.pos.CompareAndSwap(-1, ftp.Records[0].Offset)
}

func (c *Consumer) acquire(n, bytes int) {
	c.mu.Lock()
	c.inflight += n
	c.bytes += bytes
	c.peakB = max(c.peakB, c.bytes)
	c.seen, c.seenB = c.seen+n, c.seenB+bytes
	c.peak = max(c.peak, c.inflight)
	c.mu.Unlock()
}

func (c *Consumer) release(n, bytes int) {
	if n == 0 {
		return
	}
	c.mu.Lock()
	c.inflight -= n
	c.bytes -= bytes
	c.mu.Unlock()
	select {
	case c.freed <- struct{}{}:
	default:
	}
}

// counters are a partition's, created on first use.
func (c *Consumer) counters(partition int32) *counters {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats[partition]
	if st == nil {
		st = &counters{}
		st.hwm.Store(-1)
		st.pos.Store(-1)
		c.stats[partition] = st
	}
	return st
}

// assigned starts a worker per new partition of the input topic.
func (c *Consumer) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	if c.runCtx.Err() != nil {
		return // stopping: the partitions are given back when Run closes the client
	}
	for _, id := range assigned[c.cfg.InputTopic] {
		p, ctx := newPartition(c, cl, id)
		c.mu.Lock()
		if c.parts[id] != nil { // already ours: its worker goes on
			c.mu.Unlock()
			p.cancel()
			continue
		}
		c.parts[id] = p
		c.mu.Unlock()
		go p.run(ctx) // until revoked, lost or stopped (finish waits for it)
	}
	c.log.Info("partitions assigned", "partitions", assigned[c.cfg.InputTopic])
}

// revoked stops the partitions' work, waits for the results already produced and
// commits past them before the partitions go to another member.
func (c *Consumer) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	if ps := c.take(revoked[c.cfg.InputTopic], false); len(ps) > 0 {
		c.log.Info("partitions revoked", "partitions", revoked[c.cfg.InputTopic])
		c.finish(ctx, cl, ps, !c.crashed.Load())
	}
}

// lost drops the partitions' work: another member owns them already, so committing
// could rewind its progress.
func (c *Consumer) lost(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	if ps := c.take(lost[c.cfg.InputTopic], false); len(ps) > 0 {
		c.log.Warn("partitions lost", "partitions", lost[c.cfg.InputTopic])
		c.finish(ctx, cl, ps, false)
	}
}

// take removes the partitions from the assigned set: those of ids, or all.
func (c *Consumer) take(ids []int32, all bool) []*partition {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ps []*partition
	for id, p := range c.parts {
		if all || slices.Contains(ids, id) {
			ps = append(ps, p)
			delete(c.parts, id)
		}
	}
	return ps
}

// finish stops the partitions' workers, waits for their produced results to be
// acknowledged (at most finishTimeout) and, with commit, commits every offset marked.
func (c *Consumer) finish(ctx context.Context, cl *kgo.Client, ps []*partition, commit bool) {
	for _, p := range ps {
		p.cancel()
	}
	for _, p := range ps {
		<-p.done
	}
	if commit {
		acked := make(chan struct{})
		go func() { // exits when the last result is acknowledged or fails (client closed)
			for _, p := range ps {
				p.acks.Wait()
			}
			close(acked)
		}()
		select {
		case <-acked:
		case <-time.After(finishTimeout):
			c.log.Warn("results still unacknowledged; their messages will be consumed again", "waited", finishTimeout)
		}
	}
	for _, p := range ps {
		p.close()
	}
	if !commit {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, finishTimeout)
	defer cancel()
	if err := cl.CommitMarkedOffsets(cctx); err != nil {
		c.log.Warn("committing offsets failed; messages since the last commit will be consumed again", "err", err)
	}
}

// failed ends Run with err: a result could not be produced, and nothing past it may
// be committed.
func (c *Consumer) failed(err error) {
	err = fmt.Errorf("kafka consumer %q: %w", c.cfg.Name, err)
	if c.fatal.CompareAndSwap(nil, &err) {
		c.log.Error("producing failed; stopping", "err", err)
		c.fail(err)
	}
}

// Stats reports each partition's counts; lag is the high watermark of the latest fetch
// less the offset of the first message not yet finished.
func (c *Consumer) Stats() []stream.Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]stream.Stats, 0, len(c.stats))
	for id, st := range c.stats {
		lag := int64(-1)
		if hwm, pos := st.hwm.Load(), st.pos.Load(); hwm >= 0 && pos >= 0 {
			lag = max(0, hwm-pos)
		}
		out = append(out, stream.Stats{Broker: "kafka", Consumer: c.cfg.Name, Topic: c.cfg.InputTopic, Partition: id,
			Consumed: st.consumed.Load(), Produced: st.produced.Load(), Failed: st.failed.Load(), Retried: st.retried.Load(), Lag: lag})
	}
	slices.SortFunc(out, func(a, b stream.Stats) int { return int(a.Partition - b.Partition) })
	return out
}

// counters are one partition's Stats as they change.
type counters struct {
	consumed, produced, failed, retried atomic.Uint64
	hwm                                 atomic.Int64 // -1 until fetched
	pos                                 atomic.Int64 // first offset not finished; -1 until fetched
}
