package inferlog

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/parquet-go/parquet-go"
)

// parquetRow is an entry as a Parquet row: the scalar fields as columns (so a query
// engine filters on them without decoding payloads), inputs and outputs as the same
// JSON arrays the JSON lines hold.
type parquetRow struct {
	RequestID        string  `parquet:"request_id"`
	ClientRequestID  string  `parquet:"client_request_id"`
	TraceID          string  `parquet:"trace_id"`
	TimestampNanos   int64   `parquet:"timestamp,timestamp(nanosecond)"`
	Model            string  `parquet:"model,dict"`
	Version          string  `parquet:"version,dict"`
	Route            string  `parquet:"route,dict"`
	Status           string  `parquet:"status,dict"`
	Error            string  `parquet:"error"`
	LatencySeconds   float64 `parquet:"latency_seconds"`
	SamplingFraction float64 `parquet:"sampling_fraction"`
	Inputs           string  `parquet:"inputs"`
	Outputs          string  `parquet:"outputs"`
	Truncated        bool    `parquet:"truncated"`
}

// parquetWriter buffers rows into row groups; its size counts what reached the file.
type parquetWriter struct {
	w   *parquet.GenericWriter[parquetRow]
	cw  *countingWriter
	row [1]parquetRow
	buf []byte
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func newParquetWriter(f *os.File) *parquetWriter {
	cw := &countingWriter{w: f}
	return &parquetWriter{cw: cw, w: parquet.NewGenericWriter[parquetRow](cw, parquet.Compression(&parquet.Snappy))}
}

func (p *parquetWriter) write(c *capture) error {
	r := &p.row[0]
	p.buf = appendTensors(p.buf[:0], c, c.inputs, false)
	in := string(p.buf)
	p.buf = appendTensors(p.buf[:0], c, c.outputs, false)
	*r = parquetRow{RequestID: string(c.reqID[:]), ClientRequestID: c.clientID, TraceID: c.traceID,
		TimestampNanos: c.start.UnixNano(), Model: c.model, Version: c.version, Route: c.route,
		Status: statusOK, Error: c.errMsg, LatencySeconds: c.latency.Seconds(), SamplingFraction: c.sample,
		Inputs: in, Outputs: string(p.buf), Truncated: c.trunc}
	if c.failed {
		r.Status = statusError
	}
	_, err := p.w.Write(p.row[:])
	return err
}

// flush is a no-op: a row group is cut by the writer's own buffer limits, not per batch
// (tiny row groups would make the file slow to read).
func (p *parquetWriter) flush() error { return nil }
func (p *parquetWriter) size() int64  { return p.cw.n + int64(p.w.Size()) }
func (p *parquetWriter) close() error { return p.w.Close() }

// scanParquet reads a rolled Parquet file's rows as entries.
func scanParquet(f *os.File, name string, m *matcher, out []Entry) ([]Entry, error) {
	rd := parquet.NewGenericReader[parquetRow](f)
	defer rd.Close()
	rows := make([]parquetRow, 256)
	for {
		n, err := rd.Read(rows)
		m.read += n
		for i := range rows[:n] {
			e, derr := rows[i].entry()
			if derr != nil {
				return nil, fmt.Errorf("inference log: %s: %w", name, derr)
			}
			if m.match(&e) {
				out = append(out, e)
			}
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("inference log: %s: %w", name, err)
		}
	}
}

func (r *parquetRow) entry() (Entry, error) {
	e := Entry{RequestID: r.RequestID, ClientRequestID: r.ClientRequestID, TraceID: r.TraceID,
		Timestamp: time.Unix(0, r.TimestampNanos).UTC(), Model: r.Model, Version: r.Version, Route: r.Route,
		Status: r.Status, Error: r.Error, LatencySeconds: r.LatencySeconds, SamplingFraction: r.SamplingFraction,
		Truncated: r.Truncated}
	if err := json.Unmarshal([]byte(r.Inputs), &e.Inputs); err != nil {
		return e, fmt.Errorf("request %s inputs: %w", r.RequestID, err)
	}
	if err := json.Unmarshal([]byte(r.Outputs), &e.Outputs); err != nil {
		return e, fmt.Errorf("request %s outputs: %w", r.RequestID, err)
	}
	return e, nil
}
