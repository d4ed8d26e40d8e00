package onnx

import (
	"cmp"
	"context"
	"log/slog"
	"math"
	"strconv"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
)

// What a model config names this engine by, and its model file.
const (
	Platform        = "onnxruntime_onnx"
	DefaultFilename = "model.onnx"
)

// Settings are the server's settings for every ONNX model.
type Settings struct {
	IntraOp int  // --onnx-intra-op-threads; 0: the cores shared among a model's instances
	Arena   bool // the memory arena unless a model says otherwise (off under a budget)
	// MaxBatch is --onnx-default-max-batch-size: the max_batch_size auto-complete gives a
	// model that can batch; 0 measures each model (ProbeBatch).
	MaxBatch int32
	Log      *slog.Logger // nil discards
}

// Engine is ONNX Runtime as the model repository sees it: it describes a model from
// its file and config, and opens instances with the options the config asks for.
type Engine struct {
	rt  *Runtime
	set Settings
}

// NewEngine describes and opens models on rt with the server's settings.
func NewEngine(rt *Runtime, set Settings) *Engine {
	if set.Log == nil {
		set.Log = slog.New(slog.DiscardHandler)
	}
	return &Engine{rt: rt, set: set}
}

// InspectConfig reads the model's inputs and outputs for auto-complete; when the config
// leaves max_batch_size to it, the batch size is measured (probeMaxBatch) unless the
// server fixed one.
func (e *Engine) InspectConfig(_ context.Context, path string, cfg *inference.ModelConfig) (modelconfig.IO, error) {
	io, err := e.rt.Inspect(path)
	if err != nil {
		return io, err
	}
	io.MaxBatchSize = e.set.MaxBatch
	if e.set.MaxBatch == 0 {
		io.PickMaxBatchSize = func() int32 { return e.probeMaxBatch(path, cfg) }
	}
	return io, nil
}

// Open opens one instance of the model with the options its config asks for.
func (e *Engine) Open(_ context.Context, path string, cfg *inference.ModelConfig) (*Session, error) {
	opts, err := OptionsFromConfig(cfg, e.set.IntraOp, e.set.Arena)
	if err != nil {
		return nil, err
	}
	return e.rt.Open(path, opts)
}

// probeMaxBatch measures the model, in a session with the options its instances will
// have (whose threads decide where batching stops paying: the mlp example saturates one
// thread at 4 rows but gains to 64 on two), and returns the max_batch_size the
// measurement chose (Runtime.ProbeBatch), or 0 to keep Triton's 4 when the options are
// wrong (Open then says how).
func (e *Engine) probeMaxBatch(path string, cfg *inference.ModelConfig) int32 {
	opts, err := OptionsFromConfig(cfg, e.set.IntraOp, e.set.Arena)
	if err != nil {
		return 0
	}
	p := e.rt.ProbeBatch(path, opts)
	rps := make([]int64, len(p.RowsPerSec))
	for i, r := range p.RowsPerSec {
		rps[i] = int64(r)
	}
	gains := make([]string, len(p.Gains))
	for i, g := range p.Gains {
		gains[i] = strconv.FormatFloat(g, 'f', 2, 64)
	}
	e.set.Log.Info("max_batch_size measured for auto-complete", "model", cfg.GetName(), "batch_sizes", p.Sizes,
		"rows_per_second", rps, "gains", gains, "max_batch_size", p.MaxBatchSize, "stop", p.Stop, "took", p.Took,
		"intra_op_threads", opts.IntraOpThreads)
	return int32(p.MaxBatchSize)
}

// OptionsFromConfig reads a model's ONNX Runtime settings from its config, with the names and
// values Triton's onnxruntime backend reads:
//   - parameters intra_op_thread_count and inter_op_thread_count, whole numbers; 0 or
//     none leaves intra-op threads to the flag, else to the cores shared among the
//     model's instances so that instances × threads ≤ cores;
//   - parameter execution_mode: 0 sequential, 1 parallel;
//   - parameters enable_mem_arena and enable_mem_pattern: 1 or 0 (not set: the pattern
//     on, the arena as arena says);
//   - optimization { graph { level } }: -1 basic, 1 extended, 2 none, anything else all.
//
// Parameters named session.* are ONNX Runtime session config entries and go to the
// session as they are: Triton passes session.use_device_allocator_for_initializers so,
// and Ferry passes any, such as session.intra_op.spin_duration_us. A value that is not
// what its parameter takes is an error naming both, so the model fails to load rather
// than run with a setting nobody asked for.
func OptionsFromConfig(cfg *inference.ModelConfig, intraOpFlag int, arena bool) (SessionOptions, error) {
	var o SessionOptions
	var err error
	if o.IntraOpThreads, err = modelconfig.ParamInt(cfg, "intra_op_thread_count", 0, 0, math.MaxInt); err != nil {
		return o, err
	}
	o.IntraOpThreads = cmp.Or(o.IntraOpThreads, intraOpFlag, modelconfig.CoresPerInstance(cfg))
	if o.InterOpThreads, err = modelconfig.ParamInt(cfg, "inter_op_thread_count", 0, 0, math.MaxInt); err != nil {
		return o, err
	}
	switch v, _ := modelconfig.Param(cfg, "execution_mode"); v {
	case "", "0":
	case "1":
		o.Parallel = true
	default:
		return o, modelconfig.ParamError("execution_mode", "must be 0 (sequential) or 1 (parallel), got %q", v)
	}
	if arena, err = modelconfig.ParamBool(cfg, "enable_mem_arena", arena); err != nil {
		return o, err
	}
	o.NoMemArena = !arena
	pattern, err := modelconfig.ParamBool(cfg, "enable_mem_pattern", true)
	if err != nil {
		return o, err
	}
	o.NoMemPattern = !pattern
	switch cfg.GetOptimization().GetGraph().GetLevel() {
	case -1:
		o.Optimization = OptimizeBasic
	case 1:
		o.Optimization = OptimizeExtended
	case 2:
		o.Optimization = OptimizeNone
	}
	o.Config, err = modelconfig.SessionEntries(cfg)
	return o, err
}
