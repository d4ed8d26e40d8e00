package lanetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/backend/trees"
	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/platform/ortlib"
	"github.com/ferryml/ferry/internal/repository"
	"github.com/ferryml/ferry/internal/scheduler"
)

// ErrNoRuntime is Open's error when the ONNX Runtime library is not there (`make ort`).
var ErrNoRuntime = errors.New("lanetest: ONNX Runtime library not found (run `make ort` or set FERRY_ORT_LIB)")

// Core is a loaded repository and the core serving it.
type Core struct {
	*core.Server
	repo *repository.Repository
	rt   *onnx.Runtime
}

// Open loads models (all of them when none are named) from root, a repository folder.
func Open(root string, models ...string) (*Core, error) {
	lib := ortlib.Find(os.Getenv)
	if lib == "" {
		return nil, ErrNoRuntime
	}
	rt, err := onnx.NewRuntime(onnx.Options{LibraryPath: lib})
	if err != nil {
		return nil, err
	}
	mode := repository.ModeNone
	if len(models) > 0 {
		mode = repository.ModeExplicit
	}
	log := slog.New(slog.DiscardHandler)
	repo, err := repository.New(repository.Options{Root: root, Mode: mode, Startup: models, Logger: log,
		Backends: repository.Backends{"onnxruntime": onnxBackend(onnx.NewEngine(rt, onnx.Settings{Arena: true, Log: log})), "trees": treesBackend()}})
	if err != nil {
		rt.Close()
		return nil, err
	}
	if err := repo.Start(context.Background()); err != nil {
		repo.Close()
		rt.Close()
		return nil, fmt.Errorf("lanetest: loading %s: %w", root, err)
	}
	return &Core{Server: core.New(core.Options{Name: "ferry", Repository: repo, Limits: core.DefaultLimits(), Logger: log}), repo: repo, rt: rt}, nil
}

// Close unloads the models and closes ONNX Runtime.
func (c *Core) Close() {
	c.repo.Close()
	c.rt.Close()
}

// ExampleModels is the example repository (examples/models, `make models`) found from
// the working directory up.
func ExampleModels() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "examples", "models")
		if _, err := os.Stat(filepath.Join(p, "tabular")); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("lanetest: examples/models not found (run `make models`)")
		}
		dir = parent
	}
}

func onnxBackend(e *onnx.Engine) repository.Backend {
	return repository.Backend{Platform: onnx.Platform, DefaultFilename: onnx.DefaultFilename, InspectConfig: e.InspectConfig,
		Open: func(ctx context.Context, path string, cfg *inference.ModelConfig) (scheduler.Instance, error) {
			s, err := e.Open(ctx, path, cfg)
			if err != nil {
				return nil, err
			}
			return s, nil
		}}
}

func treesBackend() repository.Backend {
	return repository.Backend{Aliases: []string{"tree"}, DefaultFilename: trees.FilenameXGBoost, ModelFile: trees.ModelFile, Inspect: trees.Inspect,
		Open: func(_ context.Context, path string, cfg *inference.ModelConfig) (scheduler.Instance, error) {
			opts, err := trees.OptionsFromConfig(cfg)
			if err != nil {
				return nil, err
			}
			return trees.Open(path, opts)
		}}
}

// TabularMapping fills the example tabular model's one input, features, from the six
// fields of a credit-scoring row.
var TabularMapping = lane.Mapping{"features": {"age", "income", "debt_ratio", "tenure", "late_payments", "utilization"}}

// OpenExamples opens models (all when none are named) of the example repository.
func OpenExamples(models ...string) (*Core, error) {
	root, err := ExampleModels()
	if err != nil {
		return nil, err
	}
	return Open(root, models...)
}
