package native

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/internal/llm/engine"
	"github.com/ferryml/ferry/internal/platform/filestate"
)

// Server is the native models as one llm.Backend. Each model serves its default
// version (the one it was opened with: Discover's newest folder, later the newest
// Rescan found) and whatever versions Pin adds, each on its own engine. Its methods are
// safe for concurrent use.
type Server struct {
	base engine.Config // what Pin opens further versions with
	log  *slog.Logger

	// changing serializes Pin and Rescan: each decides the versions to keep from the
	// default and the pins, then opens and swaps without holding mu.
	changing sync.Mutex

	mu      sync.Mutex // guards everything below; never held while an engine runs or opens
	models  map[string]*family
	names   []string
	running bool       // Run is running: new engines go to pending, and wake tells it
	pending []*version // engines opened while Run runs, not yet started
	wake    chan struct{}

	retiring sync.WaitGroup // versions closing after their last request; Close waits
}

// family is one model's opened versions.
type family struct {
	spec     Spec // the default version's
	versions map[int64]*version
	pinned   []int64 // what the last Pin kept besides the default; guarded by changing
	// failed holds the newer folders Rescan could not open, by their fingerprint:
	// tried again only once a file in them changes (a copy still being written fails
	// once, then opens). Guarded by changing.
	failed map[int64]string
}

// version is one opened version of a model: its engine, the requests using it, and
// its step loop. A version unpinned while requests use it is retired: it takes no new
// request and closes when the last one ends.
type version struct {
	m       *Model
	users   int  // requests in flight; guarded by Server.mu
	retired bool // guarded by Server.mu
	// stop ends the step loop Run started (nil before); stopped is closed once it has
	// returned (or at once when Run never started it).
	stop    context.CancelFunc
	stopped chan struct{}
}

// NewServer serves models, each as its default version, and opens the versions Pin
// asks for with base (the ONNX Runtime, metrics and logger every engine shares).
func NewServer(base engine.Config, models ...*Model) *Server {
	log := base.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{base: base, log: log, models: map[string]*family{}, wake: make(chan struct{}, 1)}
	for _, m := range models {
		s.models[m.spec.Name] = &family{spec: m.spec, versions: map[int64]*version{m.spec.Version: newVersion(m)}, failed: map[int64]string{}}
		s.names = append(s.names, m.spec.Name)
	}
	slices.Sort(s.names)
	return s
}

func newVersion(m *Model) *version { return &version{m: m, stopped: make(chan struct{})} }

// Len is how many models the server holds.
func (s *Server) Len() int { return len(s.names) }

// Has reports whether model is one of the server's.
func (s *Server) Has(model string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.models[model] != nil
}

// DefaultVersion is the version a request naming none gets when no routing picks one.
func (s *Server) DefaultVersion(model string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.models[model]
	if f == nil {
		return "", false
	}
	return strconv.FormatInt(f.spec.Version, 10), true
}

// Run runs every engine's step loop, including those Pin opens while it runs, until
// ctx ends; it returns once they have all stopped.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	start := func(v *version) {
		vctx, cancel := context.WithCancel(ctx)
		v.stop = cancel
		wg.Go(func() {
			defer close(v.stopped)
			if err := v.m.eng.Run(vctx); err != nil {
				s.log.Error("llm engine stopped", "model", v.m.spec.Name, "version", v.m.spec.Version, "err", err)
			}
		})
	}
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("native: Run called twice")
	}
	s.running = true
	for _, f := range s.models {
		for _, v := range f.versions {
			start(v)
		}
	}
	s.mu.Unlock()
	for {
		select {
		case <-s.wake:
			s.mu.Lock()
			for _, v := range s.pending {
				if !v.retired || v.users > 0 { // else retire closes it without a loop
					start(v)
				}
			}
			s.pending = nil
			s.mu.Unlock()
		case <-ctx.Done():
			s.mu.Lock()
			s.running, s.pending = false, nil
			s.mu.Unlock()
			wg.Wait()
			return nil
		}
	}
}

// Close closes every engine. Call it after Run has returned.
func (s *Server) Close() error {
	s.retiring.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, f := range s.models {
		for _, v := range f.versions {
			errs = append(errs, v.m.Close())
		}
	}
	return errors.Join(errs...)
}

// Models lists the native models (their default versions).
func (s *Server) Models(context.Context) ([]llm.ModelInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]llm.ModelInfo, 0, len(s.names))
	for _, n := range s.names {
		f := s.models[n]
		out = append(out, f.versions[f.spec.Version].m.Info())
	}
	return out, nil
}

// Generate answers a chat or completion request on the version it names.
func (s *Server) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta) error) (llm.Usage, error) {
	v, err := s.acquire(req.Model, req.Version)
	if err != nil {
		return llm.Usage{}, err
	}
	defer s.release(v)
	return v.m.generate(ctx, req, emit)
}

// Embed answers an embeddings request on the version it names.
func (s *Server) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	v, err := s.acquire(req.Model, req.Version)
	if err != nil {
		return nil, err
	}
	defer s.release(v)
	return v.m.embed(ctx, req)
}

// acquire finds the version a request names ("": the default) and counts the request
// as its user until release.
func (s *Server) acquire(model, ver string) (*version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.models[model]
	if f == nil {
		return nil, llm.ModelNotFound(model)
	}
	n := f.spec.Version
	if ver != "" {
		var err error
		if n, err = strconv.ParseInt(ver, 10, 64); err != nil {
			return nil, llm.VersionNotFound(model, strconv.Quote(ver))
		}
	}
	v := f.versions[n]
	if v == nil || v.retired {
		return nil, llm.VersionNotFound(model, ver)
	}
	v.users++
	return v, nil
}

// release ends a request's use of v; the last user of a retired version closes it.
func (s *Server) release(v *version) {
	s.mu.Lock()
	v.users--
	last := v.retired && v.users == 0
	s.mu.Unlock()
	if last {
		s.retiring.Go(func() { s.retire(v) }) // not on the request's path: its loop may take a step to stop
	}
}

// Pin serves exactly the versions given of model, besides its default: it opens
// those not open yet and retires the others, each closing once its requests have
// ended. Nothing changes when a version fails to open.
func (s *Server) Pin(ctx context.Context, model string, versions []int64) error {
	s.changing.Lock()
	defer s.changing.Unlock()
	s.mu.Lock()
	f := s.models[model]
	if f == nil {
		s.mu.Unlock()
		return llm.ModelNotFound(model)
	}
	keep := map[int64]bool{f.spec.Version: true}
	for _, n := range versions {
		keep[n] = true
	}
	var open []int64
	for n := range keep {
		if f.versions[n] == nil {
			open = append(open, n)
		}
	}
	spec := f.spec
	s.mu.Unlock()
	opened, err := s.open(ctx, spec, open)
	if err != nil {
		return err
	}
	s.swap(f, keep, opened, nil)
	f.pinned = slices.Clone(versions)
	return nil
}

// Rescan moves each model's default to its newest version folder when a newer one has
// appeared, as the repository's poll mode does for V2 models: the new version opens
// beside the old one and takes the requests naming no version from then on; the old
// default is retired once its requests end, unless Pin keeps it. A newer folder that
// does not open is logged and the default stays; it is tried again once a file in it
// changes. A default whose folder is gone keeps serving what it opened.
func (s *Server) Rescan(ctx context.Context) {
	s.changing.Lock()
	defer s.changing.Unlock()
	for _, name := range s.names {
		if ctx.Err() != nil {
			return
		}
		if err := s.rescan(ctx, name, false); err != nil {
			s.log.Warn("llm model: newer version not served", "model", name, "err", err)
		}
	}
}

// Reload is Rescan for one model, asked for (the repository API's load): it always
// tries the newest folder, and says why it could not serve it.
func (s *Server) Reload(ctx context.Context, model string) error {
	s.changing.Lock()
	defer s.changing.Unlock()
	if !s.Has(model) {
		return llm.ModelNotFound(model)
	}
	return s.rescan(ctx, model, true)
}

// rescan moves model's default to its newest folder if that is newer; a folder that
// failed before in the same state is skipped unless again is set.
func (s *Server) rescan(ctx context.Context, name string, again bool) error {
	s.mu.Lock()
	f := s.models[name]
	spec := f.spec
	s.mu.Unlock()
	newest, err := newestVersion(filepath.Dir(spec.Dir))
	if err != nil || newest <= spec.Version {
		return nil // a default whose folders are gone keeps serving what it opened
	}
	// The whole version folder: a tokenizer still being copied changes it too.
	fp := filestate.Fingerprint(filepath.Join(filepath.Dir(spec.Dir), strconv.FormatInt(newest, 10)))
	if seen, ok := f.failed[newest]; ok && seen == fp && !again {
		return nil
	}
	next, err := spec.At(newest)
	s.mu.Lock()
	pinned := f.versions[newest] != nil
	s.mu.Unlock()
	var opened map[int64]*Model
	if err == nil && !pinned {
		opened, err = s.open(ctx, spec, []int64{newest})
	}
	if err != nil {
		f.failed[newest] = fp
		return fmt.Errorf("newer version (the default stays %d): %w", spec.Version, err)
	}
	delete(f.failed, newest)
	keep := map[int64]bool{newest: true}
	for _, n := range f.pinned {
		keep[n] = true
	}
	s.swap(f, keep, opened, &next)
	s.log.Info("llm model default version moved", "model", name, "from", spec.Version, "to", newest)
	return nil
}

// open opens the versions of spec's model numbered ns; on an error it closes what it
// opened.
func (s *Server) open(ctx context.Context, spec Spec, ns []int64) (map[int64]*Model, error) {
	opened := map[int64]*Model{}
	for _, n := range ns {
		err := ctx.Err()
		var m *Model
		if err == nil {
			m, err = s.openVersion(spec, n)
		}
		if err != nil {
			for _, m := range opened {
				m.Close()
			}
			return nil, err
		}
		opened[n] = m
	}
	return opened, nil
}

func (s *Server) openVersion(spec Spec, n int64) (*Model, error) {
	vs, err := spec.At(n)
	if err != nil {
		return nil, fmt.Errorf("llm model %q: %w", spec.Name, err)
	}
	m, err := Open(vs, s.base)
	if err != nil {
		return nil, fmt.Errorf("version %d: %w", n, err)
	}
	s.log.Info("llm model version ready", "model", spec.Name, "version", n)
	return m, nil
}

// swap makes f serve keep: the opened versions join (a version already open wins, and
// the copy is closed), the rest are retired. A non-nil def becomes the default in the
// same step, so no request finds the default missing.
func (s *Server) swap(f *family, keep map[int64]bool, opened map[int64]*Model, def *Spec) {
	var idle, extra []*version
	s.mu.Lock()
	if def != nil {
		f.spec = *def
	}
	for n, m := range opened {
		if f.versions[n] != nil {
			extra = append(extra, newVersion(m))
			continue
		}
		v := newVersion(m)
		f.versions[n] = v
		if s.running {
			s.pending = append(s.pending, v)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(f.versions)) {
		v := f.versions[n]
		v.retired = !keep[n]
		if v.retired {
			delete(f.versions, n)
			if v.users == 0 {
				idle = append(idle, v)
			}
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // Run has a wake-up pending already
	}
	for _, v := range slices.Concat(idle, extra) {
		s.retire(v)
	}
}

// retire stops v's step loop, waits for it, and closes the engine.
func (s *Server) retire(v *version) {
	s.mu.Lock()
	stop := v.stop
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-v.stopped
	}
	if err := v.m.Close(); err != nil {
		s.log.Warn("llm engine close", "model", v.m.spec.Name, "version", v.m.spec.Version, "err", err)
	}
	s.log.Info("llm model version unloaded", "model", v.m.spec.Name, "version", v.m.spec.Version)
}
