package v2grpc

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/reflection"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/transport/middleware"
)

// fakeCore is a hand-written Core. Its models:
//   - "echo": returns the inputs as outputs, and the request parameters as response
//     parameters; "slow" does the same after sleeping "delay_ms" milliseconds;
//   - "seq": echoes and records, in call order, the first INT32 of input "step";
//   - "busy" fails with ErrUnavailable, "broken" with a plain error;
//   - "loading" exists but is not ready; anything else is unknown.
type fakeCore struct {
	notReady atomic.Bool

	mu       sync.Mutex
	last     *core.InferRequest
	steps    []int32
	loads    map[string]core.LoadOptions
	unloads  []string
	readyArg bool
	stats    []core.ModelStats
	respPar  core.Parameters
}

var (
	_ Core = (*fakeCore)(nil)
	_ Core = (*core.Server)(nil) // the real one, so a signature drift fails here
)

func (f *fakeCore) Live() bool  { return true }
func (f *fakeCore) Ready() bool { return !f.notReady.Load() }
func (f *fakeCore) Metadata() core.ServerMetadata {
	return core.ServerMetadata{Name: "ferry", Version: "0.1.0", Extensions: []string{"model_repository", "statistics"}}
}
func (f *fakeCore) Limits() core.Limits { return core.DefaultLimits() }

func (f *fakeCore) known(model, version string) error {
	switch model {
	case "echo", "slow", "seq", "busy", "broken", "loading":
		if version == "" || version == "1" {
			return nil
		}
	}
	return &core.NotFoundError{Model: model, Version: version}
}

func (f *fakeCore) ModelMetadata(_ context.Context, model, version string) (*core.ModelMetadata, error) {
	if err := f.known(model, version); err != nil {
		return nil, err
	}
	return &core.ModelMetadata{
		Name: model, Versions: []string{"1"}, Platform: "onnxruntime_onnx",
		Inputs:  []core.TensorMetadata{{Name: "x", DataType: "FP32", Shape: []int64{-1, 4}}},
		Outputs: []core.TensorMetadata{{Name: "y", DataType: "BYTES", Shape: []int64{-1}}},
	}, nil
}

func (f *fakeCore) ModelReady(_ context.Context, model, version string) (bool, error) {
	if err := f.known(model, version); err != nil {
		return false, err
	}
	return model != "loading", nil
}

func (f *fakeCore) ModelConfig(_ context.Context, model, version string) (*inference.ModelConfig, error) {
	if err := f.known(model, version); err != nil {
		return nil, err
	}
	return &inference.ModelConfig{
		Name: model, Backend: "onnxruntime", MaxBatchSize: 8,
		Input: []*inference.ModelInput{{Name: "x", DataType: inference.DataType_TYPE_FP32, Dims: []int64{4}}},
	}, nil
}

func (f *fakeCore) ModelStatistics(_ context.Context, model, version string) ([]core.ModelStats, error) {
	if model != "" {
		if err := f.known(model, version); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats, nil
}

func (f *fakeCore) RepositoryIndex(_ context.Context, readyOnly bool) ([]core.ModelIndexEntry, error) {
	f.mu.Lock()
	f.readyArg = readyOnly
	f.mu.Unlock()
	idx := []core.ModelIndexEntry{{Name: "echo", Version: "1", State: core.StateReady}}
	if !readyOnly {
		idx = append(idx, core.ModelIndexEntry{Name: "loading", Version: "1", State: core.StateUnavailable, Reason: "onnx: bad graph"})
	}
	return idx, nil
}

func (f *fakeCore) LoadModel(_ context.Context, model string, opts core.LoadOptions) error {
	if model == "broken" {
		return core.Invalidf("load %q: config.pbtxt: unknown field \"bogus\"", model)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loads == nil {
		f.loads = make(map[string]core.LoadOptions)
	}
	f.loads[model] = opts
	return nil
}

func (f *fakeCore) UnloadModel(_ context.Context, model string, dependents bool) error {
	if err := f.known(model, ""); err != nil {
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
	if err := f.known(req.Model, req.Version); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.last = req
	respPar := f.respPar
	f.mu.Unlock()
	switch req.Model {
	case "busy":
		return nil, core.Unavailablef("model %q: queue is full", req.Model)
	case "broken":
		return nil, errors.New("backend exploded")
	case "slow":
		if ms, ok := req.Parameters["delay_ms"].(int64); ok {
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	case "seq":
		// Give a later request of the same sequence the chance to overtake this one
		// if the transport let it.
		time.Sleep(time.Millisecond)
		f.mu.Lock()
		for _, in := range req.Inputs {
			if in.Name == "step" && len(in.Data) >= 4 {
				f.steps = append(f.steps, int32(uint32(in.Data[0])|uint32(in.Data[1])<<8|uint32(in.Data[2])<<16|uint32(in.Data[3])<<24))
			}
		}
		f.mu.Unlock()
	}
	params := req.Parameters
	if respPar != nil {
		params = respPar
	}
	return &core.InferResponse{Model: req.Model, Version: "1", ID: req.ID, Outputs: req.Inputs, Parameters: params}, nil
}

func (f *fakeCore) lastRequest() *core.InferRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// testServer serves s on 127.0.0.1:0 and returns a client connection to it; both stop
// when the test ends.
func testServer(t *testing.T, s *Server) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Built as cmd/ferry builds the server's (routes.go): the service's options, the
	// interceptor chain, and server reflection beside the service.
	log := slog.New(slog.DiscardHandler)
	gs := grpc.NewServer(append(s.ServerOptions(),
		grpc.ChainUnaryInterceptor(middleware.LogUnary(log)), grpc.ChainStreamInterceptor(middleware.LogStream(log)))...)
	s.Register(gs)
	reflection.Register(gs)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return conn
}

// newTestClient starts a Server over fc with the given limits (zero: core's).
func newTestClient(t *testing.T, fc *fakeCore, lim core.Limits) (inference.GRPCInferenceServiceClient, *Server) {
	t.Helper()
	s := New(fc, Options{Limits: lim})
	return inference.NewGRPCInferenceServiceClient(testServer(t, s)), s
}
