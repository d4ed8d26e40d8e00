package v2http

import (
	"context"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
)

// fakeCore is a hand-written Core: a fixed set of models, recorded calls, and an infer
// function tests can replace (by default it echoes the inputs back as outputs).
type fakeCore struct {
	mu       sync.Mutex
	live     bool
	ready    bool
	limits   core.Limits
	models   map[string]*core.ModelMetadata
	configs  map[string]*inference.ModelConfig
	notReady map[string]bool
	stats    []core.ModelStats
	index    []core.ModelIndexEntry

	lastReq   *core.InferRequest
	lastStats [2]string
	lastIndex bool
	loads     map[string]core.LoadOptions
	unloads   []string
	inferFn   func(*core.InferRequest) (*core.InferResponse, error)
}

var _ Core = (*fakeCore)(nil)

func newFakeCore() *fakeCore {
	return &fakeCore{
		live:   true,
		ready:  true,
		limits: core.DefaultLimits(),
		models: map[string]*core.ModelMetadata{
			"echo": {
				Name: "echo", Versions: []string{"1", "2"}, Platform: "ferry_echo",
				Inputs:  []core.TensorMetadata{{Name: "x", DataType: "FP32", Shape: []int64{-1, 4}}},
				Outputs: []core.TensorMetadata{{Name: "x", DataType: "FP32", Shape: []int64{-1, 4}}},
			},
			"text": {
				Name: "text", Versions: []string{"1"}, Platform: "ferry_echo",
				Inputs:  []core.TensorMetadata{{Name: "s", DataType: "BYTES", Shape: []int64{1}}},
				Outputs: []core.TensorMetadata{{Name: "s", DataType: "BYTES", Shape: []int64{1}}},
			},
			"idle": {Name: "idle", Versions: []string{"1"}, Platform: "onnxruntime_onnx"},
		},
		configs: map[string]*inference.ModelConfig{
			"echo": {
				Name: "echo", Backend: "echo", MaxBatchSize: 8,
				Input:  []*inference.ModelInput{{Name: "x", DataType: inference.DataType_TYPE_FP32, Dims: []int64{4}}},
				Output: []*inference.ModelOutput{{Name: "x", DataType: inference.DataType_TYPE_FP32, Dims: []int64{4}}},
			},
			"text": {
				Name: "text", Backend: "echo",
				Input:  []*inference.ModelInput{{Name: "s", DataType: inference.DataType_TYPE_STRING, Dims: []int64{1}}},
				Output: []*inference.ModelOutput{{Name: "s", DataType: inference.DataType_TYPE_STRING, Dims: []int64{1}}},
			},
		},
		notReady: map[string]bool{"idle": true},
		stats: []core.ModelStats{{
			Name: "echo", Version: "1",
			LastInference:  time.UnixMilli(1767225600123),
			InferenceCount: 12, ExecutionCount: 3,
			Success:      core.Duration{Count: 4, Total: 4 * time.Millisecond},
			Queue:        core.Duration{Count: 4, Total: 40 * time.Microsecond},
			ComputeInfer: core.Duration{Count: 3, Total: 3 * time.Millisecond},
			Batches: []core.BatchStats{{
				BatchSize:    4,
				ComputeInfer: core.Duration{Count: 3, Total: 3 * time.Millisecond},
			}},
		}, {Name: "idle", Version: "1"}},
		index: []core.ModelIndexEntry{
			{Name: "echo", Version: "1", State: core.StateReady},
			{Name: "idle", Version: "1", State: core.StateUnavailable, Reason: "unloaded"},
			{Name: "new", State: core.StateUnknown},
		},
		loads: map[string]core.LoadOptions{},
	}
}

func (f *fakeCore) Live() bool          { return f.live }
func (f *fakeCore) Ready() bool         { return f.ready }
func (f *fakeCore) Limits() core.Limits { return f.limits }

func (f *fakeCore) Metadata() core.ServerMetadata {
	return core.ServerMetadata{Name: "ferry", Version: "0.1.0", Extensions: []string{"binary_tensor_data", "statistics", "model_repository"}}
}

func (f *fakeCore) model(model, version string) (*core.ModelMetadata, error) {
	md, ok := f.models[model]
	if !ok {
		return nil, &core.NotFoundError{Model: model, Version: version}
	}
	if version != "" {
		found := false
		for _, v := range md.Versions {
			found = found || v == version
		}
		if !found {
			return nil, &core.NotFoundError{Model: model, Version: version}
		}
	}
	return md, nil
}

func (f *fakeCore) ModelMetadata(_ context.Context, model, version string) (*core.ModelMetadata, error) {
	return f.model(model, version)
}

func (f *fakeCore) ModelReady(_ context.Context, model, version string) (bool, error) {
	if _, err := f.model(model, version); err != nil {
		return false, err
	}
	return !f.notReady[model], nil
}

func (f *fakeCore) ModelConfig(_ context.Context, model, version string) (*inference.ModelConfig, error) {
	if _, err := f.model(model, version); err != nil {
		return nil, err
	}
	cfg, ok := f.configs[model]
	if !ok {
		return &inference.ModelConfig{Name: model}, nil
	}
	return cfg, nil
}

func (f *fakeCore) ModelStatistics(_ context.Context, model, version string) ([]core.ModelStats, error) {
	f.mu.Lock()
	f.lastStats = [2]string{model, version}
	f.mu.Unlock()
	if model == "" {
		return f.stats, nil
	}
	if _, err := f.model(model, version); err != nil {
		return nil, err
	}
	var out []core.ModelStats
	for _, s := range f.stats {
		if s.Name == model && (version == "" || s.Version == version) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeCore) RepositoryIndex(_ context.Context, readyOnly bool) ([]core.ModelIndexEntry, error) {
	f.mu.Lock()
	f.lastIndex = readyOnly
	f.mu.Unlock()
	if !readyOnly {
		return f.index, nil
	}
	var out []core.ModelIndexEntry
	for _, e := range f.index {
		if e.State == core.StateReady {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *fakeCore) LoadModel(_ context.Context, model string, opts core.LoadOptions) error {
	if model == "broken" {
		return core.Unavailablef("failed to load 'broken': no model file")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads[model] = opts
	return nil
}

func (f *fakeCore) UnloadModel(_ context.Context, model string, dependents bool) error {
	if _, err := f.model(model, ""); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if dependents {
		model += " with dependents"
	}
	f.unloads = append(f.unloads, model)
	return nil
}

func (f *fakeCore) Infer(ctx context.Context, req *core.InferRequest) (*core.InferResponse, error) {
	f.mu.Lock()
	f.lastReq = req
	fn := f.inferFn
	f.mu.Unlock()
	if _, err := f.model(req.Model, req.Version); err != nil {
		return nil, err
	}
	if req.Prepare != nil { // as core does, from the version it picked
		md, err := f.ModelMetadata(ctx, req.Model, req.Version)
		if err != nil {
			return nil, err
		}
		cfg, err := f.ModelConfig(ctx, req.Model, req.Version)
		if err != nil {
			return nil, err
		}
		if err := req.Prepare(md, cfg.GetMaxBatchSize() > 0); err != nil {
			return nil, err
		}
	}
	if fn != nil {
		return fn(req)
	}
	return echo(req)
}

// echo returns the inputs as outputs of the same names, filtered by the requested
// outputs when there are any.
func echo(req *core.InferRequest) (*core.InferResponse, error) {
	resp := &core.InferResponse{Model: req.Model, Version: req.Version, ID: req.ID}
	if resp.Version == "" {
		resp.Version = "1"
	}
	if len(req.Outputs) == 0 {
		resp.Outputs = req.Inputs
		return resp, nil
	}
	for _, o := range req.Outputs {
		found := false
		for _, t := range req.Inputs {
			if t.Name == o.Name {
				resp.Outputs = append(resp.Outputs, t)
				found = true
			}
		}
		if !found {
			return nil, core.Invalidf("unexpected inference output %q for model %q", o.Name, req.Model)
		}
	}
	return resp, nil
}

func (f *fakeCore) last() *core.InferRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastReq
}

func (f *fakeCore) setInfer(fn func(*core.InferRequest) (*core.InferResponse, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inferFn = fn
}

// tensorOf builds a tensor for test expectations.
func tensorOf(name string, dt tensor.DType, shape []int64, data []byte) *tensor.Tensor {
	return &tensor.Tensor{Name: name, DType: dt, Shape: shape, Data: data}
}
