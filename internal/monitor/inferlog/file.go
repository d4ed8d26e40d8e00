package inferlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The file sink writes one rolling file per model. Names carry the model and times, so
// Query picks files by name before opening any:
//
//	<model>~<opened>.jsonl                  being written (Parquet: .parquet.open)
//	<model>~<opened>~<first>~<last>.jsonl   rolled: first and last entry timestamps
//
// <model> is the model name with bytes outside [A-Za-z0-9._-] (and a leading '.')
// escaped as %XX; times are UTC in nameTime.
const nameTime = "20060102T150405.000000000Z"

const openSuffix = ".open"

// fileSink owns the open files; only its runner's goroutine calls write, tick and
// close. Query reads the files from disk (each batch is flushed), never this struct.
// A rolled file is finished (flushed, synced, renamed) on a goroutine of its own.
type fileSink struct {
	dir      string
	format   string
	maxBytes int64
	maxAge   time.Duration
	// retention and maxTotal bound the rolled files (0: no bound), applied by prune.
	retention time.Duration
	maxTotal  int64
	files     map[string]*openFile // by model
	now       func() time.Time
	sync      func(*os.File) error // (*os.File).Sync; a test slows it

	retiring  sync.WaitGroup // rolled files being finished
	retireMu  sync.Mutex     // guards retireErr and serializes prune
	retireErr error          // finishing failures not yet reported by write or close
}

// openFile is a file being written.
type openFile struct {
	model      string
	path       string // its name while open
	opened     time.Time
	first, end time.Time // entry timestamps seen
	n          int
	f          *os.File
	w          entryWriter
	dirty      time.Time // when the oldest entry not yet flushed was written; zero when none
	trail      pageTrail
}

// flushEvery is how long written entries may wait in a file's buffer before they reach
// the file (where Query and readers see them). Flushing after every batch cost a write
// system call per millisecond of traffic, about 1.7 µs a request at 29k requests/s
// (BenchmarkMonitoring, gRPC identity_fp32).
const flushEvery = 100 * time.Millisecond

// entryWriter writes entries in one format.
type entryWriter interface {
	write(c *capture) error
	flush() error
	size() int64 // bytes written so far, roughly for Parquet (buffered row groups)
	close() error
}

func newFileSink(cfg Config) (*fileSink, error) {
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("dir: %w", err)
	}
	return &fileSink{dir: cfg.Dir, format: cfg.Format, maxBytes: cfg.MaxFileBytes, maxAge: cfg.MaxFileAge.D(), retention: cfg.Retention.D(), maxTotal: cfg.MaxTotalBytes,
		files: map[string]*openFile{}, now: time.Now, sync: (*os.File).Sync}, nil
}

func (s *fileSink) name() string { return "file" }

// write appends the batch to each model's file, rolling a full or old one first, and
// flushes once per batch: one write syscall per file per batch.
func (s *fileSink) write(_ context.Context, batch []*capture) (int, error) {
	now := s.now()
	// By model: a file the batch rolls is replaced by its successor, and its finishing
	// goroutine, which owns it from the roll on, flushes it.
	touched := make(map[string]*openFile, 1)
	n := 0
	var errs []error
	for _, c := range batch {
		of, err := s.file(c.model, now)
		if err == nil {
			err = of.w.write(c)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		of.seen(c.start)
		touched[of.model] = of
		n++
	}
	for _, of := range touched {
		if of.dirty.IsZero() {
			of.dirty = now
		}
		if err := of.flushOlder(now); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.retired(); err != nil {
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// flushOlder flushes the file's buffer once its oldest entry has waited flushEvery.
func (of *openFile) flushOlder(now time.Time) error {
	if of.dirty.IsZero() || now.Sub(of.dirty) < flushEvery {
		return nil
	}
	of.dirty = time.Time{}
	if err := of.w.flush(); err != nil {
		return fmt.Errorf("%s: %w", of.path, err)
	}
	if size, err := of.f.Seek(0, io.SeekCurrent); err == nil {
		of.trail.advance(of.f, size)
	}
	return nil
}

func (of *openFile) seen(t time.Time) {
	if of.n == 0 || t.Before(of.first) {
		of.first = t
	}
	if of.n == 0 || t.After(of.end) {
		of.end = t
	}
	of.n++
}

// file is model's open file, rolled first when full or old.
func (s *fileSink) file(model string, now time.Time) (*openFile, error) {
	of := s.files[model]
	if of != nil && (of.w.size() >= s.maxBytes || now.Sub(of.opened) >= s.maxAge) {
		s.roll(of)
		if !now.After(of.opened) { // rolled within one batch: a file's opening time is its key
			now = of.opened.Add(time.Nanosecond)
		}
		of = nil
	}
	if of != nil {
		return of, nil
	}
	of, err := s.open(model, now)
	if err != nil {
		return nil, err
	}
	s.files[model] = of
	return of, nil
}

func (s *fileSink) open(model string, now time.Time) (*openFile, error) {
	of := &openFile{model: model, opened: now.UTC()}
	for {
		of.path = filepath.Join(s.dir, escapeModel(model)+"~"+of.opened.Format(nameTime)+"."+s.format)
		if s.format == FormatParquet {
			of.path += openSuffix
		}
		f, err := os.OpenFile(of.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if errors.Is(err, os.ErrExist) { // rolled within the same nanosecond
			of.opened = of.opened.Add(time.Nanosecond)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("opening a log file: %w", err)
		}
		of.f = f
		break
	}
	if s.format == FormatParquet {
		of.w = newParquetWriter(of.f)
	} else {
		of.w = &jsonlWriter{w: bufio.NewWriterSize(of.f, 64<<10)}
	}
	return of, nil
}

// roll takes of out of use and finishes it on a goroutine of its own (finish); close
// waits for every one.
func (s *fileSink) roll(of *openFile) {
	delete(s.files, of.model)
	s.retiring.Add(1)
	go func() {
		defer s.retiring.Done()
		if err := s.finish(of); err != nil {
			s.retireMu.Lock()
			s.retireErr = errors.Join(s.retireErr, err)
			s.retireMu.Unlock()
		}
	}()
}

// retired reports (once) what finishing rolled files failed on since the last call.
func (s *fileSink) retired() error {
	s.retireMu.Lock()
	defer s.retireMu.Unlock()
	err := s.retireErr
	s.retireErr = nil
	return err
}

// finish flushes, syncs and closes a rolled file, names it for its entries' times and
// prunes. It runs off the runner's goroutine: the sync of a 64 MiB file took tens of
// milliseconds on a virtual disk, and while it stopped the runner its queue filled and
// entries dropped (~50 a roll at 30,000 entries/s).
func (s *fileSink) finish(of *openFile) error {
	werr := of.w.close()
	serr := s.sync(of.f)
	if werr == nil && serr == nil {
		of.trail.done(of.f) // on disk: its pages may go
	}
	err := errors.Join(werr, serr, of.f.Close())
	if err != nil {
		return fmt.Errorf("closing %s: %w", of.path, err)
	}
	if of.n == 0 {
		return os.Remove(of.path)
	}
	final := strings.TrimSuffix(strings.TrimSuffix(of.path, openSuffix), "."+s.format) +
		"~" + of.first.UTC().Format(nameTime) + "~" + of.end.UTC().Format(nameTime) + "." + s.format
	if err := os.Rename(of.path, final); err != nil {
		return fmt.Errorf("rolling %s: %w", of.path, err)
	}
	s.retireMu.Lock()
	defer s.retireMu.Unlock()
	return s.prune()
}

// prune removes the rolled files past the retention, then the oldest rolled files
// while they hold more than maxTotal bytes. Open files are never removed; a Query
// reading a removed file skips it.
func (s *fileSink) prune() error {
	if s.retention <= 0 && s.maxTotal <= 0 {
		return nil
	}
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("pruning %s: %w", s.dir, err)
	}
	type rolled struct {
		name string
		last time.Time
		size int64
	}
	var files []rolled
	var total int64
	for _, de := range des {
		lf, ok := parseName(de.Name())
		if !ok || lf.open {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		files = append(files, rolled{de.Name(), lf.last, info.Size()})
		total += info.Size()
	}
	sort.Slice(files, func(i, j int) bool { return files[i].last.Before(files[j].last) })
	cutoff := s.now().Add(-s.retention)
	var errs []error
	for _, f := range files {
		old := s.retention > 0 && f.last.Before(cutoff)
		if !old && (s.maxTotal <= 0 || total <= s.maxTotal) {
			break
		}
		if err := os.Remove(filepath.Join(s.dir, f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		total -= f.size
	}
	return errors.Join(errs...)
}

// tick flushes what waited long enough and rolls files past their age while no
// entries arrive.
func (s *fileSink) tick(now time.Time) {
	for _, of := range s.files {
		if now.Sub(of.opened) >= s.maxAge {
			s.roll(of) // a failure shows on the next write
			continue
		}
		_ = of.flushOlder(now) // likewise
	}
}

func (s *fileSink) close(context.Context) error {
	for _, of := range s.files {
		s.roll(of)
	}
	s.retiring.Wait()
	return s.retired()
}

// jsonlWriter writes the dispatcher's JSON lines as they are.
type jsonlWriter struct {
	w *bufio.Writer
	n int64
}

func (j *jsonlWriter) write(c *capture) error {
	n, err := j.w.Write(c.line)
	j.n += int64(n)
	return err
}

func (j *jsonlWriter) flush() error { return j.w.Flush() }
func (j *jsonlWriter) size() int64  { return j.n }
func (j *jsonlWriter) close() error { return j.w.Flush() }

// escapeModel makes a model name safe as the start of a file name: no separators, no
// "..", no '~' (the name's field separator).
func escapeModel(m string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || (c == '.' && i > 0) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}
