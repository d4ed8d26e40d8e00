package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/backend/remote"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/ortlib"
	inference "github.com/ferryml/ferry/internal/proto"
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
func backends(rt *onnx.Runtime, rb *remote.Backend, intraOp int, python string, log *slog.Logger) repository.Backends {
	return repository.Backends{
		"remote": remoteBackend(rb),
		"trees":  treesBackend(), // trees.go
		"python": pythonBackend(python, log.With("backend", "python")),
		"onnxruntime": {
			Platform:        "onnxruntime_onnx",
			DefaultFilename: "model.onnx",
			Inspect:         rt.Inspect,
			Open: func(_ context.Context, path string, cfg *inference.ModelConfig) (scheduler.Instance, error) {
				return rt.Open(path, onnx.SessionOptions{IntraOpThreads: intraOpThreads(cfg, intraOp)})
			},
		},
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

// intraOpThreads picks ONNX Runtime's threads per session: the model's
// `intra_op_thread_count` parameter (as Triton's onnxruntime backend names it), else the
// flag, else the cores shared among the model's instances so instances × threads ≤ cores.
func intraOpThreads(cfg *inference.ModelConfig, flag int) int {
	if p, ok := cfg.GetParameters()["intra_op_thread_count"]; ok {
		if n, err := strconv.Atoi(p.GetStringValue()); err == nil && n > 0 {
			return n
		}
	}
	if flag > 0 {
		return flag
	}
	return modelconfig.CoresPerInstance(cfg)
}
