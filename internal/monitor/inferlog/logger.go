package inferlog

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/platform/background"
)

// Logger is the inference log: a core.Tap feeding the configured sinks. Build it with
// New, add it to core's taps, and Close it after serving has stopped.
type Logger struct {
	cfg    Config
	log    *slog.Logger
	models map[string]struct{} // nil: every model
	cp     capturer
	prefix uint64 // random: request ids stay unique across restarts
	// sampleBelow keeps a request whose sampling hash is below it (math.MaxUint64: all).
	sampleBelow uint64
	seq         atomic.Uint64
	pool        sync.Pool

	// mu guards closed against Finished's send: Finished holds it shared, Close
	// exclusively, so the queue is never sent on after it is closed.
	mu      sync.RWMutex
	closed  bool
	queue   chan *capture
	dropped atomic.Uint64 // the capture queue's drops

	sinks      []*runner
	files      *fileSink // nil without Dir; Query reads it
	dispatched chan struct{}
	closeOnce  sync.Once
	closeErr   error
}

var _ core.Tap = (*Logger)(nil)

// SinkCapture is the dropped_total label of entries dropped before any sink: the
// capture queue was full, or the logger closed.
const SinkCapture = "capture"

// New validates cfg and builds the logger with its sinks; it starts their goroutines
// (a logger is useless without them), and Close stops them. log may be nil.
func New(cfg Config, log *slog.Logger) (*Logger, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("inference log: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sinks, files, err := openSinks(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("inference log: %w", err)
	}
	return newLogger(cfg, log, files, sinks), nil
}

// openSinks builds the configured sinks; on an error it closes the ones it opened.
func openSinks(cfg Config, log *slog.Logger) ([]sink, *fileSink, error) {
	var sinks []sink
	var files *fileSink
	fail := func(err error) ([]sink, *fileSink, error) {
		for _, s := range sinks {
			_ = s.close(context.Background())
		}
		return nil, nil, err
	}
	if cfg.Dir != "" {
		f, err := newFileSink(cfg)
		if err != nil {
			return fail(err)
		}
		sinks, files = append(sinks, f), f
	}
	if cfg.Kafka != nil {
		k, err := newKafkaSink(*cfg.Kafka, log)
		if err != nil {
			return fail(err)
		}
		sinks = append(sinks, k)
	}
	if cfg.HTTP != nil {
		sinks = append(sinks, newHTTPSink(*cfg.HTTP))
	}
	return sinks, files, nil
}

// newLogger starts the dispatcher and one runner per sink.
func newLogger(cfg Config, log *slog.Logger, files *fileSink, sinks []sink) *Logger {
	l := &Logger{cfg: cfg, log: log, files: files, queue: make(chan *capture, cfg.Buffer), dispatched: make(chan struct{})}
	l.cp = capturer{maxBytes: cfg.MaxPayloadBytes, redact: set(cfg.Redact), raw: cfg.TensorData == TensorDataBinary}
	if len(cfg.Models) > 0 {
		l.models = set(cfg.Models)
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	l.prefix = binary.BigEndian.Uint64(seed[:])
	l.sampleBelow = math.MaxUint64
	if cfg.Sample < 1 {
		l.sampleBelow = uint64(cfg.Sample * (1 << 64))
	}
	l.pool.New = func() any { return &capture{released: l.put} }
	for _, s := range sinks {
		l.sinks = append(l.sinks, startRunner(s, cfg.Buffer, log))
	}
	go l.dispatch()
	return l
}

func set(names []string) map[string]struct{} {
	m := make(map[string]struct{}, len(names))
	for _, n := range names {
		m[n] = struct{}{}
	}
	return m
}

// Finished captures r when its model is logged and it is sampled. It copies, never
// encodes, and never waits: a full queue drops the entry and counts it.
func (l *Logger) Finished(r *core.Record) {
	if l.models != nil {
		if _, ok := l.models[r.Model]; !ok {
			return
		}
	}
	seq := l.seq.Add(1)
	if !l.sampled(r, seq) {
		return
	}
	c := l.pool.Get().(*capture)
	c.seq, c.sample = seq, l.cfg.Sample
	l.cp.fill(c, r)
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		l.dropped.Add(1)
		l.put(c)
		return
	}
	select {
	case l.queue <- c:
	default:
		l.dropped.Add(1)
		l.put(c)
	}
	l.mu.RUnlock()
}

// sampled decides by the client's request id, else the trace id, so a request and its
// shadow copy (and a client's retries) are logged together; else by sequence number.
func (l *Logger) sampled(r *core.Record, seq uint64) bool {
	if l.sampleBelow == math.MaxUint64 {
		return true
	}
	var h uint64
	switch {
	case r.ID != "":
		h = fnv64a(r.ID)
	case r.TraceParent != "":
		h = fnv64a(traceID(r.TraceParent))
	default:
		h = mix64(seq)
	}
	return h < l.sampleBelow
}

// fnv64a is FNV-1a: stable across processes, unlike maphash.
func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h) // FNV's high bits are poor for short keys
}

// mix64 is splitmix64's finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (l *Logger) put(c *capture) { l.pool.Put(c) }

// dispatchEvery is how often the dispatcher drains the capture queue. It polls rather
// than waiting on the channel so that Finished's send never has to wake a parked
// goroutine (a futex wake-up costs more than the whole capture); an entry waits at
// most this long, and Buffer entries of headroom cover Buffer/dispatchEvery requests/s
// (1024 per 5 ms by default: 200,000 a second). Each drain also wakes the sinks'
// runners once, so a longer period means fewer, larger batches: at 1 ms a saturated
// 2-core server woke them a thousand times a second for ~40 entries each.
const dispatchEvery = 5 * time.Millisecond

// yieldEvery is how many captures the dispatcher encodes between giving way to serving
// (background.Yield): a tick's worth at once held a core for a quarter of a millisecond.
const yieldEvery = 16

// idleTicks is how many empty polls in a row (100 ms) send the dispatcher to sleep on
// the queue: an idle server should not wake hundreds of times a second, and the first
// request after a lull pays the one wake-up.
const idleTicks = 20

// dispatch encodes each capture once and offers it to every sink; it exits when Close
// closes the queue, after closing the sinks' queues.
func (l *Logger) dispatch() {
	defer close(l.dispatched)
	defer func() {
		for _, s := range l.sinks {
			close(s.queue)
		}
	}()
	t := time.NewTicker(dispatchEvery)
	defer t.Stop()
	for idle := 0; ; {
		n, open := l.drain()
		if !open {
			return
		}
		if idle = idle + 1; n > 0 {
			idle = 0
		}
		if idle < idleTicks {
			<-t.C
			background.Yield()
			continue
		}
		t.Stop()
		c, ok := <-l.queue
		if !ok {
			return
		}
		l.fan(c)
		idle = 0
		t.Reset(dispatchEvery)
	}
}

// drain fans out every queued capture and says how many; open is false once the
// queue is closed.
func (l *Logger) drain() (n int, open bool) {
	for {
		select {
		case c, ok := <-l.queue:
			if !ok {
				return n, false
			}
			l.fan(c)
			if n++; n%yieldEvery == 0 {
				background.Yield()
			}
		default:
			return n, true
		}
	}
}

func (l *Logger) fan(c *capture) {
	c.setRequestID(l.prefix)
	c.line = appendEntry(c.line[:0], c)
	c.refs.Store(int32(len(l.sinks)) + 1)
	for _, s := range l.sinks {
		s.offer(c)
	}
	c.release()
}

// Close stops taking entries and flushes every queued one to every sink, then closes
// the sinks. When ctx ends first, the sinks' in-flight writes are cancelled and what is
// still queued is lost. Close may be called more than once.
func (l *Logger) Close(ctx context.Context) error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.queue)
		l.mu.Unlock()
		var errs []error
		for _, s := range l.sinks {
			if err := s.wait(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}
