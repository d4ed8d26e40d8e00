package quality

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Prediction is what a model answered to one request, as the inference log kept it.
type Prediction struct {
	Model, Version string
	Time           time.Time // when the request was served
	// Outputs is the scored output's row for the request: one value (a regression, or
	// a binary classifier's positive-class score) or one score per class.
	Outputs []float64
}

// Predictions finds logged predictions by request id; the integrator adapts the
// inference log to it. Lookup returns the ids it found (a missing id is not an error:
// its log entry may not be flushed yet) and must be safe for concurrent use.
type Predictions interface {
	Lookup(ctx context.Context, model string, ids []string) (map[string]Prediction, error)
}

// Task is how a model's predictions are scored.
type Task string

// The tasks; TaskAuto guesses from the output's shape (see ModelConfig).
const (
	TaskAuto       Task = ""
	Classification Task = "classification"
	Regression     Task = "regression"
)

// ModelConfig says how to score a model. With Task TaskAuto, an output of two or more
// columns is a classifier; a one-column output is a binary classifier (its value the
// positive-class score) when its labels are classes and a regressor when they are values.
type ModelConfig struct {
	Task Task `json:"task,omitempty"`
	// Classes are the class names in output-column order, for labels sent as names.
	Classes []string `json:"classes,omitempty"`
}

// Limits of a Store (see New).
const (
	// DefaultMaxLabels bounds the labels kept in memory, all models together (about
	// 350 bytes each with a two-column prediction joined: some 90 MB); past it the
	// oldest label goes (it stays in the file, and is dropped there at the next start).
	DefaultMaxLabels = 250_000
	// MaxLabelsPerCall bounds one Add.
	MaxLabelsPerCall = 100_000
	// DefaultWindow is the latest window Value and the gauge report.
	DefaultWindow = time.Hour
	// lookupChunk bounds the ids of one Predictions.Lookup.
	lookupChunk = 10_000
)

// fileName is the append-only log of feedback in the store's directory.
const fileName = "feedback.jsonl"

// Store keeps feedback durably (JSON lines appended to dir/feedback.jsonl, replayed at
// New) and in memory (at most DefaultMaxLabels, oldest out first), joins it to
// predictions and scores it. For a request id given twice, the last label wins (also
// within one call). A label whose id is not (yet) in the inference log is kept, and
// joined when a later Metrics or Refresh finds it.
type Store struct {
	dir       string
	preds     Predictions
	log       *slog.Logger
	maxLabels int

	mu      sync.Mutex // guards the fields below and appends to f
	f       *os.File
	models  map[string]map[string]entry // model → id → label
	order   []key                       // arrival order, for eviction; may hold stale keys
	live    int
	seq     uint64
	configs map[string]ModelConfig
	window  time.Duration
	latest  map[string]snapshot // model → the latest window's scores (Refresh)
}

type key struct {
	model, id string
	seq       uint64
}

// entry is one id's label and, once found, its prediction (which never changes).
// It holds no pointers but its strings and outputs: a million of them cost the
// garbage collector little.
type entry struct {
	seq    uint64
	at     int64   // arrival, Unix ns
	target float64 // kindValue: the value; kindIndex: the class index
	name   string  // kindName: the class name
	kind   uint8
	joined bool
	// The prediction, when joined.
	version string // interned per model
	served  int64  // Unix ns
	out     []float64
}

const (
	kindValue uint8 = iota
	kindIndex
	kindName
)

func entryOf(l Label) entry {
	switch {
	case l.Value != nil:
		return entry{kind: kindValue, target: *l.Value}
	case l.Class.Name != "":
		return entry{kind: kindName, name: l.Class.Name}
	}
	return entry{kind: kindIndex, target: float64(l.Class.Index)}
}

// label is e's label again, for the file.
func (e *entry) label(id string) Label {
	l := Label{ID: id}
	switch e.kind {
	case kindValue:
		v := e.target
		l.Value = &v
	case kindName:
		l.Class = &Class{Name: e.name}
	default:
		l.Class = &Class{Index: int(e.target)}
	}
	return l
}

// fileLine is one line of the feedback file.
type fileLine struct {
	At    time.Time `json:"at"`
	Model string    `json:"model"`
	Label
}

// New opens (creating it if need be) the feedback file in dir and replays it. It
// starts nothing; Run refreshes the latest window's scores.
func New(dir string, preds Predictions, log *slog.Logger) (*Store, error) {
	if preds == nil {
		return nil, errors.New("quality: no Predictions to join labels to")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("quality: feedback directory: %w", err)
	}
	s := &Store{dir: dir, preds: preds, log: log, maxLabels: DefaultMaxLabels,
		models: map[string]map[string]entry{}, configs: map[string]ModelConfig{},
		window: DefaultWindow, latest: map[string]snapshot{}}
	lines, err := s.replay()
	if err != nil {
		return nil, err
	}
	if lines > 2*s.live+1000 {
		if err := s.compact(); err != nil {
			return nil, err
		}
	}
	f, err := openAppend(filepath.Join(dir, fileName))
	if err != nil {
		return nil, err
	}
	s.f = f
	return s, nil
}

// Close closes the feedback file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// SetModel says how to score model; without it TaskAuto applies.
func (s *Store) SetModel(model string, c ModelConfig) error {
	if c.Task != TaskAuto && c.Task != Classification && c.Task != Regression {
		return fmt.Errorf("%w: model %q: task %q: want classification or regression", ErrInvalid, model, c.Task)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.configs[model] = c
	return nil
}

// SetMaxLabels bounds the labels kept in memory (default DefaultMaxLabels), dropping
// the oldest now if there are more.
func (s *Store) SetMaxLabels(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxLabels = n
	s.evict()
}

// SetWindow sets the latest window Value and the gauge report (default DefaultWindow).
func (s *Store) SetWindow(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.window = d
}

// Add stores labels for model: durably first (appended and synced), then in memory.
// A call is taken whole or refused whole (ErrInvalid naming the bad labels), so a
// client fixes and resends it; resending is harmless, since the last label wins.
func (s *Store) Add(ctx context.Context, model string, labels []Label) (accepted int, err error) {
	if err := checkLabels(model, labels, MaxLabelsPerCall); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, l := range labels {
		if err := enc.Encode(fileLine{At: now, Model: model, Label: l}); err != nil {
			return 0, fmt.Errorf("quality: encoding feedback: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return 0, errors.New("quality: the store is closed")
	}
	if _, err := s.f.Write(buf.Bytes()); err != nil {
		return 0, fmt.Errorf("quality: writing feedback: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return 0, fmt.Errorf("quality: syncing feedback: %w", err)
	}
	for _, l := range labels {
		s.put(model, now, l)
	}
	return len(labels), nil
}

// put keeps l in memory, replacing an earlier label for its id; s.mu is held.
func (s *Store) put(model string, at time.Time, l Label) {
	ids := s.models[model]
	if ids == nil {
		ids = map[string]entry{}
		s.models[model] = ids
	}
	s.seq++
	e := entryOf(l)
	e.seq, e.at = s.seq, at.UnixNano()
	if old, ok := ids[l.ID]; ok { // the prediction of an id does not change
		e.joined, e.version, e.served, e.out = old.joined, old.version, old.served, old.out
	} else {
		s.live++
	}
	ids[l.ID] = e
	s.order = append(s.order, key{model: model, id: l.ID, seq: e.seq})
	s.evict()
}

// evict drops the oldest labels past maxLabels, and compacts the order queue when
// replaced labels fill more than half of it; s.mu is held.
func (s *Store) evict() {
	for s.live > s.maxLabels && len(s.order) > 0 {
		k := s.order[0]
		s.order = s.order[1:]
		if e, ok := s.models[k.model][k.id]; ok && e.seq == k.seq {
			delete(s.models[k.model], k.id)
			s.live--
		}
	}
	if len(s.order) > 2*s.live+1024 {
		kept := make([]key, 0, s.live)
		for _, k := range s.order {
			if e, ok := s.models[k.model][k.id]; ok && e.seq == k.seq {
				kept = append(kept, k)
			}
		}
		s.order = kept
	}
}

// replay reads the feedback file into memory, returning its line count. A line that
// does not parse (a write torn by a crash) is skipped and logged.
func (s *Store) replay() (int, error) {
	f, err := os.Open(filepath.Join(s.dir, fileName))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("quality: feedback file: %w", err)
	}
	defer f.Close()
	lines, bad := 0, 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines++
		ln, err := parseLine(sc.Bytes())
		if err != nil {
			bad++
			if bad <= 3 {
				s.log.Warn("skipping a bad feedback line", "line", lines, "err", err)
			}
			continue
		}
		s.put(ln.Model, ln.At, ln.Label)
	}
	if err := sc.Err(); err != nil {
		return lines, fmt.Errorf("quality: reading %s: line %d: %w", fileName, lines+1, err)
	}
	if bad > 0 {
		s.log.Warn("feedback file had bad lines", "bad", bad, "lines", lines)
	}
	return lines, nil
}

// parseLine decodes and checks one line of the feedback file.
func parseLine(b []byte) (fileLine, error) {
	var ln fileLine
	if err := json.Unmarshal(b, &ln); err != nil {
		return ln, err
	}
	if ln.Model == "" {
		return ln, errors.New("no model")
	}
	return ln, ln.Label.check()
}

// compact rewrites the feedback file with only the labels kept in memory, oldest
// first, through a temporary file renamed over it.
func (s *Store) compact() error {
	path := filepath.Join(s.dir, fileName)
	tmp, err := os.CreateTemp(s.dir, fileName+".*")
	if err != nil {
		return fmt.Errorf("quality: compacting feedback: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	w := bufio.NewWriter(tmp)
	enc := json.NewEncoder(w)
	for _, k := range s.order {
		e, ok := s.models[k.model][k.id]
		if !ok || e.seq != k.seq {
			continue
		}
		if err := enc.Encode(fileLine{At: time.Unix(0, e.at).UTC(), Model: k.model, Label: e.label(k.id)}); err != nil {
			tmp.Close()
			return fmt.Errorf("quality: compacting feedback: %w", err)
		}
	}
	if err := errors.Join(w.Flush(), tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("quality: compacting feedback: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("quality: compacting feedback: %w", err)
	}
	return nil
}

// openAppend opens path for appending, first ending a torn last line so the next
// append starts a line of its own.
func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("quality: feedback file: %w", err)
	}
	st, err := f.Stat()
	if err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err = f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			_, err = f.Write([]byte("\n"))
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, fmt.Errorf("quality: feedback file: %w", err)
	}
	return f, nil
}
