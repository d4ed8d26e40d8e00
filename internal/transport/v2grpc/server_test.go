package v2grpc

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
)

// checkCall fails the test unless err has the wanted code and message.
func checkCall(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code || st.Message() != msg {
		t.Errorf("%s: got %v %q, want %v %q", what, st.Code(), st.Message(), code, msg)
	}
}

func diffProto(t *testing.T, what string, got, want proto.Message) {
	t.Helper()
	if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func TestServerRPCs(t *testing.T) {
	fc := &fakeCore{}
	c, _ := newTestClient(t, fc, core.Limits{})
	ctx := t.Context()

	live, err := c.ServerLive(ctx, &inference.ServerLiveRequest{})
	if err != nil || !live.GetLive() {
		t.Errorf("ServerLive = %v, %v", live, err)
	}
	ready, err := c.ServerReady(ctx, &inference.ServerReadyRequest{})
	if err != nil || !ready.GetReady() {
		t.Errorf("ServerReady = %v, %v", ready, err)
	}
	fc.notReady.Store(true)
	ready, err = c.ServerReady(ctx, &inference.ServerReadyRequest{})
	if err != nil || ready.GetReady() {
		t.Errorf("ServerReady when core is not ready = %v, %v", ready, err)
	}

	md, err := c.ServerMetadata(ctx, &inference.ServerMetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	diffProto(t, "ServerMetadata", md, &inference.ServerMetadataResponse{
		Name: "ferry", Version: "0.1.0", Extensions: []string{"model_repository", "statistics"},
	})
}

func TestModelRPCs(t *testing.T) {
	c, _ := newTestClient(t, &fakeCore{}, core.Limits{})
	ctx := t.Context()

	for _, tc := range []struct {
		model, version string
		want           bool
	}{{"echo", "", true}, {"echo", "1", true}, {"loading", "", false}} {
		res, err := c.ModelReady(ctx, &inference.ModelReadyRequest{Name: tc.model, Version: tc.version})
		if err != nil || res.GetReady() != tc.want {
			t.Errorf("ModelReady(%q, %q) = %v, %v; want ready=%v", tc.model, tc.version, res, err, tc.want)
		}
	}
	// Unknown models and versions, and names no model can have, are not ready, as in
	// Triton: OK with ready=false, never NOT_FOUND.
	for _, tc := range []struct{ model, version string }{{"nope", ""}, {"echo", "7"}, {"", ""}, {"../echo", ""}} {
		res, err := c.ModelReady(ctx, &inference.ModelReadyRequest{Name: tc.model, Version: tc.version})
		if err != nil || res.GetReady() {
			t.Errorf("ModelReady(%q, %q) = %v, %v; want ready=false and no error", tc.model, tc.version, res, err)
		}
	}

	md, err := c.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	diffProto(t, "ModelMetadata", md, &inference.ModelMetadataResponse{
		Name: "echo", Versions: []string{"1"}, Platform: "onnxruntime_onnx",
		Inputs:  []*inference.ModelMetadataResponse_TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 4}}},
		Outputs: []*inference.ModelMetadataResponse_TensorMetadata{{Name: "y", Datatype: "BYTES", Shape: []int64{-1}}},
	})
	_, err = c.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: "nope"})
	checkCall(t, "ModelMetadata(nope)", err, codes.NotFound, "Request for unknown model: 'nope' is not found")

	cfg, err := c.ModelConfig(ctx, &inference.ModelConfigRequest{Name: "echo", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	diffProto(t, "ModelConfig", cfg, &inference.ModelConfigResponse{Config: &inference.ModelConfig{
		Name: "echo", Backend: "onnxruntime", MaxBatchSize: 8,
		Input: []*inference.ModelInput{{Name: "x", DataType: inference.DataType_TYPE_FP32, Dims: []int64{4}}},
	}})
	_, err = c.ModelConfig(ctx, &inference.ModelConfigRequest{Name: "nope"})
	checkCall(t, "ModelConfig(nope)", err, codes.NotFound, "Request for unknown model: 'nope' is not found")
}

func TestModelStatistics(t *testing.T) {
	last := time.Date(2026, 3, 1, 12, 0, 0, 5e8, time.UTC)
	fc := &fakeCore{stats: []core.ModelStats{
		{
			Name: "echo", Version: "1", LastInference: last, InferenceCount: 12, ExecutionCount: 3,
			Success:       core.Duration{Count: 4, Total: 4 * time.Millisecond},
			Fail:          core.Duration{Count: 1, Total: time.Microsecond},
			Queue:         core.Duration{Count: 4, Total: 400 * time.Microsecond},
			ComputeInput:  core.Duration{Count: 3, Total: 30},
			ComputeInfer:  core.Duration{Count: 3, Total: 3 * time.Millisecond},
			ComputeOutput: core.Duration{Count: 3, Total: 60},
			Batches: []core.BatchStats{{
				BatchSize: 4, ComputeInput: core.Duration{Count: 3, Total: 30},
				ComputeInfer: core.Duration{Count: 3, Total: 3 * time.Millisecond}, ComputeOutput: core.Duration{Count: 3, Total: 60},
			}},
		},
		{Name: "loading", Version: "1"},
	}}
	c, _ := newTestClient(t, fc, core.Limits{})
	res, err := c.ModelStatistics(t.Context(), &inference.ModelStatisticsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	dur := func(n, ns uint64) *inference.StatisticDuration { return &inference.StatisticDuration{Count: n, Ns: ns} }
	diffProto(t, "ModelStatistics", res, &inference.ModelStatisticsResponse{ModelStats: []*inference.ModelStatistics{
		{
			Name: "echo", Version: "1", LastInference: uint64(last.UnixMilli()), InferenceCount: 12, ExecutionCount: 3,
			InferenceStats: &inference.InferStatistics{
				Success: dur(4, 4e6), Fail: dur(1, 1e3), Queue: dur(4, 4e5), ComputeInput: dur(3, 30),
				ComputeInfer: dur(3, 3e6), ComputeOutput: dur(3, 60), CacheHit: dur(0, 0), CacheMiss: dur(0, 0),
			},
			BatchStats: []*inference.InferBatchStatistics{{BatchSize: 4, ComputeInput: dur(3, 30), ComputeInfer: dur(3, 3e6), ComputeOutput: dur(3, 60)}},
		},
		{
			Name: "loading", Version: "1",
			InferenceStats: &inference.InferStatistics{
				Success: dur(0, 0), Fail: dur(0, 0), Queue: dur(0, 0), ComputeInput: dur(0, 0),
				ComputeInfer: dur(0, 0), ComputeOutput: dur(0, 0), CacheHit: dur(0, 0), CacheMiss: dur(0, 0),
			},
		},
	}})
	_, err = c.ModelStatistics(t.Context(), &inference.ModelStatisticsRequest{Name: "nope"})
	checkCall(t, "ModelStatistics(nope)", err, codes.NotFound, "Request for unknown model: 'nope' is not found")
}

func TestRepositoryRPCs(t *testing.T) {
	fc := &fakeCore{}
	c, _ := newTestClient(t, fc, core.Limits{})
	ctx := t.Context()

	idx, err := c.RepositoryIndex(ctx, &inference.RepositoryIndexRequest{})
	if err != nil {
		t.Fatal(err)
	}
	diffProto(t, "RepositoryIndex", idx, &inference.RepositoryIndexResponse{Models: []*inference.RepositoryIndexResponse_ModelIndex{
		{Name: "echo", Version: "1", State: "READY"},
		{Name: "loading", Version: "1", State: "UNAVAILABLE", Reason: "onnx: bad graph"},
	}})
	idx, err = c.RepositoryIndex(ctx, &inference.RepositoryIndexRequest{Ready: true})
	if err != nil || len(idx.GetModels()) != 1 {
		t.Errorf("RepositoryIndex(ready) = %v, %v", idx, err)
	}

	str := func(s string) *inference.ModelRepositoryParameter {
		return &inference.ModelRepositoryParameter{ParameterChoice: &inference.ModelRepositoryParameter_StringParam{StringParam: s}}
	}
	byt := func(b string) *inference.ModelRepositoryParameter {
		return &inference.ModelRepositoryParameter{ParameterChoice: &inference.ModelRepositoryParameter_BytesParam{BytesParam: []byte(b)}}
	}
	_, err = c.RepositoryModelLoad(ctx, &inference.RepositoryModelLoadRequest{ModelName: "plain"})
	if err != nil {
		t.Fatalf("load without parameters: %v", err)
	}
	_, err = c.RepositoryModelLoad(ctx, &inference.RepositoryModelLoadRequest{
		ModelName: "mlp",
		Parameters: map[string]*inference.ModelRepositoryParameter{
			"config":            str(`{"backend":"onnxruntime"}`),
			"file:1/model.onnx": byt("ONNX"),
		},
	})
	if err != nil {
		t.Fatalf("load with overrides: %v", err)
	}
	fc.mu.Lock()
	loads := fc.loads
	fc.mu.Unlock()
	if d := cmp.Diff(map[string]core.LoadOptions{
		"plain": {},
		"mlp":   {Config: `{"backend":"onnxruntime"}`, Files: map[string][]byte{"1/model.onnx": []byte("ONNX")}},
	}, loads); d != "" {
		t.Errorf("LoadModel calls (-want +got):\n%s", d)
	}

	for _, tc := range []struct {
		name   string
		params map[string]*inference.ModelRepositoryParameter
		msg    string
	}{
		{"config as bytes", map[string]*inference.ModelRepositoryParameter{"config": byt("{}")},
			`load parameter "config" must be a string_param holding the model configuration as JSON`},
		{"file as string", map[string]*inference.ModelRepositoryParameter{"file:1/model.onnx": str("x")},
			`load parameter "file:1/model.onnx" must be a bytes_param holding the file contents`},
		{"path escapes the model directory", map[string]*inference.ModelRepositoryParameter{"file:../x": byt("x")},
			`load parameter "file:../x": the path must be relative to the model directory, such as "file:1/model.onnx"`},
		{"absolute path", map[string]*inference.ModelRepositoryParameter{"file:/etc/passwd": byt("x")},
			`load parameter "file:/etc/passwd": the path must be relative to the model directory, such as "file:1/model.onnx"`},
		{"empty path", map[string]*inference.ModelRepositoryParameter{"file:": byt("x")},
			`load parameter "file:": the path must be relative to the model directory, such as "file:1/model.onnx"`},
		{"unknown parameter", map[string]*inference.ModelRepositoryParameter{"colour": str("red")},
			`unknown load parameter "colour"; Ferry accepts "config" and "file:<path>"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.RepositoryModelLoad(ctx, &inference.RepositoryModelLoadRequest{ModelName: "mlp", Parameters: tc.params})
			checkCall(t, "RepositoryModelLoad", err, codes.InvalidArgument, tc.msg)
		})
	}
	_, err = c.RepositoryModelLoad(ctx, &inference.RepositoryModelLoadRequest{ModelName: "broken"})
	checkCall(t, "load broken", err, codes.InvalidArgument, `load "broken": config.pbtxt: unknown field "bogus"`)

	_, err = c.RepositoryModelUnload(ctx, &inference.RepositoryModelUnloadRequest{
		ModelName:  "echo",
		Parameters: map[string]*inference.ModelRepositoryParameter{"unload_dependents": {ParameterChoice: &inference.ModelRepositoryParameter_BoolParam{BoolParam: true}}},
	})
	if err != nil {
		t.Fatalf("unload echo: %v", err)
	}
	_, err = c.RepositoryModelUnload(ctx, &inference.RepositoryModelUnloadRequest{ModelName: "nope"})
	checkCall(t, "unload nope", err, codes.NotFound, "Request for unknown model: 'nope' is not found")
	_, err = c.RepositoryModelUnload(ctx, &inference.RepositoryModelUnloadRequest{ModelName: "echo", Parameters: map[string]*inference.ModelRepositoryParameter{"force": str("yes")}})
	checkCall(t, "unload with unknown parameter", err, codes.InvalidArgument, `unknown unload parameter "force"; Ferry accepts only "unload_dependents"`)
	_, err = c.RepositoryModelUnload(ctx, &inference.RepositoryModelUnloadRequest{ModelName: "echo", Parameters: map[string]*inference.ModelRepositoryParameter{"unload_dependents": str("yes")}})
	checkCall(t, "unload_dependents as string", err, codes.InvalidArgument, `unload parameter "unload_dependents" must be a bool_param`)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if d := cmp.Diff([]string{"echo with dependents"}, fc.unloads); d != "" {
		t.Errorf("UnloadModel calls (-want +got):\n%s", d)
	}
}

func TestHealthService(t *testing.T) {
	fc := &fakeCore{}
	s := New(fc, Options{})
	h := healthgrpc.NewHealthClient(testServer(t, s))
	ctx := t.Context()
	svc := inference.GRPCInferenceService_ServiceDesc.ServiceName

	check := func(what, service string, want healthgrpc.HealthCheckResponse_ServingStatus) {
		t.Helper()
		res, err := h.Check(ctx, &healthgrpc.HealthCheckRequest{Service: service})
		if err != nil || res.GetStatus() != want {
			t.Errorf("%s: Check(%q) = %v, %v; want %v", what, service, res, err, want)
		}
	}
	check("before SetServing(true)", "", healthgrpc.HealthCheckResponse_NOT_SERVING)
	check("before SetServing(true)", svc, healthgrpc.HealthCheckResponse_NOT_SERVING)
	s.SetServing(true)
	check("serving and ready", "", healthgrpc.HealthCheckResponse_SERVING)
	check("serving and ready", svc, healthgrpc.HealthCheckResponse_SERVING)

	fc.notReady.Store(true)
	check("core not ready", "", healthgrpc.HealthCheckResponse_NOT_SERVING)
	fc.notReady.Store(false)
	check("core ready again", "", healthgrpc.HealthCheckResponse_SERVING)

	watch, err := h.Watch(ctx, &healthgrpc.HealthCheckRequest{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := watch.Recv(); err != nil || res.GetStatus() != healthgrpc.HealthCheckResponse_SERVING {
		t.Fatalf("first Watch update = %v, %v", res, err)
	}
	s.SetServing(false)
	if res, err := watch.Recv(); err != nil || res.GetStatus() != healthgrpc.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch update after SetServing(false) = %v, %v", res, err)
	}
	check("draining", svc, healthgrpc.HealthCheckResponse_NOT_SERVING)

	_, err = h.Check(ctx, &healthgrpc.HealthCheckRequest{Service: "no.such.Service"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("Check(unknown service) err = %v, want NOT_FOUND", err)
	}
}

func TestServerOptionsRaiseMessageLimits(t *testing.T) {
	s := New(&fakeCore{}, Options{Limits: core.Limits{MaxRank: 4}})
	if got, want := s.limits.MaxGRPCMessageSize, core.DefaultLimits().MaxGRPCMessageSize; got != want {
		t.Errorf("MaxGRPCMessageSize with none set = %d, want the default %d, not grpc-go's 4 MiB", got, want)
	}
	if n := len(s.ServerOptions()); n != 3 {
		t.Errorf("ServerOptions() has %d options, want receive and send limits and the codec (stream workers and the interceptors are cmd/ferry's)", n)
	}
}
