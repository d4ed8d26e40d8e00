package redisstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryml/ferry/internal/platform/periodic"
	"github.com/ferryml/ferry/internal/stream"
)

// processor is what the consumer needs of *stream.Processor.
type processor interface {
	Process(ctx context.Context, msgs []stream.Message) []stream.Result
}

// Consumer moves entries from one input stream through a model to an output stream.
type Consumer struct {
	cfg  Config
	opts *redis.Options
	p    processor
	log  *slog.Logger
	// chunk is the most entries one read asks for: a quarter of MaxInFlight (by default
	// the model's max batch size), so that a chunk can be read, one wait, one be scored
	// and one written at once.
	chunk int64

	consumed, produced, failed, retried atomic.Uint64
	lag                                 atomic.Int64
	pending                             pendingSet

	// hook, set only by tests, runs after scoring ("scored") and after the outputs are
	// written ("written"); an error stops the batch there, as a crash would.
	hook func(stage string) error
}

// New checks cfg (every bad field at once) and builds a consumer for p's model. It does
// not connect: Run does.
func New(cfg Config, p *stream.Processor, log *slog.Logger) (*Consumer, error) {
	if p == nil {
		return nil, errors.New("redisstream: no processor")
	}
	cfg = cfg.withDefaults(p.Schema().MaxBatch)
	opts, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("redisstream %q: %w", cfg.Name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Consumer{cfg: cfg, opts: opts, p: p, chunk: int64(max(1, cfg.MaxInFlight/4)),
		log: log.With("consumer", cfg.Name, "stream", cfg.Stream, "group", cfg.Group, "member", cfg.Consumer)}
	c.lag.Store(-1)
	return c, nil
}

// Config is the consumer's configuration with its defaults filled in.
func (c *Consumer) Config() Config { return c.cfg }

// Stats reports the consumer's counts; Lag comes from XINFO GROUPS (entries of the
// stream the group has not read yet), refreshed every second while Run runs, and is -1
// until known or when the server cannot tell.
func (c *Consumer) Stats() []stream.Stats {
	return []stream.Stats{{Broker: "redis", Consumer: c.cfg.Name, Topic: c.cfg.Stream,
		Consumed: c.consumed.Load(), Produced: c.produced.Load(), Failed: c.failed.Load(),
		Retried: c.retried.Load(), Lag: c.lag.Load()}}
}

const (
	connectTimeout = 10 * time.Second
	lagEvery       = time.Second
	minBackoff     = 100 * time.Millisecond
	maxBackoff     = 5 * time.Second
)

// errRetry ends a session whose model could not take entries: they stay pending and the
// next session, after a back-off, reads them again.
var errRetry = errors.New("model unavailable")

// Run connects, creates the group if missing and consumes until ctx ends, then returns
// nil. It returns an error only when the server cannot be reached or the group cannot be
// created at the start; later failures (a lost connection, the model unavailable) are
// logged and retried with a back-off. Run may be called again after it returns, never
// twice at once.
func (c *Consumer) Run(ctx context.Context) error {
	rdb := redis.NewClient(c.opts)
	defer rdb.Close()
	if err := c.start(ctx, rdb); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var wg sync.WaitGroup
	lctx, stopLag := context.WithCancel(ctx)
	defer func() { stopLag(); wg.Wait() }()
	wg.Go(func() { periodic.Run(lctx, lagEvery, func(ctx context.Context) { c.refreshLag(ctx, rdb) }) })

	delay := time.Duration(0)
	for {
		acked, err := c.session(ctx, rdb)
		if ctx.Err() != nil {
			return nil
		}
		if acked > 0 || delay == 0 {
			delay = minBackoff
		} else {
			delay = min(2*delay, maxBackoff)
		}
		if errors.Is(err, errRetry) {
			c.log.Info("model unavailable; entries stay pending and are read again", "retry_in", delay)
		} else {
			c.log.Warn("redis stream consumer failed; reconnecting", "err", err, "retry_in", delay)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// start checks the server answers and the group exists, so a wrong address or a key of
// the wrong type fails Run at once.
func (c *Consumer) start(ctx context.Context, rdb *redis.Client) error {
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := rdb.Ping(cctx).Err(); err != nil {
		return fmt.Errorf("redisstream %q: connecting to redis at %s: %w", c.cfg.Name, c.opts.Addr, err)
	}
	if err := c.ensureGroup(cctx, rdb); err != nil {
		return err
	}
	c.refreshLag(cctx, rdb)
	c.log.Info("redis stream consumer started", "addr", c.opts.Addr, "max_in_flight", c.cfg.MaxInFlight)
	return nil
}

// ensureGroup creates the group reading from the stream's first entry (and the stream,
// if missing); a group that exists already keeps its position.
func (c *Consumer) ensureGroup(ctx context.Context, rdb *redis.Client) error {
	err := rdb.XGroupCreateMkStream(ctx, c.cfg.Stream, c.cfg.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("redisstream %q: creating group %q on stream %q: %w", c.cfg.Name, c.cfg.Group, c.cfg.Stream, err)
	}
	return nil
}

func (c *Consumer) refreshLag(ctx context.Context, rdb *redis.Client) {
	groups, err := rdb.XInfoGroups(ctx, c.cfg.Stream).Result()
	if err != nil {
		c.log.Debug("reading the group's lag", "err", err)
		return
	}
	for _, g := range groups {
		if g.Name == c.cfg.Group {
			c.lag.Store(g.Lag) // -1 when the server cannot tell (entries deleted mid-stream)
		}
	}
}

// pendingSet holds the ids this consumer has read and not yet acknowledged or given up,
// so a reclaim does not take back an entry still being scored here.
type pendingSet struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	peak int // the most ids held at once: tests check it against MaxInFlight
}

func (s *pendingSet) add(batch []entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]struct{}{}
	}
	for _, e := range batch {
		s.ids[e.id] = struct{}{}
	}
	s.peak = max(s.peak, len(s.ids))
}

func (s *pendingSet) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[id]
	return ok
}

func (s *pendingSet) remove(batch []entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range batch {
		delete(s.ids, e.id)
	}
}

func (s *pendingSet) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.ids)
}
