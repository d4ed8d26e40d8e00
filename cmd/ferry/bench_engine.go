package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/bench"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/tensor"
)

// runEngineBench measures the model in process, as `ferry serve` would run it.
func runEngineBench(ctx context.Context, cfg benchConfig, rt *onnx.Runtime, stdout, stderr io.Writer) error {
	version, err := engineVersion(cfg.engineDir, cfg.version)
	if err != nil {
		return err
	}
	mcfg, hasConfig, err := engineConfig(cfg.engineDir)
	if err != nil {
		return err
	}
	path := filepath.Join(cfg.engineDir, version, "model.onnx")
	mio, err := rt.Inspect(path)
	if err != nil {
		return err
	}
	m := bench.Model{Name: filepath.Base(filepath.Clean(cfg.engineDir)), Version: version}
	for _, in := range mio.Inputs {
		m.Inputs = append(m.Inputs, bench.Input{Name: in.Name, DType: in.DType, Shape: in.Shape})
	}
	m.MaxBatchSize = engineMaxBatch(mcfg, hasConfig, m.Inputs, cfg.maxBatch)
	opts, err := commonOptions(cfg)
	if err != nil {
		return err
	}
	sessOpts, err := onnx.OptionsFromConfig(mcfg, cfg.intraOp, true)
	if err != nil {
		return err
	}
	n := cfg.engineInstances
	if n <= 0 {
		n = modelconfig.Instances(mcfg)
	}
	engines := make([]bench.Engine, n)
	for i := range engines {
		sess, err := rt.Open(path, sessOpts)
		if err != nil {
			return err
		}
		defer sess.Close()
		engines[i] = sessionEngine{sess}
	}
	sizes := []int{1}
	if m.MaxBatchSize > 0 {
		sizes = bench.PowersOfTwo(m.MaxBatchSize)
	}
	rep, err := bench.RunEngine(ctx, engines, m, bench.EngineOptions{
		Name:       fmt.Sprintf("onnxruntime %s in process, %d session(s) side by side, %d intra-op threads each", rt.Version(), n, sessOpts.IntraOpThreads),
		BatchSizes: sizes, Duration: opts.Duration, Warmup: opts.Warmup, Shapes: opts.Shapes, Data: opts.Data,
		Progress: cfg.pa.progress(stderr, func(l bench.Level) string { return fmt.Sprintf("batch size %d", l.BatchSize) }),
	})
	if err != nil {
		return err
	}
	return writeReport(rep, cfg, stdout)
}

// sessionEngine adapts an ONNX Runtime session to bench.Engine.
type sessionEngine struct{ s *onnx.Session }

func (e sessionEngine) Execute(ctx context.Context, in []*tensor.Tensor) error {
	_, err := e.s.Execute(ctx, in, nil)
	return err
}

// engineVersion is the requested version, else the highest numbered folder holding a
// model.onnx, as the default version policy (latest 1) serves.
func engineVersion(dir, want string) (string, error) {
	if want != "" {
		return want, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("--engine: %w", err)
	}
	best := int64(-1)
	for _, e := range entries {
		v, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || v <= best || !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "model.onnx")); err == nil {
			best = v
		}
	}
	if best < 0 {
		return "", fmt.Errorf("--engine %s: no version folder with a model.onnx", dir)
	}
	return strconv.FormatInt(best, 10), nil
}

// engineConfig reads MODEL_DIR/config.pbtxt; a missing one is an empty config.
func engineConfig(dir string) (cfg *inference.ModelConfig, found bool, err error) {
	text, err := os.ReadFile(filepath.Join(dir, "config.pbtxt"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		cfg = &inference.ModelConfig{}
	case err != nil:
		return nil, false, err
	default:
		if cfg, err = modelconfig.Parse(text); err != nil {
			return nil, false, fmt.Errorf("%s: %w", dir, err)
		}
		found = true
	}
	// The server's defaults (ONNX Runtime when the config names no backend), so instances
	// and threads are counted as serve counts them: a group without a count has 2.
	modelconfig.SetDefaults(cfg, filepath.Base(filepath.Clean(dir)))
	return cfg, found, nil
}

// engineMaxBatch is --max-batch, else the config's max_batch_size, else 64 when every
// input's first dimension is variable (a model that batches but has no config).
func engineMaxBatch(cfg *inference.ModelConfig, hasConfig bool, inputs []bench.Input, flag int) int {
	if flag > 0 {
		return flag
	}
	if hasConfig {
		return int(cfg.GetMaxBatchSize()) // 0: the model does not batch
	}
	if len(inputs) == 0 {
		return 0
	}
	for _, in := range inputs {
		if len(in.Shape) == 0 || in.Shape[0] != -1 {
			return 0
		}
	}
	return 64
}
