package trees

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/dmitryikh/leaves"

	"github.com/ferryml/ferry/internal/explain"
)

// Format is a model file format the backend reads.
type Format int

// The formats. Unknown is the zero value: detect from the file's content.
const (
	Unknown     Format = iota
	XGBoostJSON        // XGBoost ≥ 1.0 JSON model (Booster.save_model("model.json"))
	LightGBM           // LightGBM text model (Booster.save_model("model.txt"))
)

// Default file names in a version folder, one per format.
const (
	FilenameXGBoost  = "model.json"
	FilenameLightGBM = "model.txt"
)

func (f Format) String() string {
	switch f {
	case XGBoostJSON:
		return "xgboost_json"
	case LightGBM:
		return "lightgbm"
	}
	return "unknown"
}

// Filename is the default file name of the format's models.
func (f Format) Filename() string {
	if f == LightGBM {
		return FilenameLightGBM
	}
	return FilenameXGBoost
}

// ParseFormat reads a model type as a config names it: Triton FIL's model_type values
// "xgboost_json" and "lightgbm", or the platform names "xgboost" and "lightgbm_text".
// (FIL's "xgboost" is XGBoost's legacy binary format, which this backend does not read;
// for a platform name "xgboost" is the natural word, so it means JSON here.)
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "xgboost_json", "xgboost":
		return XGBoostJSON, nil
	case "lightgbm", "lightgbm_text":
		return LightGBM, nil
	}
	return Unknown, fmt.Errorf("%q is not a tree model type (want xgboost_json or lightgbm)", s)
}

// Detect tells the two formats apart by content: an XGBoost JSON model is a JSON object,
// a LightGBM text model starts with its "tree" header line.
func Detect(data []byte) (Format, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case bytes.HasPrefix(trimmed, []byte("{")):
		return XGBoostJSON, nil
	case bytes.HasPrefix(trimmed, []byte("tree")):
		return LightGBM, nil
	}
	return Unknown, errors.New("neither an XGBoost JSON model (a JSON object) nor a LightGBM text model (starts with \"tree\")")
}

// Model is one loaded tree ensemble. Predictions come from leaves as raw margins; the
// objective's link (sigmoid, softmax, exp, ...) is applied here, so one code path
// serves both formats and every objective, and margins are available on request.
// A Model is immutable after Load and safe for concurrent use.
type Model struct {
	format    Format
	objective string // as the model file names it
	ens       *leaves.Ensemble
	features  int
	outputs   int
	bias      []float64 // added to each row's raw margins (XGBoost's base score); nil: none
	link      link
	// float32Features: XGBoost compares features as float32 (its DMatrix stores float32),
	// so FP64 inputs are rounded to float32 first to split exactly as XGBoost does.
	float32Features bool
	// shap is the node-level structure for exact explanations (TreeSHAP); shapErr says
	// why there is none (a model without node covers, categorical splits, ...).
	shap    *explain.Ensemble
	shapErr error
}

// Load reads the model file at path, detecting its format from the content; a
// non-Unknown want must agree with what is found.
func Load(path string, want Format) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Parse(data, want)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Parse reads a model from its file content (see Load).
func Parse(data []byte, want Format) (*Model, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // a byte-order mark some editors add
	f, err := Detect(data)
	if err != nil {
		return nil, err
	}
	if want != Unknown && want != f {
		return nil, fmt.Errorf("the model type is %s but the file is a %s model", want, f)
	}
	parse := parseLightGBM
	if f == XGBoostJSON {
		parse = parseXGBoost
	}
	m, err := parse(data)
	if err != nil {
		return nil, err
	}
	m.shap, m.shapErr = structure(data, m) // structure.go: a model without covers still serves
	return m, nil
}

// Format is the model's file format.
func (m *Model) Format() Format { return m.format }

// Objective is the training objective the model file names ("reg:squarederror",
// "multiclass num_class:3", ...); it decides the link applied to the margins.
func (m *Model) Objective() string { return m.objective }

// NumFeatures is the width of one input row.
func (m *Model) NumFeatures() int { return m.features }

// NumOutputs is the width of one output row: 1 for regression and binary
// classification, the number of classes for multiclass models.
func (m *Model) NumOutputs() int { return m.outputs }

// Predict computes the outputs of nrows rows of features (row-major, NumFeatures per
// row) into out (NumOutputs per row). With margin the raw scores are returned,
// without the objective's link. threads > 1 splits the rows across that many
// goroutines (leaves does it in chunks of 16 rows).
func (m *Model) Predict(vals []float64, nrows int, out []float64, margin bool, threads int) error {
	if len(vals) != nrows*m.features {
		return fmt.Errorf("%d values for %d rows of %d features", len(vals), nrows, m.features)
	}
	if len(out) != nrows*m.outputs {
		return fmt.Errorf("output buffer of %d for %d rows of %d outputs", len(out), nrows, m.outputs)
	}
	if nrows == 0 {
		return nil
	}
	if err := m.ens.PredictDense(vals, nrows, m.features, out, 0, max(threads, 1)); err != nil {
		return err
	}
	for r := range nrows {
		row := out[r*m.outputs : (r+1)*m.outputs]
		for k, b := range m.bias {
			row[k] += b
		}
		if !margin {
			m.link.apply(row)
		}
	}
	return nil
}

// Leaves is the underlying leaves ensemble (raw margins, without the base score of an
// XGBoost model): for benchmarks that call leaves directly.
func (m *Model) Leaves() *leaves.Ensemble { return m.ens }
