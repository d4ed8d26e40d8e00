package onnx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/ferryml/ferry/internal/platform/threadprio"
	"github.com/ferryml/ferry/internal/tensor"
)

// SessionOptions tune one Session. Zero values keep ONNX Runtime's defaults, except
// spinning (see sessionOptions).
type SessionOptions struct {
	// IntraOpThreads sizes the thread pool that splits one operator's work;
	// 0 is ONNX Runtime's default, one thread per physical core. With several
	// sessions in one process, set it so their sum fits the machine.
	IntraOpThreads int
	// Parallel selects ONNX Runtime's parallel execution mode, which runs
	// independent branches of the graph at once on InterOpThreads threads (0:
	// ONNX Runtime's default). Sequential mode ignores InterOpThreads.
	Parallel       bool
	InterOpThreads int
	// Optimization is how far ONNX Runtime rewrites the graph at load.
	Optimization Optimization
	// NoMemArena and NoMemPattern turn off ONNX Runtime's CPU memory arena and its
	// memory pattern planning, which trade memory for fewer allocations.
	NoMemArena, NoMemPattern bool
	// Config holds session configuration entries ("session.intra_op.allow_spinning",
	// ...), set after Ferry's own so that they win.
	Config map[string]string
}

// Optimization is a graph optimization level.
type Optimization int

const (
	OptimizeAll      Optimization = iota // ONNX Runtime's default
	OptimizeExtended                     // basic, and fusions such as Gemm+activation
	OptimizeBasic                        // constant folding, redundant nodes removed
	OptimizeNone                         // the graph as the file has it
)

// Session is one loaded model. Execute may be called concurrently (ONNX
// Runtime's Run is thread-safe); Close waits for running Executes to finish.
type Session struct {
	rt      *Runtime
	log     *slog.Logger
	path    string
	size    int64
	inputs  []TensorInfo
	inIndex map[string]int
	outputs []outputSpec
	outIdx  map[string]int
	skipped map[string]string // output name -> why the session cannot return it

	mu   sync.RWMutex                // held shared by Execute, exclusively by Close
	sess *ort.DynamicAdvancedSession // nil once closed; guarded by mu
}

// Open loads the model file at modelPath into a new Session.
func (r *Runtime) Open(modelPath string, opts SessionOptions) (*Session, error) {
	r.life.RLock()
	defer r.life.RUnlock()
	if r.closed {
		return nil, ErrClosed
	}
	d, err := r.describe(modelPath)
	if err != nil {
		return nil, err
	}
	if s := r.takeSpare(modelPath, d, opts); s != nil {
		return s, nil // a batch probe's session (spare.go)
	}
	s := &Session{
		rt: r, log: r.log.With("model_path", modelPath), path: modelPath,
		inputs: d.inputs, inIndex: map[string]int{},
		outputs: d.outputs, outIdx: map[string]int{}, skipped: map[string]string{},
	}
	inNames := make([]string, len(d.inputs))
	for i, in := range d.inputs {
		inNames[i], s.inIndex[in.Name] = in.Name, i
	}
	outNames := make([]string, len(d.outputs))
	for i, out := range d.outputs {
		outNames[i], s.outIdx[out.Name] = out.Name, i
	}
	for _, sk := range d.skipped {
		s.skipped[sk.name] = sk.reason
	}
	if fi, err := os.Stat(modelPath); err == nil {
		s.size = fi.Size()
	}
	// ONNX Runtime starts the session's pool threads here; created from an inference
	// thread, they are inference threads too.
	err = threadprio.Do(func() error {
		return safely(r.log, func() error {
			so, err := sessionOptions(opts)
			if err != nil {
				return err
			}
			defer so.Destroy()
			s.sess, err = ort.NewDynamicAdvancedSession(modelPath, inNames, outNames, so)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("onnx: open %s: %w", modelPath, err)
	}
	r.mu.Lock()
	r.sessions[s] = struct{}{}
	r.mu.Unlock()
	s.log.Info("onnx session opened", "inputs", len(s.inputs), "outputs", len(s.outputs),
		"intra_op_threads", opts.IntraOpThreads, "inter_op_threads", opts.InterOpThreads)
	return s, nil
}

func sessionOptions(opts SessionOptions) (*ort.SessionOptions, error) {
	if opts.IntraOpThreads < 0 || opts.InterOpThreads < 0 {
		return nil, fmt.Errorf("thread counts must be >= 0, got intra-op %d, inter-op %d", opts.IntraOpThreads, opts.InterOpThreads)
	}
	level, ok := map[Optimization]ort.GraphOptimizationLevel{
		OptimizeAll: ort.GraphOptimizationLevelEnableAll, OptimizeExtended: ort.GraphOptimizationLevelEnableExtended,
		OptimizeBasic: ort.GraphOptimizationLevelEnableBasic, OptimizeNone: ort.GraphOptimizationLevelDisableAll,
	}[opts.Optimization]
	if !ok {
		return nil, fmt.Errorf("unknown graph optimization level %d", opts.Optimization)
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	steps := []func() error{
		// ONNX Runtime's pool threads spin between runs by default. In a server the same
		// cores decode requests and form batches, so spinning steals them; measured on 2
		// cores with the mlp example at 64 clients it cost about a fifth of the throughput.
		// A model may ask otherwise through Config (session.intra_op.allow_spinning and
		// session.intra_op.spin_duration_us).
		func() error { return so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0") },
		func() error { return so.SetGraphOptimizationLevel(level) },
	}
	if opts.IntraOpThreads > 0 {
		steps = append(steps, func() error { return so.SetIntraOpNumThreads(opts.IntraOpThreads) })
	}
	if opts.Parallel {
		steps = append(steps, func() error { return so.SetExecutionMode(ort.ExecutionModeParallel) })
		if opts.InterOpThreads > 0 {
			steps = append(steps, func() error { return so.SetInterOpNumThreads(opts.InterOpThreads) })
		}
	}
	// $FERRY_ORT_PROFILE, a file prefix, has ONNX Runtime profile every session opened
	// (PREFIX_<date>.json each; tools/ortprof summarizes them): a developer's tool for
	// seeing which operators a model's runs spend their time in.
	if pf := os.Getenv("FERRY_ORT_PROFILE"); pf != "" {
		steps = append(steps, func() error { return so.EnableProfiling(pf) })
	}
	if opts.NoMemArena {
		steps = append(steps, func() error { return so.SetCpuMemArena(false) })
	}
	if opts.NoMemPattern {
		steps = append(steps, func() error { return so.SetMemPattern(false) })
	}
	for _, k := range slices.Sorted(maps.Keys(opts.Config)) {
		steps = append(steps, func() error { return so.AddSessionConfigEntry(k, opts.Config[k]) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			so.Destroy()
			return nil, err
		}
	}
	return so, nil
}

// IO reports the inputs the session takes and the outputs it returns (a
// copy the caller may keep).
func (s *Session) IO() IO {
	io := IO{Inputs: make([]TensorInfo, len(s.inputs)), Outputs: make([]TensorInfo, len(s.outputs))}
	for i, in := range s.inputs {
		io.Inputs[i] = TensorInfo{Name: in.Name, DType: in.DType, Shape: in.Shape.Clone()}
	}
	for i, o := range s.outputs {
		io.Outputs[i] = TensorInfo{Name: o.Name, DType: o.DType, Shape: o.Shape.Clone()}
	}
	return io
}

// ResidentBytes is a floor of the memory the session holds: the model file's
// size, which its weights dominate, plus what the smallest session holds
// (measured when the Runtime started). ONNX Runtime's arena, pre-packed
// weights and a bigger graph's kernels come on top.
func (s *Session) ResidentBytes() int64 { return s.size + s.rt.perSession }

// Close releases the session after the Executes in progress return. Closing
// twice is a no-op.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return nil
	}
	err := safely(s.log, s.sess.Destroy)
	s.sess = nil
	s.rt.mu.Lock()
	delete(s.rt.sessions, s)
	s.rt.mu.Unlock()
	if err != nil {
		return fmt.Errorf("onnx: close %s: %w", s.path, err)
	}
	return nil
}

// Execute runs the model once. in holds every model input, each a full tensor
// (batch dimension included when the model batches); Execute does not keep
// them or change their Data. want names the outputs to return, in that order;
// nil returns every output, in model order. The returned tensors own their
// Data.
//
// Errors about the request are *InputError. A context cancelled before the
// run returns its error; one cancelled during the run stops it between graph
// nodes and returns an error wrapping ctx.Err().
func (s *Session) Execute(ctx context.Context, in []*tensor.Tensor, want []string) ([]*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ordered, err := s.orderInputs(in)
	if err != nil {
		return nil, err
	}
	outs, err := s.selectOutputs(want)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.sess == nil {
		return nil, ErrClosed
	}
	var res []*tensor.Tensor
	err = safely(s.log, func() error {
		res, err = s.run(ctx, ordered, outs)
		return err
	})
	return res, err
}

// orderInputs checks the request's inputs against the model and puts them in
// the session's input order.
func (s *Session) orderInputs(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	ordered := make([]*tensor.Tensor, len(s.inputs))
	for _, t := range in {
		if t == nil {
			return nil, errors.New("onnx: nil input tensor")
		}
		i, ok := s.inIndex[t.Name]
		if !ok {
			return nil, inputErr(t.Name, "the model has no such input (it takes %s)", s.inputNames())
		}
		if ordered[i] != nil {
			return nil, inputErr(t.Name, "given more than once")
		}
		m := s.inputs[i]
		if t.DType != m.DType {
			return nil, inputErr(t.Name, "datatype %s does not match the model's %s", t.DType, m.DType)
		}
		// A model that declares no shape reports rank 0; let ONNX Runtime
		// judge those.
		if len(m.Shape) > 0 && !t.Shape.Matches(m.Shape) {
			return nil, inputErr(t.Name, "shape %v does not match the model's %v", t.Shape, m.Shape)
		}
		if err := t.Validate(); err != nil {
			return nil, inputErr(t.Name, "%v", err)
		}
		ordered[i] = t
	}
	var missing []error
	for i, t := range ordered {
		if t == nil {
			missing = append(missing, inputErr(s.inputs[i].Name, "missing: the model needs it"))
		}
	}
	return ordered, errors.Join(missing...)
}

func (s *Session) inputNames() string {
	names := make([]string, len(s.inputs))
	for i, in := range s.inputs {
		names[i] = fmt.Sprintf("%q", in.Name)
	}
	return strings.Join(names, ", ")
}

// selectOutputs maps want to session output indices.
func (s *Session) selectOutputs(want []string) ([]int, error) {
	if want == nil {
		all := make([]int, len(s.outputs))
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	idx := make([]int, 0, len(want))
	seen := make(map[string]bool, len(want))
	for _, name := range want {
		i, ok := s.outIdx[name]
		switch {
		case seen[name]:
			return nil, outputErr(name, "requested more than once")
		case !ok && s.skipped[name] != "":
			return nil, outputErr(name, "cannot be returned by the onnx backend: it %s", s.skipped[name])
		case !ok:
			return nil, outputErr(name, "the model has no such output")
		}
		seen[name] = true
		idx = append(idx, i)
	}
	return idx, nil
}

// run builds the ONNX Runtime values, runs the graph and converts the wanted
// outputs. Every value it creates is destroyed before it returns.
func (s *Session) run(ctx context.Context, in []*tensor.Tensor, want []int) ([]*tensor.Tensor, error) {
	// Inputs and preallocated outputs are Go memory ONNX Runtime holds
	// during the run; pinning makes that legal under cgo's pointer rules.
	var pin runtime.Pinner
	defer pin.Unpin()
	inVals := make([]ort.Value, len(in))
	defer destroyAll(inVals)
	for i, t := range in {
		v, err := inputValue(t, &pin, s.rt.strs)
		if err != nil {
			return nil, err
		}
		inVals[i] = v
	}
	// nil entries are allocated by ONNX Runtime; the binding fills them in.
	outVals := make([]ort.Value, len(s.outputs))
	defer destroyAll(outVals)
	pre := make([]preallocated, len(s.outputs))
	for i, o := range s.outputs {
		if !o.prealloc {
			continue
		}
		p, err := preallocate(o, in, &pin)
		if err != nil {
			return nil, err
		}
		pre[i], outVals[i] = p, p.value
	}
	if err := s.runGraph(ctx, inVals, outVals); err != nil {
		return nil, err
	}
	res := make([]*tensor.Tensor, len(want))
	for j, i := range want {
		t, err := outputTensor(s.outputs[i], outVals[i], pre[i])
		if err != nil {
			return nil, err
		}
		res[j] = t
	}
	return res, nil
}

// runGraph calls ONNX Runtime, setting its terminate flag if ctx ends first.
func (s *Session) runGraph(ctx context.Context, in, out []ort.Value) error {
	var opts *ort.RunOptions
	if ctx.Done() != nil {
		var err error
		if opts, err = ort.NewRunOptions(); err != nil {
			return fmt.Errorf("onnx: run options: %w", err)
		}
		defer opts.Destroy()
		// finished keeps a late cancellation from touching opts once the run
		// is over and opts is about to be destroyed.
		var mu sync.Mutex
		finished := false
		stop := context.AfterFunc(ctx, func() {
			mu.Lock()
			defer mu.Unlock()
			if !finished {
				opts.Terminate()
			}
		})
		defer func() {
			stop()
			mu.Lock()
			finished = true
			mu.Unlock()
		}()
	}
	if err := s.sess.RunWithOptions(in, out, opts); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("onnx: run stopped: %w", ctx.Err())
		}
		return fmt.Errorf("onnx: run: %w", err)
	}
	return nil
}

func destroyAll(vs []ort.Value) {
	for _, v := range vs {
		if v != nil {
			v.Destroy()
		}
	}
}
