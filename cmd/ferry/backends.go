package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/backend/remote"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/platform/ortlib"
	"github.com/ferryml/ferry/internal/repository"
	"github.com/ferryml/ferry/internal/scheduler"
)

// defaultORTLib is where `make ort` put the ONNX Runtime library; the Makefile sets it
// with -ldflags so a built binary finds the library from any working directory.
var defaultORTLib = ""

// ortLibrary finds the ONNX Runtime shared library: FERRY_ORT_LIB, the path baked in at
// build time, .ort/lib next to the binary's folder, then .ort/lib in or above the
// working directory.
func ortLibrary(getenv func(string) string) (string, error) {
	var nextToBinary string
	if exe, err := os.Executable(); err == nil {
		nextToBinary = filepath.Join(filepath.Dir(exe), "..", ".ort", "lib", "libonnxruntime.so.1")
	}
	if p := ortlib.Find(getenv, defaultORTLib, nextToBinary); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("ONNX Runtime library not found: run `make ort` or set FERRY_ORT_LIB")
}

// backends is every execution engine in this binary, in one place.
//
// Under a memory budget, ONNX sessions run without ONNX Runtime's CPU memory arena unless
// a model's config asks for it (enable_mem_arena: 1): each session's arena takes 1 MiB at
// its first run and keeps its peak until it closes, which for small models is fifteen
// times what the session holds and which a load cannot measure (it comes after). Without
// it, a run's buffers are freed when the run ends, so what a model holds is what its load
// measured.
func backends(rt *onnx.Runtime, rb *remote.Backend, cfg serveConfig, log *slog.Logger) repository.Backends {
	return repository.Backends{
		"remote": remoteBackend(rb),
		"trees":  treesBackend(), // trees.go
		"python": pythonBackend(cfg.python, log.With("backend", "python")),
		"onnxruntime": onnxBackend(rt, onnxSettings{intraOp: cfg.intraOp, arena: cfg.onDemand.budget <= 0,
			maxBatch: int32(cfg.onnxMaxBatch)}, log.With("backend", "onnxruntime")),
	}
}

// onnxSettings are the server's settings for every ONNX model.
type onnxSettings struct {
	intraOp int  // --onnx-intra-op-threads
	arena   bool // the memory arena unless a model says otherwise (off under a budget)
	// maxBatch is --onnx-default-max-batch-size: the max_batch_size auto-complete gives
	// a model that can batch; 0 measures each model (probeMaxBatch).
	maxBatch int32
}

func onnxBackend(rt *onnx.Runtime, set onnxSettings, log *slog.Logger) repository.Backend {
	return repository.Backend{
		Platform:        "onnxruntime_onnx",
		DefaultFilename: "model.onnx",
		InspectConfig: func(_ context.Context, path string, cfg *inference.ModelConfig) (modelconfig.IO, error) {
			io, err := rt.Inspect(path)
			if err != nil {
				return io, err
			}
			io.MaxBatchSize = set.maxBatch
			if set.maxBatch == 0 {
				io.PickMaxBatchSize = func() int32 { return probeMaxBatch(rt, path, cfg, set, log) }
			}
			return io, nil
		},
		Open: func(_ context.Context, path string, cfg *inference.ModelConfig) (scheduler.Instance, error) {
			opts, err := onnxOptions(cfg, set.intraOp, set.arena)
			if err != nil {
				return nil, err
			}
			return rt.Open(path, opts)
		},
	}
}

// probeMaxBatch measures the model, in a session with the options its instances will
// have (whose threads decide where batching stops paying: the mlp example saturates one
// thread at 4 rows but gains to 64 on two), and returns the max_batch_size the
// measurement chose (onnx.Runtime.ProbeBatch), or 0 to keep Triton's 4 when the options
// are wrong (Open then says how).
func probeMaxBatch(rt *onnx.Runtime, path string, cfg *inference.ModelConfig, set onnxSettings, log *slog.Logger) int32 {
	opts, err := onnxOptions(cfg, set.intraOp, set.arena)
	if err != nil {
		return 0
	}
	p := rt.ProbeBatch(path, opts)
	rps := make([]int64, len(p.RowsPerSec))
	for i, r := range p.RowsPerSec {
		rps[i] = int64(r)
	}
	gains := make([]string, len(p.Gains))
	for i, g := range p.Gains {
		gains[i] = strconv.FormatFloat(g, 'f', 2, 64)
	}
	log.Info("max_batch_size measured for auto-complete", "model", cfg.GetName(), "batch_sizes", p.Sizes,
		"rows_per_second", rps, "gains", gains, "max_batch_size", p.MaxBatchSize, "stop", p.Stop, "took", p.Took,
		"intra_op_threads", opts.IntraOpThreads)
	return int32(p.MaxBatchSize)
}

// remoteBackend forwards to an upstream V2 server; a model needs no file, only its
// config's parameters (see internal/backend/remote).
func remoteBackend(rb *remote.Backend) repository.Backend {
	return repository.Backend{
		Platform: "remote",
		InspectConfig: func(ctx context.Context, _ string, cfg *inference.ModelConfig) (modelconfig.IO, error) {
			return rb.Inspect(ctx, cfg)
		},
		Open: func(ctx context.Context, path string, cfg *inference.ModelConfig) (scheduler.Instance, error) {
			return rb.Open(ctx, path, cfg)
		},
	}
}

// onnxOptions reads a model's ONNX Runtime settings from its config, with the names and
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
func onnxOptions(cfg *inference.ModelConfig, intraOpFlag int, arena bool) (onnx.SessionOptions, error) {
	var o onnx.SessionOptions
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
		o.Optimization = onnx.OptimizeBasic
	case 1:
		o.Optimization = onnx.OptimizeExtended
	case 2:
		o.Optimization = onnx.OptimizeNone
	}
	for key := range cfg.GetParameters() {
		if strings.HasPrefix(key, "session.") {
			if o.Config == nil {
				o.Config = map[string]string{}
			}
			o.Config[key], _ = modelconfig.Param(cfg, key)
		}
	}
	return o, nil
}
