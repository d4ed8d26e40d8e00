package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/backend/remote"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/monitor/metrics"
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
		"python": pythonBackend(cfg.python, cfg.hardening.pythonInterpreters, log.With("backend", "python")),
		"onnxruntime": onnxBackend(onnx.NewEngine(rt, onnx.Settings{IntraOp: cfg.intraOp, Arena: cfg.onDemand.budget <= 0,
			MaxBatch: int32(cfg.onnxMaxBatch), Log: log.With("backend", "onnxruntime")})),
	}
}

// onnxBackend is ONNX Runtime as the table lists it; the engine describes itself
// (internal/backend/onnx/config.go).
func onnxBackend(e *onnx.Engine) repository.Backend {
	return repository.Backend{
		Platform:        onnx.Platform,
		DefaultFilename: onnx.DefaultFilename,
		InspectConfig:   e.InspectConfig,
		Open: func(ctx context.Context, path string, cfg *inference.ModelConfig) (scheduler.Instance, error) {
			s, err := e.Open(ctx, path, cfg)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
	}
}

// upstreamStats hands the remote backend's counters to its metrics.
func upstreamStats(rb *remote.Backend) func() []metrics.UpstreamStats {
	return func() []metrics.UpstreamStats {
		var out []metrics.UpstreamStats
		for _, s := range rb.Stats() {
			out = append(out, metrics.UpstreamStats(s))
		}
		return out
	}
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

// loadRuntime loads ONNX Runtime from where ortLibrary finds it.
func loadRuntime(getenv func(string) string, log *slog.Logger) (*onnx.Runtime, error) {
	lib, err := ortLibrary(getenv)
	if err != nil {
		return nil, err
	}
	return onnx.NewRuntime(onnx.Options{LibraryPath: lib, Logger: log.With("component", "onnx")})
}
