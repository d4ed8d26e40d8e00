package main

import (
	"context"
	"log/slog"

	"github.com/ferryml/ferry/internal/backend/python"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/repository"
	"github.com/ferryml/ferry/internal/scheduler"
)

// pythonBackend runs Triton-style model.py files, each instance in a python3 child
// process (internal/backend/python). The config lists the inputs and outputs: there
// is nothing to inspect.
func pythonBackend(interpreter string, allowed []string, log *slog.Logger) repository.Backend {
	if len(allowed) > 0 {
		allowed = append([]string{interpreter}, allowed...) // --python-interpreter is the operator's choice too
	}
	f := python.NewFactory(python.Options{Interpreter: interpreter, Interpreters: allowed, Logger: log})
	return repository.Backend{
		DefaultFilename: python.DefaultFilename,
		Code:            true, // uploaded model.py files need --allow-python-uploads
		Open: func(ctx context.Context, path string, cfg *inference.ModelConfig) (scheduler.Instance, error) {
			in, err := f.Open(ctx, path, cfg)
			if err != nil {
				return nil, err // not a nil *Instance inside the interface
			}
			return in, nil
		},
		// The child's memory is outside this process: the memory budget adds it to what
		// it measures here (ondemand.go).
		OutsideMemory: func(in scheduler.Instance) int64 {
			if p, ok := in.(*python.Instance); ok {
				return p.ResidentBytes()
			}
			return 0
		},
	}
}

// The scheduler hands a python instance each batch as its list of requests, and asks it
// whether it can serve (not while its process is down or restarting).
var (
	_ scheduler.RequestsInstance = (*python.Instance)(nil)
	_ scheduler.Readier          = (*python.Instance)(nil)
)
