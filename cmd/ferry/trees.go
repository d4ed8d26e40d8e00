package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"

	"github.com/ferryml/ferry/internal/backend/trees"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/repository"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// treesBackend serves XGBoost JSON (model.json) and LightGBM text (model.txt) models
// with the pure-Go trees backend, as `backend: "trees"` (or "tree"). A model folder without a
// config gets it when a version folder holds either file. Config parameters:
//
//   - model_type: "xgboost_json" or "lightgbm" (Triton FIL's names), picking the file
//     (model.json or model.txt) when default_model_filename is not set; the platform
//     ("xgboost", "lightgbm") may say the same. Without either, model.json is tried,
//     then model.txt, and the format is read from the content.
//   - output_margin: "true" returns raw margins instead of probabilities (or exp(...)).
//   - threads: goroutines one batch is split across; by default the cores shared among
//     the model's instances, so instances × threads ≤ cores.
func treesBackend() repository.Backend {
	return repository.Backend{
		// One single-threaded instance per core: leaves splits a batch over goroutines
		// that wait for the slowest, so under load from the request handling around it
		// one instance per core serves 16-row requests 1.4x as fast (BenchmarkTreesServerVsLeaves).
		Aliases:          []string{"tree"},
		DefaultInstances: runtime.NumCPU(),
		DefaultFilename:  trees.FilenameXGBoost,
		ModelFile:        treesModelFile,
		Inspect:          treesInspect,
		Open: func(_ context.Context, path string, cfg *inference.ModelConfig) (scheduler.Instance, error) {
			opts, err := treesOptions(cfg)
			if err != nil {
				return nil, err
			}
			return trees.Open(path, opts)
		},
	}
}

// treesModelFile picks model.json or model.txt in vdir ("" when neither applies).
func treesModelFile(vdir string, cfg *inference.ModelConfig) string {
	if f, err := treesFormat(cfg); err == nil && f != trees.Unknown {
		return f.Filename()
	}
	for _, name := range []string{trees.FilenameXGBoost, trees.FilenameLightGBM} {
		if fileIsThere(filepath.Join(vdir, name)) {
			return name
		}
	}
	return ""
}

// treesInspect reads the model's width for auto-complete: input__0 [-1, features],
// output__0 [-1, outputs], FP32 (FP64 accepted for either), max_batch_size
// trees.DefaultMaxBatchSize.
func treesInspect(path string) (modelconfig.IO, error) {
	m, err := trees.Load(path, trees.Unknown)
	if err != nil {
		return modelconfig.IO{}, err
	}
	return modelconfig.IO{
		Inputs:       []modelconfig.TensorInfo{{Name: trees.InputName, DType: tensor.FP32, Shape: tensor.Shape{-1, int64(m.NumFeatures())}}},
		Outputs:      []modelconfig.TensorInfo{{Name: trees.OutputName, DType: tensor.FP32, Shape: tensor.Shape{-1, int64(m.NumOutputs())}}},
		MaxBatchSize: trees.DefaultMaxBatchSize,
		Accepts:      map[string][]tensor.DType{trees.InputName: {tensor.FP64}, trees.OutputName: {tensor.FP64}},
	}, nil
}

// treesFormat reads the model_type parameter, else the platform; Unknown when neither
// is set.
func treesFormat(cfg *inference.ModelConfig) (trees.Format, error) {
	if p, ok := modelconfig.Param(cfg, "model_type"); ok {
		f, err := trees.ParseFormat(p)
		if err != nil {
			return trees.Unknown, modelconfig.ParamCause("model_type", err)
		}
		return f, nil
	}
	if pl := cfg.GetPlatform(); pl != "" {
		f, err := trees.ParseFormat(pl)
		if err != nil {
			return trees.Unknown, fmt.Errorf("platform: %w", err)
		}
		return f, nil
	}
	return trees.Unknown, nil
}

// treesOptions turns the complete config into the instance's options.
func treesOptions(cfg *inference.ModelConfig) (trees.Options, error) {
	var opts trees.Options
	var err error
	if opts.Format, err = treesFormat(cfg); err != nil {
		return opts, err
	}
	if opts.OutputMargin, err = modelconfig.ParamBool(cfg, "output_margin", false); err != nil {
		return opts, err
	}
	// instances × threads ≤ cores, unless the threads parameter says otherwise
	if opts.Threads, err = modelconfig.ParamInt(cfg, "threads", modelconfig.CoresPerInstance(cfg), 1, math.MaxInt); err != nil {
		return opts, err
	}
	for _, out := range cfg.GetOutput() {
		if out.GetName() == trees.OutputName {
			opts.OutputDType = modelconfig.DType(out.GetDataType())
		}
	}
	return opts, nil
}

func fileIsThere(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}
