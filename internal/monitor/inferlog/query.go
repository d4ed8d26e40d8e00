package inferlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// Entry is one logged request as the sinks write it (the JSON line's fields).
type Entry struct {
	RequestID       string    `json:"request_id"`
	ClientRequestID string    `json:"client_request_id,omitempty"`
	TraceID         string    `json:"trace_id,omitempty"`
	Timestamp       time.Time `json:"timestamp"` // when the request started
	Model           string    `json:"model"`
	Version         string    `json:"version"`
	// Route is how the version was chosen: "" when the request named it, "shadow" for
	// a shadow copy, else the router's route ("weight", "sticky", "match", "default").
	Route            string   `json:"route"`
	Status           string   `json:"status"` // "ok" or "error"
	Error            string   `json:"error,omitempty"`
	LatencySeconds   float64  `json:"latency_seconds"`
	SamplingFraction float64  `json:"sampling_fraction"`
	Inputs           []Tensor `json:"inputs"`
	Outputs          []Tensor `json:"outputs"`
	Truncated        bool     `json:"truncated,omitempty"`
}

// Tensor is one logged input or output. Data is the V2 JSON flat array (numbers,
// booleans, or strings for BYTES; "NaN", "Inf", "-Inf" for those floats), or the
// string "[redacted]".
type Tensor struct {
	Name      string          `json:"name"`
	Datatype  string          `json:"datatype"`
	Shape     []int64         `json:"shape"`
	Data      json.RawMessage `json:"data"`
	Truncated bool            `json:"truncated,omitempty"`
	// DataB64 is how the files (and Kafka) carry numeric data with tensor_data
	// "binary": base64 of its little-endian bytes. Query turns it into Data.
	DataB64 []byte `json:"data_b64,omitempty"`
}

// expand turns the entry's binary tensor data into V2 JSON arrays.
func (e *Entry) expand() {
	for _, ts := range [2][]Tensor{e.Inputs, e.Outputs} {
		for i := range ts {
			t := &ts[i]
			if t.DataB64 == nil {
				continue
			}
			dt, err := tensor.ParseDType(t.Datatype)
			if err != nil || dt == tensor.Bytes || len(t.DataB64)%dt.Size() != 0 {
				t.Data = json.RawMessage("[]")
			} else {
				t.Data = appendData(nil, dt, t.DataB64)
			}
			t.DataB64 = nil
		}
	}
}

// Query selects entries; zero fields select everything.
type Query struct {
	Model, Version string
	Since, Until   time.Time // entry timestamps in [Since, Until]
	// IDs match an entry's request id or its client request id; all are looked up in
	// one pass over the files.
	IDs   []string
	Limit int // at most this many entries, the oldest; 0: no limit
}

// ErrNoFiles is Logger.Query's answer when the log has no file sink.
var ErrNoFiles = errors.New("the inference log has no file sink (set dir) to read from")

// Query reads the entries q selects from the file sink's directory. Entries still
// queued, or written less than flushEvery ago, are not seen yet; Parquet entries are seen
// once their file has rolled.
func (l *Logger) Query(ctx context.Context, q Query) ([]Entry, error) {
	if l.files == nil {
		return nil, ErrNoFiles
	}
	return (&Reader{dir: l.files.dir}).Query(ctx, q)
}

// Reader reads a log directory the file sink wrote, with or without a server.
type Reader struct{ dir string }

// Open returns a reader of dir; it fails when dir is not a readable directory.
func Open(dir string) (*Reader, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("inference log: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("inference log: %s is not a directory", dir)
	}
	return &Reader{dir: dir}, nil
}

// Query returns the entries q selects, oldest first (by request start): with a Limit,
// the oldest Limit.
func (rd *Reader) Query(ctx context.Context, q Query) ([]Entry, error) {
	out, _, err := rd.query(ctx, q)
	return out, err
}

// query is Query, with the matcher's count of entries read.
func (rd *Reader) query(ctx context.Context, q Query) ([]Entry, *matcher, error) {
	files, err := rd.files(q)
	if err != nil {
		return nil, nil, err
	}
	m := newMatcher(q)
	var out []Entry
	for _, lf := range files {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if m.full(out) && !lf.open && lf.first.After(out[len(out)-1].Timestamp) {
			continue // all newer than the oldest Limit found so far
		}
		if out, err = rd.scan(lf, m, out); err != nil {
			return nil, nil, err
		}
		if q.Limit > 0 && len(out) >= q.Limit {
			out = oldest(out, q.Limit)
		}
	}
	return oldest(out, q.Limit), m, nil
}

// oldest sorts es by timestamp (stable: write order within one) and keeps the first
// limit (0: all).
func oldest(es []Entry, limit int) []Entry {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Timestamp.Before(es[j].Timestamp) })
	if limit > 0 && len(es) > limit {
		clear(es[limit:])
		es = es[:limit]
	}
	return es
}

// logFile is a file of the directory, as its name describes it.
type logFile struct {
	name        string
	model       string
	opened      time.Time
	first, last time.Time // zero while open
	format      string
	open        bool
}

// files lists the files that may hold entries q selects, oldest first.
func (rd *Reader) files(q Query) ([]logFile, error) {
	des, err := os.ReadDir(rd.dir)
	if err != nil {
		return nil, fmt.Errorf("inference log: %w", err)
	}
	// A file is known by its model and opening time; a listing taken during a roll may
	// hold it under both names, and the rolled one is the whole file.
	type key struct {
		model  string
		opened time.Time
	}
	byKey := map[key]logFile{}
	for _, de := range des {
		lf, ok := parseName(de.Name())
		if !ok || (q.Model != "" && lf.model != q.Model) || (lf.open && lf.format == FormatParquet) {
			continue
		}
		if !lf.open && ((!q.Since.IsZero() && lf.last.Before(q.Since)) || (!q.Until.IsZero() && lf.first.After(q.Until))) {
			continue
		}
		k := key{lf.model, lf.opened}
		if prev, seen := byKey[k]; !seen || prev.open {
			byKey[k] = lf
		}
	}
	out := make([]logFile, 0, len(byKey))
	for _, lf := range byKey {
		out = append(out, lf)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].opened.Equal(out[j].opened) {
			return out[i].opened.Before(out[j].opened)
		}
		return out[i].name < out[j].name
	})
	return out, nil
}

// parseName reads a file name the sink wrote; ok is false for anything else.
func parseName(name string) (lf logFile, ok bool) {
	lf.name = name
	base, open := strings.CutSuffix(name, openSuffix)
	lf.open = open
	ext := filepath.Ext(base)
	lf.format = strings.TrimPrefix(ext, ".")
	if lf.format != FormatJSONL && lf.format != FormatParquet {
		return lf, false
	}
	parts := strings.Split(strings.TrimSuffix(base, ext), "~")
	if len(parts) != 2 && len(parts) != 4 {
		return lf, false
	}
	m, err := url.PathUnescape(parts[0])
	if err != nil {
		return lf, false
	}
	lf.model = m
	times := make([]time.Time, len(parts)-1)
	for i, p := range parts[1:] {
		if times[i], err = time.Parse(nameTime, p); err != nil {
			return lf, false
		}
	}
	lf.opened = times[0]
	if len(times) == 3 {
		lf.first, lf.last = times[1], times[2]
	} else {
		lf.open = true // a writer's file, or one a crash left behind: no time range
	}
	return lf, true
}

// scan appends lf's selected entries to out. A file renamed by a roll since the
// listing is found again under its final name.
func (rd *Reader) scan(lf logFile, m *matcher, out []Entry) ([]Entry, error) {
	f, err := os.Open(filepath.Join(rd.dir, lf.name))
	if errors.Is(err, fs.ErrNotExist) && lf.open {
		f, err = rd.reopen(lf)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil // removed (an empty file at its roll)
	}
	if err != nil {
		return nil, fmt.Errorf("inference log: %w", err)
	}
	defer f.Close()
	if lf.format == FormatParquet {
		return scanParquet(f, lf.name, m, out)
	}
	return scanJSONL(f, lf.name, m, out)
}

func (rd *Reader) reopen(lf logFile) (*os.File, error) {
	base := strings.TrimSuffix(strings.TrimSuffix(lf.name, openSuffix), "."+lf.format)
	matches, err := filepath.Glob(filepath.Join(rd.dir, globEscape(base)+"~*."+lf.format))
	if err != nil || len(matches) == 0 {
		return nil, fs.ErrNotExist
	}
	return os.Open(matches[0])
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

// scanJSONL decodes each complete line; a last line without its newline is one the
// sink is still writing, and is left for the next query.
func scanJSONL(r io.Reader, name string, m *matcher, out []Entry) ([]Entry, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			var rest []byte
			rest, err = br.ReadBytes('\n')
			b = append(append([]byte(nil), b...), rest...)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("inference log: %s: %w", name, err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		m.read++
		if h, ok := parseHeader(b); ok && !m.matchHeader(&h) {
			continue
		}
		var e Entry
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("inference log: %s line %d: %w", name, line, err)
		}
		if m.match(&e) {
			e.expand()
			out = append(out, e)
		}
	}
}

// matcher is a Query prepared for many entries: the ids as a set.
type matcher struct {
	q    Query
	ids  map[string]struct{}
	read int // entries read, matching or not
}

func newMatcher(q Query) *matcher {
	m := &matcher{q: q}
	if len(q.IDs) > 0 {
		m.ids = set(q.IDs)
	}
	return m
}

func (m *matcher) match(e *Entry) bool {
	q := &m.q
	if (q.Model != "" && e.Model != q.Model) || (q.Version != "" && e.Version != q.Version) {
		return false
	}
	if (!q.Since.IsZero() && e.Timestamp.Before(q.Since)) || (!q.Until.IsZero() && e.Timestamp.After(q.Until)) {
		return false
	}
	if m.ids != nil {
		_, a := m.ids[e.RequestID]
		_, b := m.ids[e.ClientRequestID]
		return a || (b && e.ClientRequestID != "")
	}
	return true
}

func (m *matcher) full(out []Entry) bool { return m.q.Limit > 0 && len(out) >= m.q.Limit }
