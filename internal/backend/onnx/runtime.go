package onnx

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrClosed is returned by a Runtime or Session used after Close.
var ErrClosed = errors.New("onnx: closed")

// Options configure a Runtime.
type Options struct {
	// LibraryPath is the ONNX Runtime shared library (libonnxruntime.so.1).
	// Required: this package reads no environment variables; cmd/ferry
	// resolves FERRY_ORT_LIB and its default.
	LibraryPath string
	// Logger receives load records and warnings; nil discards them.
	Logger *slog.Logger
}

// The binding keeps ONNX Runtime's environment in package globals and refuses
// a second one, so at most one Runtime exists at a time. This is the only
// package-level state in the package, and it mirrors the binding's.
var (
	envMu    sync.Mutex
	envInUse bool // guarded by envMu
)

// Runtime owns the process-wide ONNX Runtime environment. Create it once with
// NewRuntime; Close closes every Session still open, then destroys the
// environment. Its methods are safe for concurrent use.
type Runtime struct {
	log     *slog.Logger
	version string
	// perSession is the C heap a session of a one-node model holds (prime.go): the
	// least any session holds on top of its weights.
	perSession int64
	// strs fills string tensors by length (strtensor.go); closed after the
	// environment.
	strs *stringAPI

	// life is held shared while Inspect and Open use the environment and
	// exclusively by Close while it destroys it.
	// Lock order: life, then a Session's mu, then mu.
	life   sync.RWMutex
	closed bool // guarded by life

	// probeMu lets one ProbeBatch measure at a time (batchprobe.go).
	probeMu sync.Mutex

	mu       sync.Mutex
	sessions map[*Session]struct{}    // open sessions; guarded by mu
	descs    map[descKey]*modelDesc   // models described so far (model.go); guarded by mu
	spares   map[string]*spareSession // batch probes' sessions by model path (spare.go); guarded by mu
}

// NewRuntime loads the ONNX Runtime library and initialises its environment.
// It fails if another Runtime is still open in this process.
func NewRuntime(opts Options) (*Runtime, error) {
	if opts.LibraryPath == "" {
		return nil, errors.New("onnx: Options.LibraryPath is required (the ONNX Runtime shared library)")
	}
	if _, err := os.Stat(opts.LibraryPath); err != nil {
		return nil, fmt.Errorf("onnx: ONNX Runtime library: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	envMu.Lock()
	defer envMu.Unlock()
	if envInUse || ort.IsInitialized() {
		return nil, errors.New("onnx: an ONNX Runtime environment already exists in this process; close the other Runtime first")
	}
	ort.SetSharedLibraryPath(opts.LibraryPath)
	var version string
	var perSession int64
	var strs *stringAPI
	err := safely(log, func() error {
		if err := ort.InitializeEnvironment(); err != nil {
			return err
		}
		version = ort.GetVersion()
		var err error
		if strs, err = loadStringAPI(opts.LibraryPath); err != nil {
			ort.DestroyEnvironment()
			return err
		}
		if perSession, err = prime(); err != nil {
			ort.DestroyEnvironment()
			strs.close()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("onnx: initialise ONNX Runtime from %s: %w", opts.LibraryPath, err)
	}
	envInUse = true
	log.Info("onnx runtime initialised", "library", opts.LibraryPath, "ort_version", version, "session_bytes", perSession)
	return &Runtime{log: log, version: version, perSession: perSession, strs: strs,
		sessions: map[*Session]struct{}{}, descs: map[descKey]*modelDesc{}, spares: map[string]*spareSession{}}, nil
}

// Version is the ONNX Runtime library's version ("1.30.0").
func (r *Runtime) Version() string { return r.version }

// Close closes every open Session (waiting for their running Executes), then
// destroys the ONNX Runtime environment. Closing twice is a no-op.
func (r *Runtime) Close() error {
	r.life.Lock()
	defer r.life.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.mu.Lock()
	r.stopSpares()
	open := make([]*Session, 0, len(r.sessions))
	for s := range r.sessions {
		open = append(open, s)
	}
	r.mu.Unlock()
	var errs []error
	for _, s := range open {
		errs = append(errs, s.Close())
	}
	envMu.Lock()
	defer envMu.Unlock()
	if err := safely(r.log, ort.DestroyEnvironment); err != nil {
		errs = append(errs, fmt.Errorf("onnx: destroy ONNX Runtime environment: %w", err))
	}
	if err := r.strs.close(); err != nil {
		errs = append(errs, err)
	}
	envInUse = false
	return errors.Join(errs...)
}

// Inspect reports the inputs and outputs of the model file at modelPath, the
// ones a Session opened from it would take and return. Outputs a Session
// cannot return are left out and logged (see the package comment).
func (r *Runtime) Inspect(modelPath string) (IO, error) {
	d, err := r.describeOpen(modelPath)
	if err != nil {
		return IO{}, err
	}
	return d.io(), nil
}

// describeOpen is describe while the Runtime is open.
func (r *Runtime) describeOpen(modelPath string) (*modelDesc, error) {
	r.life.RLock()
	defer r.life.RUnlock()
	if r.closed {
		return nil, ErrClosed
	}
	return r.describe(modelPath)
}

// safely runs f, turning a panic in it into an error (logged with its stack),
// so a fault in the binding's Go code fails one call, not the server.
func safely(log *slog.Logger, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic in the ONNX Runtime binding", "panic", p, "stack", stack())
			err = fmt.Errorf("onnx: panic in the ONNX Runtime binding: %v", p)
		}
	}()
	return f()
}
