package drift

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferryml/ferry/internal/duration"

	"github.com/ferryml/ferry/internal/monitor/drift/stats"
)

// Config is the drift monitor's static configuration (snake_case JSON/YAML, loaded
// with sigs.k8s.io/yaml).
type Config struct {
	// Window is how live traffic is cut: every Count rows or every Duration.
	Window WindowConfig `json:"window"`
	// DriftShare: a window has dataset drift when the share of drifted features among
	// those with enough data is ≥ DriftShare (Evidently's 0.5 when 0).
	DriftShare float64 `json:"drift_share,omitempty"`
	// MinRows: a feature with fewer valid values in the window (or baseline) reports
	// insufficient data (10 when 0).
	MinRows int64 `json:"min_rows,omitempty"`
	// Queue is how many records may wait for the binning goroutine; more are dropped
	// and counted (1024 when 0).
	Queue int `json:"queue,omitempty"`
	// MaxRowsPerSecond bounds the rows of one model binned per second: a burst of up
	// to that many rows is binned whole, and past it rows are kept at that rate,
	// evenly in time, the others counted as sampled out. A window by count then takes
	// longer to fill, never more CPU: binning a 256-feature row costs ~4-25 µs, as
	// much as serving it. Default 2000; -1: every row.
	MaxRowsPerSecond int64 `json:"max_rows_per_second,omitempty"`
	// Models to watch; a model absent here is not watched.
	Models map[string]ModelConfig `json:"models"`
}

// WindowConfig cuts a stream by rows or by time; exactly one is set.
type WindowConfig struct {
	Count    int64    `json:"count,omitempty"`
	Duration Duration `json:"duration,omitempty"`
}

// ModelConfig is one watched model.
type ModelConfig struct {
	// Baseline is a file to build the baseline from; without one, ReferenceWindow's
	// first rows become the baseline, or one is set later with SetBaseline.
	Baseline *BaselineSource `json:"baseline,omitempty"`
	// ReferenceWindow: the first Count rows (or first Duration) of live traffic become
	// the baseline when no baseline is set.
	ReferenceWindow *WindowConfig `json:"reference_window,omitempty"`
	// Features sets per-feature method, threshold and kind; the key "*" is the default.
	Features map[string]FeatureConfig `json:"features,omitempty"`
	// Names renames a tensor's row columns in order (tensor name → feature names), so
	// live tensors match a baseline's column names.
	Names map[string][]string `json:"names,omitempty"`
}

// BaselineSource is a baseline file.
type BaselineSource struct {
	Path string `json:"path"`
	// Format is csv, jsonl, parquet or profile (our JSON); from the extension when "".
	Format string `json:"format,omitempty"`
}

// FeatureConfig overrides a feature's defaults.
type FeatureConfig struct {
	// Method is a stats.Method name; "" or "auto" uses Evidently's choice (§1.4).
	Method string `json:"method,omitempty"`
	// Threshold: p-value α for tests, distance threshold otherwise; the method's
	// default when nil.
	Threshold *float64 `json:"threshold,omitempty"`
	// Kind "categorical" reads a numeric feature's values as categories.
	Kind Kind `json:"kind,omitempty"`
	// Ignore leaves the feature out of reports.
	Ignore bool `json:"ignore,omitempty"`
}

// DefaultMaxRowsPerSecond is Config.MaxRowsPerSecond's default.
const DefaultMaxRowsPerSecond = 2000

// Duration is a time.Duration written "1m", "30s" (or a number of seconds).
type Duration = duration.Duration

func (c *Config) withDefaults() Config {
	out := *c
	if out.DriftShare == 0 {
		out.DriftShare = 0.5
	}
	if out.MinRows == 0 {
		out.MinRows = 10
	}
	if out.MaxRowsPerSecond == 0 {
		out.MaxRowsPerSecond = DefaultMaxRowsPerSecond
	}
	if out.Queue == 0 {
		out.Queue = 1024
	}
	return out
}

// Validate reports every configuration error at once.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Window.validate("window"); err != nil {
		errs = append(errs, err)
	}
	if c.DriftShare < 0 || c.DriftShare > 1 || math.IsNaN(c.DriftShare) {
		errs = append(errs, fmt.Errorf("drift_share: must be in (0, 1], got %v", c.DriftShare))
	}
	if c.MinRows < 0 || c.Queue < 0 {
		errs = append(errs, fmt.Errorf("min_rows and queue: must be ≥ 0, got %d and %d", c.MinRows, c.Queue))
	}
	for name, mc := range c.Models {
		errs = append(errs, mc.validate("models."+name))
	}
	return errors.Join(errs...)
}

func (w WindowConfig) validate(at string) error {
	if (w.Count > 0) == (w.Duration > 0) || w.Count < 0 || w.Duration < 0 {
		return fmt.Errorf("%s: set exactly one of count (rows) or duration, got count %d, duration %v", at, w.Count, time.Duration(w.Duration))
	}
	return nil
}

func (mc ModelConfig) validate(at string) error {
	var errs []error
	if mc.ReferenceWindow != nil {
		errs = append(errs, mc.ReferenceWindow.validate(at+".reference_window"))
		if mc.ReferenceWindow.Count > SampleCap {
			errs = append(errs, fmt.Errorf("%s.reference_window.count: at most %d rows, got %d", at, SampleCap, mc.ReferenceWindow.Count))
		}
	}
	if mc.Baseline != nil {
		if _, err := mc.Baseline.format(); err != nil {
			errs = append(errs, fmt.Errorf("%s.baseline: %w", at, err))
		}
	}
	for f, fc := range mc.Features {
		if fc.Method != "" && fc.Method != "auto" {
			if _, err := stats.ParseMethod(fc.Method); err != nil {
				errs = append(errs, fmt.Errorf("%s.features[%q].method: %w", at, f, err))
			}
		}
		if fc.Kind != "" && fc.Kind != Numeric && fc.Kind != Categorical {
			errs = append(errs, fmt.Errorf("%s.features[%q].kind: want numeric or categorical, got %q", at, f, fc.Kind))
		}
		if t := fc.Threshold; t != nil && (*t < 0 || math.IsNaN(*t) || math.IsInf(*t, 0)) {
			errs = append(errs, fmt.Errorf("%s.features[%q].threshold: must be finite and ≥ 0, got %v", at, f, *t))
		}
	}
	return errors.Join(errs...)
}

func (b *BaselineSource) format() (string, error) {
	f := b.Format
	if f == "" {
		f = strings.TrimPrefix(filepath.Ext(b.Path), ".")
		if f == "json" {
			f = "profile"
		}
	}
	switch f {
	case "csv", "jsonl", "parquet", "profile":
		return f, nil
	}
	return "", fmt.Errorf("format %q of %q: want csv, jsonl, parquet or profile", f, b.Path)
}

// options are the profile-reading options a model's config implies.
func (mc ModelConfig) options() ProfileOptions {
	opt := ProfileOptions{Categorical: map[string]bool{}}
	for f, fc := range mc.Features {
		if fc.Kind == Categorical {
			opt.Categorical[f] = true
		}
	}
	return opt
}

// LoadBaseline reads a baseline file into a profile.
func LoadBaseline(src BaselineSource, opt ProfileOptions) (*Profile, error) {
	format, err := src.format()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(src.Path)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	defer f.Close()
	var p *Profile
	switch format {
	case "csv":
		p, err = ProfileFromCSV(f, opt)
	case "jsonl":
		p, err = ProfileFromJSONL(f, opt)
	case "profile":
		p, err = ReadProfile(f)
	case "parquet":
		var st os.FileInfo
		if st, err = f.Stat(); err == nil {
			p, err = ProfileFromParquet(f, st.Size(), opt)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Path, err)
	}
	return p, nil
}

// featureConfig resolves a feature's settings: its own entry, else "*".
func (mc ModelConfig) featureConfig(name string) FeatureConfig {
	if fc, ok := mc.Features[name]; ok {
		return fc
	}
	return mc.Features["*"]
}
