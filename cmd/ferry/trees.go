package main

import (
	"context"
	"runtime"

	"github.com/ferryml/ferry/internal/backend/trees"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/repository"
	"github.com/ferryml/ferry/internal/scheduler"
)

// treesBackend serves XGBoost JSON (model.json) and LightGBM text (model.txt) models
// with the pure-Go trees backend, as `backend: "trees"` (or "tree"). A model folder without a
// config gets it when a version folder holds either file. The engine reads its config
// parameters itself (internal/backend/trees/config.go).
func treesBackend() repository.Backend {
	return repository.Backend{
		// One single-threaded instance per core: leaves splits a batch over goroutines
		// that wait for the slowest, so under load from the request handling around it
		// one instance per core serves 16-row requests 1.4x as fast (BenchmarkTreesServerVsLeaves).
		Aliases:          []string{"tree"},
		DefaultInstances: runtime.NumCPU(),
		DefaultFilename:  trees.FilenameXGBoost,
		ModelFile:        trees.ModelFile,
		Inspect:          trees.Inspect,
		Open: func(_ context.Context, path string, cfg *inference.ModelConfig) (scheduler.Instance, error) {
			opts, err := trees.OptionsFromConfig(cfg)
			if err != nil {
				return nil, err
			}
			return trees.Open(path, opts)
		},
	}
}
