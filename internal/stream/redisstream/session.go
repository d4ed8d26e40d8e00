package redisstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/semaphore"

	"github.com/ferryml/ferry/internal/stream"
)

const maxBlock = 250 * time.Millisecond

// A session is one pass of reading, scoring and writing, from the consumer's own
// pending entries on, in three stages joined by channels so that Redis round trips
// overlap the model's work: a reader goroutine hands batches of entries to a scoring
// goroutine, which hands them with their results to the writing loop. Anything that
// breaks the order (a batch the model could not take, a failed write) ends the session;
// the entries it had read and not acknowledged stay pending in the group, and the next
// session reads them again first, so they are written in order.
type session struct {
	c       *Consumer
	rdb     *redis.Client
	slots   *semaphore.Weighted // MaxInFlight: taken by a read, given back by the XACK
	batches chan []entry        // reader -> scorer
	scored  chan scored         // scorer -> writer
	acked   int
	claimAt string // XAUTOCLAIM's cursor through the group's pending entries
}

// scored is a batch's entries up to the first the model could not take, with their
// results.
type scored struct {
	batch   []entry
	results []stream.Result
}

// session runs one session until it fails or ctx ends; it returns how many entries it
// acknowledged, so Run resets its back-off after progress.
func (c *Consumer) session(ctx context.Context, rdb *redis.Client) (int, error) {
	defer c.pending.reset()
	if err := c.ensureGroup(ctx, rdb); err != nil { // the group may have been deleted
		return 0, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &session{c: c, rdb: rdb, slots: semaphore.NewWeighted(int64(c.cfg.MaxInFlight)),
		batches: make(chan []entry, 1), scored: make(chan scored, 1), claimAt: "0-0"}
	var readErr, scoreErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(s.batches)
		readErr = s.read(sctx)
	})
	wg.Go(func() {
		defer close(s.scored)
		scoreErr = s.score(sctx)
	})
	writeErr := s.write(sctx)
	cancel() // every stage's send also waits on sctx, so the goroutines end here
	wg.Wait()
	return s.acked, errors.Join(writeErr, quiet(scoreErr), quiet(readErr))
}

// quiet drops the error of a stage the session ended.
func quiet(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// read hands over the consumer's own pending entries (left by an earlier session or
// process under the same consumer name), then new entries, reclaiming other consumers'
// idle pending entries every half ClaimIdle.
func (s *session) read(ctx context.Context) error {
	if err := s.readOwn(ctx); err != nil {
		return err
	}
	every := s.c.cfg.ClaimIdle / 2
	// A blocked XREADGROUP does not see ctx end (go-redis honours deadlines, not
	// cancellation), so the block bounds how long a shutdown waits.
	block := min(max(every, 10*time.Millisecond), maxBlock)
	var next time.Time
	for {
		if !time.Now().Before(next) {
			more, err := s.claim(ctx)
			if err != nil {
				return err
			}
			if !more {
				next = time.Now().Add(every)
			}
		}
		if err := s.readNew(ctx, block); err != nil {
			return err
		}
	}
}

func (s *session) readOwn(ctx context.Context) error {
	for after := "0"; ; {
		msgs, err := s.readGroup(ctx, after, -1)
		if err != nil || len(msgs) == 0 {
			return err
		}
		after = msgs[len(msgs)-1].ID
		if err := s.hand(ctx, msgs, false); err != nil {
			return err
		}
	}
}

func (s *session) readNew(ctx context.Context, block time.Duration) error {
	msgs, err := s.readGroup(ctx, ">", block)
	if err != nil {
		return err
	}
	return s.hand(ctx, msgs, false)
}

// readGroup takes a chunk of slots and reads up to that many entries after id ("0": the
// consumer's pending entries; ">": new ones, waiting up to block); hand gives back the
// slots not used.
func (s *session) readGroup(ctx context.Context, id string, block time.Duration) ([]redis.XMessage, error) {
	if err := s.slots.Acquire(ctx, s.c.chunk); err != nil {
		return nil, err
	}
	res, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: s.c.cfg.Group, Consumer: s.c.cfg.Consumer,
		Streams: []string{s.c.cfg.Stream, id}, Count: s.c.chunk, Block: block}).Result()
	if err != nil && !errors.Is(err, redis.Nil) { // Nil: the block ended with no entry
		s.slots.Release(s.c.chunk)
		return nil, fmt.Errorf("reading stream %q: %w", s.c.cfg.Stream, err)
	}
	if len(res) == 0 {
		s.slots.Release(s.c.chunk)
		return nil, nil
	}
	if len(res[0].Messages) == 0 {
		s.slots.Release(s.c.chunk)
	}
	return res[0].Messages, nil
}

// claim takes over up to a chunk of entries pending longer than ClaimIdle in any
// consumer of the group (a crashed one's); more says the scan of the group's pending
// list has not come round yet, so claim again soon.
func (s *session) claim(ctx context.Context) (more bool, err error) {
	if err := s.slots.Acquire(ctx, s.c.chunk); err != nil {
		return false, err
	}
	msgs, next, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: s.c.cfg.Stream, Group: s.c.cfg.Group,
		Consumer: s.c.cfg.Consumer, MinIdle: s.c.cfg.ClaimIdle, Start: s.claimAt, Count: s.c.chunk}).Result()
	if err != nil {
		s.slots.Release(s.c.chunk)
		return false, fmt.Errorf("reclaiming idle entries of group %q: %w", s.c.cfg.Group, err)
	}
	s.claimAt = next
	if len(msgs) == 0 {
		s.slots.Release(s.c.chunk)
	} else if err := s.hand(ctx, msgs, true); err != nil {
		return false, err
	}
	return next != "0-0", nil
}

// hand passes read entries to the scoring loop, giving back the chunk's unused slots.
// A reclaim skips entries this consumer is scoring already (pending here longer than
// ClaimIdle).
func (s *session) hand(ctx context.Context, msgs []redis.XMessage, reclaimed bool) error {
	if len(msgs) == 0 {
		return nil
	}
	batch := make([]entry, 0, len(msgs))
	for _, m := range msgs {
		if reclaimed && s.c.pending.has(m.ID) {
			continue
		}
		batch = append(batch, toEntry(m, s.c.cfg.Field))
	}
	s.slots.Release(s.c.chunk - int64(len(batch)))
	if len(batch) == 0 {
		return nil
	}
	s.c.pending.add(batch)
	s.c.consumed.Add(uint64(len(batch)))
	select {
	case s.batches <- batch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
