package accesslog

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/monitor/reqlog"
)

// Entry is one request as the access log records it.
type Entry struct {
	Time              time.Time
	Protocol          string // "http" or "grpc"
	Method, Route     string // HTTP method and route pattern; gRPC "/service/Method" and its method
	Status            int    // HTTP status, or the gRPC code
	Duration          time.Duration
	BytesIn, BytesOut int64
	Model, Version    string
	RequestID         string
	TraceID           string
	Tenant            string
}

// DefaultBuffer is how many entries may wait for the writer before new ones are dropped.
const DefaultBuffer = 8192

// flushEvery bounds how long a written line may sit in the writer's buffer.
const flushEvery = time.Second

// Log is an access log writing to one io.Writer. Its methods are safe for concurrent
// use; Run must be running for lines to be written.
type Log struct {
	out     io.Writer
	entries chan Entry
	dropped atomic.Uint64
	written atomic.Uint64
}

// New returns an access log that writes to out once Run runs, with room for buffer
// entries in between (DefaultBuffer when buffer <= 0). It starts nothing.
func New(out io.Writer, buffer int) *Log {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Log{out: out, entries: make(chan Entry, buffer)}
}

// Add hands e to the writer; it never blocks: a full buffer drops e and counts it.
func (l *Log) Add(e Entry) {
	select {
	case l.entries <- e:
	default:
		l.dropped.Add(1)
	}
}

// Dropped counts the entries lost to a full buffer.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Written counts the lines written.
func (l *Log) Written() uint64 { return l.written.Load() }

// Run writes entries until ctx ends, then writes those still buffered and returns.
// Stop it after the transports have drained, so that their last requests are written.
func (l *Log) Run(ctx context.Context) error {
	bw := bufio.NewWriterSize(l.out, 64<<10)
	jl := slog.New(slog.NewJSONHandler(bw, &slog.HandlerOptions{ReplaceAttr: dropLevel}))
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	for {
		select {
		case e := <-l.entries:
			l.write(jl, e)
		case <-tick.C:
			if err := bw.Flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			for {
				select {
				case e := <-l.entries:
					l.write(jl, e)
				default:
					return bw.Flush()
				}
			}
		}
	}
}

// dropLevel leaves the level out: every access line is the same kind of record.
func dropLevel(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		return slog.Attr{}
	}
	return a
}

// write formats e with slog's JSON encoder, which escapes control characters, so a
// model name or header cannot break a line or forge another (CWE-117).
func (l *Log) write(jl *slog.Logger, e Entry) {
	r := slog.NewRecord(e.Time, slog.LevelInfo, "access", 0)
	r.AddAttrs(
		slog.String("protocol", e.Protocol),
		slog.String("method", e.Method),
		slog.String("route", e.Route),
		slog.Int("status", e.Status),
		slog.Float64("duration_s", e.Duration.Seconds()),
		slog.Int64("bytes_in", e.BytesIn),
		slog.Int64("bytes_out", e.BytesOut),
		slog.String(reqlog.KeyModel, e.Model),
		slog.String(reqlog.KeyVersion, e.Version),
		slog.String(reqlog.KeyRequestID, e.RequestID),
		slog.String(reqlog.KeyTraceID, e.TraceID),
		slog.String(reqlog.KeyTenant, e.Tenant),
	)
	if jl.Handler().Handle(context.Background(), r) == nil {
		l.written.Add(1)
	}
}
