package redisstream

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryml/ferry/internal/stream"
)

// entry is one read stream entry.
type entry struct {
	id   string
	key  []byte // the entry's "key" field, copied to its output; nil when absent
	body []byte
	gone bool  // deleted from the stream while pending: acknowledged, nothing to answer
	err  error // the entry has no body field: dead-lettered
}

// keyField is the input field copied to the output entry, for consumers that route or
// join on it.
const keyField = "key"

func toEntry(m redis.XMessage, field string) entry {
	e := entry{id: m.ID}
	if m.Values == nil {
		e.gone = true
		return e
	}
	if k, ok := m.Values[keyField].(string); ok {
		e.key = []byte(k)
	}
	b, ok := m.Values[field].(string)
	if !ok {
		e.err = fmt.Errorf("entry has no %q field", field)
		return e
	}
	e.body = []byte(b)
	return e
}

// writeTimeout bounds writing and acknowledging a scored batch once ctx has ended, so a
// shutdown keeps the work done rather than scoring it again.
const writeTimeout = 5 * time.Second

// score scores the batches in the order read and hands each to the writer up to its
// first entry the model could not take; that entry and everything after it stay
// pending and the session ends, so the next one reads them again in order.
func (s *session) score(ctx context.Context) error {
	for batch := range s.batches {
		results := s.c.score(ctx, batch)
		n := len(batch)
		for i, r := range results {
			if r.Retry {
				n = i
				break
			}
		}
		if n > 0 {
			select {
			case s.scored <- scored{batch[:n], results[:n]}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if n < len(batch) {
			if ctx.Err() != nil {
				return ctx.Err() // a shutdown, not the model: nothing to count
			}
			s.c.retried.Add(uint64(len(batch) - n))
			return fmt.Errorf("%w: %v", errRetry, results[n].Err)
		}
	}
	return nil
}

// write writes and acknowledges the scored batches in order, until one fails.
func (s *session) write(ctx context.Context) error {
	for sc := range s.scored {
		if err := s.finish(ctx, sc.batch, sc.results); err != nil {
			return err
		}
	}
	return nil
}

// score runs the entries that have a body through the processor; the others' results
// are their own error (dead letter) or nothing (gone: acknowledged only).
func (c *Consumer) score(ctx context.Context, batch []entry) []stream.Result {
	results := make([]stream.Result, len(batch))
	msgs := make([]stream.Message, 0, len(batch))
	at := make([]int, 0, len(batch))
	for i, e := range batch {
		switch {
		case e.gone:
		case e.err != nil:
			results[i].Err = e.err
		default:
			msgs = append(msgs, stream.Message{Key: e.key, Value: e.body})
			at = append(at, i)
		}
	}
	if len(msgs) > 0 {
		for j, r := range c.p.Process(ctx, msgs) {
			results[at[j]] = r
		}
	}
	return results
}

// finish writes the batch's outputs and dead letters, then acknowledges the entries
// whose answers were written: the XACK goes only after every XADD before it has
// succeeded (a server out of memory refuses XADD but not XACK, so one pipeline of both
// could acknowledge an entry whose answer was lost).
func (s *session) finish(ctx context.Context, batch []entry, results []stream.Result) error {
	defer func() { s.c.pending.remove(batch); s.slots.Release(int64(len(batch))) }()
	if len(batch) == 0 {
		return nil
	}
	if err := s.c.test("scored"); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	written, err := s.add(wctx, batch, results)
	if err == nil {
		if herr := s.c.test("written"); herr != nil {
			return herr
		}
	}
	if written == 0 {
		return err
	}
	ids := make([]string, written)
	for i, e := range batch[:written] {
		ids[i] = e.id
	}
	if aerr := s.rdb.XAck(wctx, s.c.cfg.Stream, s.c.cfg.Group, ids...).Err(); aerr != nil {
		return fmt.Errorf("acknowledging %d entries: %w", written, aerr)
	}
	s.acked += written
	return err
}

// add adds each answer to the output or dead-letter stream in one pipeline and
// returns how many leading entries have their answer written.
func (s *session) add(ctx context.Context, batch []entry, results []stream.Result) (int, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(batch))
	for i, e := range batch {
		switch r := results[i]; {
		case e.gone:
		case r.Err != nil:
			cmds[i] = pipe.XAdd(ctx, s.c.deadLetter(e, r.Err))
		default:
			cmds[i] = pipe.XAdd(ctx, s.c.output(e, r.Value))
		}
	}
	if pipe.Len() > 0 {
		_, _ = pipe.Exec(ctx) // each command's error is read below
	}
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		if err := cmd.Err(); err != nil {
			return i, fmt.Errorf("writing the answer to entry %s: %w", batch[i].id, err)
		}
		if results[i].Err != nil {
			s.c.failed.Add(1)
			s.c.log.Debug("entry dead-lettered", "id", batch[i].id, "err", results[i].Err)
		} else {
			s.c.produced.Add(1)
		}
	}
	return len(batch), nil
}

func (c *Consumer) output(e entry, value []byte) *redis.XAddArgs {
	values := []any{"body", value}
	if e.key != nil {
		values = append(values, keyField, e.key)
	}
	return &redis.XAddArgs{Stream: c.cfg.OutputStream, MaxLen: c.cfg.MaxLen, Approx: true, Values: values}
}

// deadLetter is the entry's body with why it failed and where it came from.
func (c *Consumer) deadLetter(e entry, err error) *redis.XAddArgs {
	values := []any{"body", e.body, "error", err.Error(), "source", e.id}
	if e.key != nil {
		values = append(values, keyField, e.key)
	}
	return &redis.XAddArgs{Stream: c.cfg.DeadLetterStream, MaxLen: c.cfg.MaxLen, Approx: true, Values: values}
}

func (c *Consumer) test(stage string) error {
	if c.hook == nil {
		return nil
	}
	return c.hook(stage)
}
