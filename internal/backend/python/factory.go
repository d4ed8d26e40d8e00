package python

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/tensor"
)

// runtimeFiles are the runner and the pb_utils module, written next to each other in a
// temporary folder for every instance, since the interpreter imports from files.
//
//go:embed runtime/ferry_python_runner.py runtime/triton_python_backend_utils.py
var runtimeFiles embed.FS

const runnerFile = "ferry_python_runner.py"

// Names in a model's config that this backend reads.
const (
	// ParamInterpreter overrides the interpreter for one model: an absolute path, or a
	// name looked up on PATH.
	ParamInterpreter = "python_interpreter"
	// ParamHangTimeout is how long execute() may go on after its caller has left (its
	// deadline fired, or it cancelled) before the process counts as hung: it is killed,
	// the supervisor starts a new one, and the requests behind it run there. "off": wait.
	ParamHangTimeout = "execute_hang_timeout"
	// paramExecutionEnv is Triton's conda-pack environment, which Ferry cannot unpack.
	paramExecutionEnv = "EXECUTION_ENV_PATH"
)

// DefaultFilename is the model file a version folder holds (Triton's python backend's).
const DefaultFilename = "model.py"

// Options configure a Factory. Zero values take the defaults.
type Options struct {
	// Interpreter is the python executable: a path, or a name looked up on PATH
	// ("python3" by default).
	Interpreter string
	// Interpreters are the executables a model's python_interpreter parameter may name,
	// paths or names on PATH; empty allows only Interpreter. A config can come from a
	// repository load request: without the list it could run any binary on the host.
	Interpreters []string
	// Logger receives the children's stdout (Info) and stderr (Warn) lines and the
	// supervisor's records, each with the model, version and instance.
	Logger *slog.Logger
	// FinalizeTimeout bounds finalize() at Close, after which the process is killed (5 s).
	FinalizeTimeout time.Duration
	// RestartWait bounds how long a request waits for a process being restarted (1 min).
	RestartWait time.Duration
	// MaxFrameBytes bounds one message from a child (4 GiB).
	MaxFrameBytes uint64
	// HangTimeout is ParamHangTimeout's default (30 s).
	HangTimeout time.Duration

	noNumpy     bool          // tests: use NDArray even when numpy is importable
	stableAfter time.Duration // tests: a shorter healthy run that resets the back-off (stableAfter)
}

func (o Options) withDefaults() Options {
	if o.Interpreter == "" {
		o.Interpreter = "python3"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FinalizeTimeout <= 0 {
		o.FinalizeTimeout = 5 * time.Second
	}
	if o.RestartWait <= 0 {
		o.RestartWait = time.Minute
	}
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = 4 << 30
	}
	if o.HangTimeout == 0 {
		o.HangTimeout = 30 * time.Second
	}
	if o.stableAfter <= 0 {
		o.stableAfter = stableAfter
	}
	return o
}

// Factory opens instances of Python models.
type Factory struct {
	opts Options

	mu    sync.Mutex
	count map[*inference.ModelConfig]int // instances opened so far per version load, for their names
}

// NewFactory returns a Factory; it starts nothing.
func NewFactory(opts Options) *Factory {
	return &Factory{opts: opts.withDefaults(), count: map[*inference.ModelConfig]int{}}
}

// allowed resolves interp (a path or a name on PATH) and accepts it only when it is
// one of the allowed interpreters (Options.Interpreters, else Options.Interpreter),
// compared after resolving paths and symlinks on both sides.
func (f *Factory) allowed(interp string) (string, error) {
	path, err := exec.LookPath(interp)
	if err != nil {
		return "", fmt.Errorf("interpreter %q not found (set it with --python-interpreter or the model's %q parameter): %w",
			interp, ParamInterpreter, err)
	}
	want := f.opts.Interpreters
	if len(want) == 0 {
		want = []string{f.opts.Interpreter}
	}
	real := resolve(path)
	for _, w := range want {
		if p, err := exec.LookPath(w); err == nil && resolve(p) == real {
			return path, nil
		}
	}
	return "", fmt.Errorf("interpreter %q (%s) is not allowed: the model's %q parameter may name only %q (--python-interpreters)",
		interp, path, ParamInterpreter, want)
}

// resolve is path made absolute with its symlinks followed; path itself when that fails.
func resolve(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		return real
	}
	return path
}

// Open starts one instance of the model.py at path (<model>/<version>/model.py) with its
// complete config: a child process that has run initialize(). It fails with the
// interpreter's or initialize()'s error.
func (f *Factory) Open(ctx context.Context, path string, cfg *inference.ModelConfig) (*Instance, error) {
	inst, err := f.open(ctx, path, cfg)
	f.mu.Lock()
	n := f.count[cfg] + 1
	if err != nil || n >= modelconfig.Instances(cfg) { // the repository opens no more for this load
		delete(f.count, cfg)
	} else {
		f.count[cfg] = n
	}
	f.mu.Unlock()
	return inst, err
}

func (f *Factory) open(ctx context.Context, path string, cfg *inference.ModelConfig) (*Instance, error) {
	name := cfg.GetName()
	opts := f.opts
	if err := supported(cfg); err != nil {
		return nil, fmt.Errorf("python model '%s': %w", name, err)
	}
	if p, _ := modelconfig.Param(cfg, ParamInterpreter); p != "" {
		opts.Interpreter = p
	}
	interp, err := f.allowed(opts.Interpreter)
	if err != nil {
		return nil, fmt.Errorf("python model '%s': %w", name, err)
	}
	opts.Interpreter = interp
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	version := filepath.Base(filepath.Dir(abs))
	if opts.HangTimeout, err = modelconfig.ParamDuration(cfg, ParamHangTimeout, opts.HangTimeout, true); err != nil {
		return nil, fmt.Errorf("python model '%s': %w", name, err)
	}
	s := spec{model: name, version: version, instance: f.instanceName(cfg), opts: opts,
		batched: cfg.GetMaxBatchSize() > 0, outputs: map[string]outputSpec{}}
	for _, o := range cfg.GetOutput() {
		s.outputs[o.GetName()] = outputOf(o, s.batched)
		s.outputOrder = append(s.outputOrder, o.GetName())
	}
	if s.initArgs, err = initArgs(abs, version, s.instance, cfg, !opts.noNumpy); err != nil {
		return nil, fmt.Errorf("python model '%s': %w", name, err)
	}
	if s.dir, err = writeRuntime(); err != nil {
		return nil, fmt.Errorf("python model '%s': %w", name, err)
	}
	s.runner = filepath.Join(s.dir, runnerFile)
	in := &Instance{spec: s, changed: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{}),
		log: opts.Logger.With("model", name, "version", version, "instance", s.instance)}
	p, err := in.start(ctx)
	if err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	in.cur = p
	go in.supervise(p) // ends when Close has stopped the process
	return in, nil
}

// supported refuses the Triton python-backend features Ferry does not have.
func supported(cfg *inference.ModelConfig) error {
	if cfg.GetModelTransactionPolicy().GetDecoupled() {
		return errors.New("model_transaction_policy.decoupled: decoupled models are not supported by the python backend")
	}
	if _, ok := cfg.GetParameters()[paramExecutionEnv]; ok {
		return fmt.Errorf("parameters[%q]: conda-pack environments are not supported; point the %q parameter at the environment's python3 instead",
			paramExecutionEnv, ParamInterpreter)
	}
	return nil
}

func outputOf(o *inference.ModelOutput, batched bool) outputSpec {
	spec := outputSpec{dtype: modelconfig.DType(o.GetDataType())}
	if o.GetReshape() != nil {
		return spec // the model's own shape differs from dims; not checked
	}
	if batched {
		spec.shape = append(tensor.Shape{-1}, o.GetDims()...)
	} else {
		spec.shape = tensor.Shape(o.GetDims())
	}
	return spec
}

// initArgs is the args dict Triton gives initialize() (every value a string), plus
// the model file for the runner.
func initArgs(path, version, instance string, cfg *inference.ModelConfig, numpy bool) ([]byte, error) {
	cj, err := modelconfig.MarshalJSON(cfg)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"model_config":             string(cj),
		"model_name":               cfg.GetName(),
		"model_version":            version,
		"model_instance_name":      instance,
		"model_instance_kind":      "CPU",
		"model_instance_device_id": "0",
		"model_repository":         filepath.Dir(filepath.Dir(path)), // the model's folder, as Triton passes it
		"_ferry_model_file":        path,
		"_ferry_numpy":             numpy,
	})
}

// instanceName names the next instance of this load as Triton does: "<group name>_<k>",
// the group name defaulting to "<model>_<group index>". The repository opens a
// version's instances one after another with the same config.
func (f *Factory) instanceName(cfg *inference.ModelConfig) string {
	f.mu.Lock()
	n := f.count[cfg]
	f.mu.Unlock()
	for i, g := range cfg.GetInstanceGroup() {
		c := int(max(g.GetCount(), 1))
		if n < c {
			name := g.GetName()
			if name == "" {
				name = fmt.Sprintf("%s_%d", cfg.GetName(), i)
			}
			return fmt.Sprintf("%s_%d", name, n)
		}
		n -= c
	}
	return fmt.Sprintf("%s_0_%d", cfg.GetName(), n)
}

// writeRuntime writes the runner and pb_utils module to a new temporary folder.
func writeRuntime() (string, error) {
	dir, err := os.MkdirTemp("", "ferry-python-")
	if err != nil {
		return "", err
	}
	for _, name := range []string{runnerFile, "triton_python_backend_utils.py"} {
		b, err := runtimeFiles.ReadFile("runtime/" + name)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
		if err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}
