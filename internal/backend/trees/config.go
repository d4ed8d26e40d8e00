package trees

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/tensor"
)

// The engine describes itself to the model repository here: which file a version
// folder holds, what auto-complete reads from it, and the options a config's
// parameters ask for (cmd/ferry only lists it in its table). Config parameters:
//
//   - model_type: "xgboost_json" or "lightgbm" (Triton FIL's names), picking the file
//     (model.json or model.txt) when default_model_filename is not set; the platform
//     ("xgboost", "lightgbm") may say the same. Without either, model.json is tried,
//     then model.txt, and the format is read from the content.
//   - output_margin: "true" returns raw margins instead of probabilities (or exp(...)).
//   - threads: goroutines one batch is split across; by default the cores shared among
//     the model's instances, so instances × threads ≤ cores.

// ModelFile picks model.json or model.txt in vdir ("" when neither applies).
func ModelFile(vdir string, cfg *inference.ModelConfig) string {
	if f, err := formatOf(cfg); err == nil && f != Unknown {
		return f.Filename()
	}
	for _, name := range []string{FilenameXGBoost, FilenameLightGBM} {
		if fileIsThere(filepath.Join(vdir, name)) {
			return name
		}
	}
	return ""
}

// Inspect reads the model's width for auto-complete: input__0 [-1, features],
// output__0 [-1, outputs], FP32 (FP64 accepted for either), max_batch_size
// DefaultMaxBatchSize.
func Inspect(path string) (modelconfig.IO, error) {
	m, err := Load(path, Unknown)
	if err != nil {
		return modelconfig.IO{}, err
	}
	return modelconfig.IO{
		Inputs:       []modelconfig.TensorInfo{{Name: InputName, DType: tensor.FP32, Shape: tensor.Shape{-1, int64(m.NumFeatures())}}},
		Outputs:      []modelconfig.TensorInfo{{Name: OutputName, DType: tensor.FP32, Shape: tensor.Shape{-1, int64(m.NumOutputs())}}},
		MaxBatchSize: DefaultMaxBatchSize,
		Accepts:      map[string][]tensor.DType{InputName: {tensor.FP64}, OutputName: {tensor.FP64}},
	}, nil
}

// formatOf reads the model_type parameter, else the platform; Unknown when neither
// is set.
func formatOf(cfg *inference.ModelConfig) (Format, error) {
	if p, ok := modelconfig.Param(cfg, "model_type"); ok {
		f, err := ParseFormat(p)
		if err != nil {
			return Unknown, modelconfig.ParamCause("model_type", err)
		}
		return f, nil
	}
	if pl := cfg.GetPlatform(); pl != "" {
		f, err := ParseFormat(pl)
		if err != nil {
			return Unknown, fmt.Errorf("platform: %w", err)
		}
		return f, nil
	}
	return Unknown, nil
}

// OptionsFromConfig turns the complete config into the instance's options.
func OptionsFromConfig(cfg *inference.ModelConfig) (Options, error) {
	var opts Options
	var err error
	if opts.Format, err = formatOf(cfg); err != nil {
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
		if out.GetName() == OutputName {
			opts.OutputDType = modelconfig.DType(out.GetDataType())
		}
	}
	return opts, nil
}

func fileIsThere(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}
