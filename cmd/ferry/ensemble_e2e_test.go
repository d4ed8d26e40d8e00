package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// ensSimpleConfig is simple with a dynamic batcher whose long queue delay, waited out as
// Triton does (adaptive_batching "false"), makes the concurrent ensemble requests' steps
// share executions.
const ensSimpleConfig = `name: "simple"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  { name: "INPUT0" data_type: TYPE_INT32 dims: [ 16 ] },
  { name: "INPUT1" data_type: TYPE_INT32 dims: [ 16 ] }
]
output [
  { name: "OUTPUT0" data_type: TYPE_INT32 dims: [ 16 ] },
  { name: "OUTPUT1" data_type: TYPE_INT32 dims: [ 16 ] }
]
dynamic_batching { max_queue_delay_microseconds: 50000 }
parameters { key: "adaptive_batching" value { string_value: "false" } }
`

const ensIdentityConfig = `name: "identity_int32"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_INT32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_INT32 dims: [ -1 ] } ]
`

// ensIO is the inputs and outputs of every test ensemble but the ones named otherwise.
const ensIO = `platform: "ensemble"
max_batch_size: 8
input [
  { name: "IN0" data_type: TYPE_INT32 dims: [ 16 ] },
  { name: "IN1" data_type: TYPE_INT32 dims: [ 16 ] }
]
`

// ensConfigs are the test ensembles, by name.
var ensConfigs = map[string]string{
	// chain: simple, then simple again on the first sum: OUT0 = (a+b)+b, OUT1 = (a+b)-b.
	"chain": ensIO + `output [
  { name: "OUT0" data_type: TYPE_INT32 dims: [ 16 ] },
  { name: "OUT1" data_type: TYPE_INT32 dims: [ 16 ] }
]
ensemble_scheduling { step [
  { model_name: "simple" model_version: -1
    input_map [ { key: "INPUT0" value: "IN0" }, { key: "INPUT1" value: "IN1" } ]
    output_map { key: "OUTPUT0" value: "sum" } },
  { model_name: "simple" model_version: 1
    input_map [ { key: "INPUT0" value: "sum" }, { key: "INPUT1" value: "IN1" } ]
    output_map [ { key: "OUTPUT0" value: "OUT0" }, { key: "OUTPUT1" value: "OUT1" } ] }
] }
`,
	// diamond: simple(a, b) and identity(b) are independent; a third step, listed first,
	// adds their outputs. SUM is both an ensemble output and a step input.
	"diamond": ensIO + `output [
  { name: "SUM" data_type: TYPE_INT32 dims: [ 16 ] },
  { name: "OUT0" data_type: TYPE_INT32 dims: [ 16 ] },
  { name: "OUT1" data_type: TYPE_INT32 dims: [ 16 ] }
]
ensemble_scheduling { step [
  { model_name: "simple" model_version: -1
    input_map [ { key: "INPUT0" value: "SUM" }, { key: "INPUT1" value: "copy" } ]
    output_map [ { key: "OUTPUT0" value: "OUT0" }, { key: "OUTPUT1" value: "OUT1" } ] },
  { model_name: "simple" model_version: -1
    input_map [ { key: "INPUT0" value: "IN0" }, { key: "INPUT1" value: "IN1" } ]
    output_map { key: "OUTPUT0" value: "SUM" } },
  { model_name: "identity_int32" model_version: -1
    input_map { key: "INPUT0" value: "IN1" }
    output_map { key: "OUTPUT0" value: "copy" } }
] }
`,
	// lost names a model the repository does not have.
	"lost": ensIO + `output [ { name: "OUT0" data_type: TYPE_INT32 dims: [ 16 ] } ]
ensemble_scheduling { step [
  { model_name: "nope" model_version: -1
    input_map [ { key: "INPUT0" value: "IN0" }, { key: "INPUT1" value: "IN1" } ]
    output_map { key: "OUTPUT0" value: "OUT0" } }
] }
`,
	// loop's two steps each wait for the other's output.
	"loop": ensIO + `output [ { name: "OUT0" data_type: TYPE_INT32 dims: [ 16 ] } ]
ensemble_scheduling { step [
  { model_name: "simple" model_version: -1
    input_map [ { key: "INPUT0" value: "IN0" }, { key: "INPUT1" value: "back" } ]
    output_map [ { key: "OUTPUT0" value: "forth" }, { key: "OUTPUT1" value: "OUT0" } ] },
  { model_name: "simple" model_version: -1
    input_map [ { key: "INPUT0" value: "forth" }, { key: "INPUT1" value: "IN1" } ]
    output_map { key: "OUTPUT0" value: "back" } }
] }
`,
	// badstep feeds an FP32 ensemble input to simple's INT32 input.
	"badstep": `platform: "ensemble"
max_batch_size: 8
input [ { name: "X" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "Y" data_type: TYPE_INT32 dims: [ 16 ] } ]
ensemble_scheduling { step [
  { model_name: "simple" model_version: -1
    input_map [ { key: "INPUT0" value: "X" }, { key: "INPUT1" value: "X" } ]
    output_map { key: "OUTPUT0" value: "Y" } }
] }
`,
}

// ensRepo is simple, identity_int32 and the ensembles of ensConfigs, each with an empty
// version folder 1 as Triton requires.
func ensRepo(t *testing.T) string {
	t.Helper()
	repo := t.TempDir()
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), ensSimpleConfig)
	writeModel(t, repo, "identity_int32", 1, onnxgen.Identity(onnxgen.Int32, "identity_int32"), ensIdentityConfig)
	for name, cfg := range ensConfigs {
		if err := os.MkdirAll(filepath.Join(repo, name, "1"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, name, "config.pbtxt"), []byte(`name: "`+name+"\"\n"+cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return repo
}

// ensTensor is one named INT32 tensor of shape [rows, 16].
type ensTensor struct {
	name string
	data []int32
}

// ensInputs are two inputs of rows rows that differ per seed.
func ensInputs(seed, rows int) (a, b []int32) {
	a, b = make([]int32, 16*rows), make([]int32, 16*rows)
	for i := range a {
		a[i], b[i] = int32(seed*1000+i), int32((7*i+seed)%11-5)
	}
	return a, b
}

// ensInfer runs model over REST (JSON) or gRPC (raw contents) and returns its outputs by
// name, failing the test on an error.
func ensInfer(t *testing.T, ts *testServer, proto, model string, rows int, in ...ensTensor) map[string][]int32 {
	t.Helper()
	out, err := ensTryInfer(t, ts, proto, model, rows, in...)
	if err != nil {
		t.Fatalf("%s infer %s: %v", proto, model, err)
	}
	return out
}

// ensTryInfer runs model through the typed client of proto (REST sends JSON, gRPC raw
// contents) and returns its INT32 outputs by name.
func ensTryInfer(t *testing.T, ts *testServer, proto, model string, rows int, in ...ensTensor) (map[string][]int32, error) {
	req := &v2client.Request{}
	for _, x := range in {
		req.Inputs = append(req.Inputs, &tensor.Tensor{Name: x.name, DType: tensor.Int32,
			Shape: tensor.Shape{int64(rows), int64(len(x.data) / rows)}, Data: e2eLE(x.data)})
	}
	res, err := ts.v2(proto, model, "").Infer(t.Context(), req)
	if err != nil {
		return nil, err
	}
	out := map[string][]int32{}
	for _, o := range res.Outputs {
		if o.DType != tensor.Int32 || !slices.Equal(o.Shape, tensor.Shape{int64(rows), 16}) {
			t.Errorf("infer %s: output %s is %s %v, want INT32 [%d 16]", model, o.Name, o.DType, o.Shape, rows)
		}
		out[o.Name] = e2eInt32s(t, o.Data)
	}
	return out, nil
}

// ensSame fails unless the ensemble's outputs are exactly want, name by name.
func ensSame(t *testing.T, what string, got map[string][]int32, want map[string][]int32) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: outputs %v, want %v", what, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Errorf("%s: output %s = %v,\nby hand %v", what, name, got[name], w)
		}
	}
}

// TestEnsembles serves the ensembles of ensRepo (mode none) and checks that each one's
// outputs equal its steps run by hand, over REST and gRPC, with the metadata, config,
// statistics, failures and index entries an ensemble has.
func TestEnsembles(t *testing.T) {
	ts := startServer(t, ensRepo(t))
	for _, proto := range []string{"rest", "grpc"} {
		t.Run(proto+": a chain equals its steps run by hand", func(t *testing.T) { ensChain(t, ts, proto) })
		t.Run(proto+": a diamond equals its steps run by hand", func(t *testing.T) { ensDiamond(t, ts, proto) })
		t.Run(proto+": a failing step names the step and its model", func(t *testing.T) { ensFailingStep(t, ts, proto) })
	}
	t.Run("metadata and config describe the ensemble", func(t *testing.T) { ensMetadata(t, ts) })
	t.Run("broken ensembles are unavailable with the reason", func(t *testing.T) { ensBroken(t, ts) })
	t.Run("steps batch with other traffic and keep their own statistics", func(t *testing.T) { ensBatchesAndStats(t, ts) })
}

func ensChain(t *testing.T, ts *testServer, proto string) {
	for rows := 1; rows <= 3; rows += 2 {
		a, b := ensInputs(rows, rows)
		got := ensInfer(t, ts, proto, "chain", rows, ensTensor{"IN0", a}, ensTensor{"IN1", b})
		first := ensInfer(t, ts, proto, "simple", rows, ensTensor{"INPUT0", a}, ensTensor{"INPUT1", b})
		second := ensInfer(t, ts, proto, "simple", rows, ensTensor{"INPUT0", first["OUTPUT0"]}, ensTensor{"INPUT1", b})
		ensSame(t, fmt.Sprintf("chain, %d rows", rows), got, map[string][]int32{"OUT0": second["OUTPUT0"], "OUT1": second["OUTPUT1"]})
		if !slices.Equal(got["OUT1"], a) { // (a+b)-b: the steps really ran in order
			t.Errorf("chain, %d rows: OUT1 = %v, want IN0 %v", rows, got["OUT1"], a)
		}
	}
}

func ensDiamond(t *testing.T, ts *testServer, proto string) {
	a, b := ensInputs(5, 2)
	got := ensInfer(t, ts, proto, "diamond", 2, ensTensor{"IN0", a}, ensTensor{"IN1", b})
	left := ensInfer(t, ts, proto, "simple", 2, ensTensor{"INPUT0", a}, ensTensor{"INPUT1", b})
	right := ensInfer(t, ts, proto, "identity_int32", 2, ensTensor{"INPUT0", b})
	join := ensInfer(t, ts, proto, "simple", 2, ensTensor{"INPUT0", left["OUTPUT0"]}, ensTensor{"INPUT1", right["OUTPUT0"]})
	ensSame(t, "diamond", got, map[string][]int32{"SUM": left["OUTPUT0"], "OUT0": join["OUTPUT0"], "OUT1": join["OUTPUT1"]})
}

func ensFailingStep(t *testing.T, ts *testServer, proto string) {
	x := &tensor.Tensor{Name: "X", DType: tensor.FP32, Shape: tensor.Shape{1, 16}, Data: make([]byte, 64)}
	_, err := ts.v2(proto, "badstep", "").Infer(t.Context(), &v2client.Request{Inputs: []*tensor.Tensor{x}})
	var e *v2client.Error
	if !errors.As(err, &e) || (proto == "grpc" && e.Code != codes.InvalidArgument) || (proto == "rest" && e.HTTPStatus != 400) {
		t.Errorf("badstep: %v, want INVALID_ARGUMENT or HTTP 400", err)
	}
	want := `ensemble 'badstep' version 1: step 0 (model 'simple'): input "INPUT0": datatype FP32 does not match the model's INT32`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("badstep: error %v, want it to contain %q", err, want)
	}
}

func ensMetadata(t *testing.T, ts *testServer) {
	md, err := ts.GRPC.ModelMetadata(t.Context(), &inference.ModelMetadataRequest{Name: "diamond"})
	if err != nil {
		t.Fatalf("ModelMetadata(diamond): %v", err)
	}
	var outs []string
	for _, o := range md.GetOutputs() {
		outs = append(outs, o.GetName())
		if o.GetDatatype() != "INT32" || !slices.Equal(o.GetShape(), []int64{-1, 16}) {
			t.Errorf("diamond output %s: %s %v, want INT32 [-1 16]", o.GetName(), o.GetDatatype(), o.GetShape())
		}
	}
	if md.GetPlatform() != "ensemble" || len(md.GetInputs()) != 2 || md.GetInputs()[0].GetName() != "IN0" || !slices.Equal(outs, []string{"SUM", "OUT0", "OUT1"}) {
		t.Errorf("ModelMetadata(diamond) = %v, want platform ensemble, inputs IN0 IN1, outputs SUM OUT0 OUT1", md)
	}
	code, _, b := httpDo(t, "GET", ts.URL+"/v2/models/chain", "", nil)
	if code != 200 || !strings.Contains(string(b), `"platform":"ensemble"`) {
		t.Errorf("GET /v2/models/chain: %d %s, want platform ensemble", code, b)
	}
	code, _, b = httpDo(t, "GET", ts.URL+"/v2/models/chain/config", "", nil)
	var cfg struct {
		Platform           string `json:"platform"`
		Backend            string `json:"backend"`
		EnsembleScheduling struct {
			Step []struct {
				ModelName    string `json:"model_name"`
				ModelVersion int64  `json:"model_version"`
			} `json:"step"`
		} `json:"ensemble_scheduling"`
		InstanceGroup []any `json:"instance_group"`
	}
	if code != 200 || json.Unmarshal(b, &cfg) != nil {
		t.Fatalf("GET /v2/models/chain/config: %d %s", code, b)
	}
	if cfg.Platform != "ensemble" || cfg.Backend != "" || len(cfg.InstanceGroup) != 0 || len(cfg.EnsembleScheduling.Step) != 2 ||
		cfg.EnsembleScheduling.Step[1].ModelName != "simple" || cfg.EnsembleScheduling.Step[1].ModelVersion != 1 {
		t.Errorf("chain config %s: want platform ensemble, no backend or instance group, and its two steps", b)
	}
	for _, model := range []string{"chain", "diamond", "simple", "identity_int32"} {
		if res, err := ts.GRPC.ModelReady(t.Context(), &inference.ModelReadyRequest{Name: model}); err != nil || !res.GetReady() {
			t.Errorf("ModelReady(%s) = %v, %v; want ready", model, res, err)
		}
	}
}

func ensBroken(t *testing.T, ts *testServer) {
	res, err := ts.GRPC.RepositoryIndex(t.Context(), &inference.RepositoryIndexRequest{})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{
		"lost": `ensemble_scheduling.step[0]: model 'nope' is not in the model repository`,
		"loop": `ensemble_scheduling.step[0]: never runs: its inputs come from a cycle of steps: step[0] ("simple") reads "back" from step[1] ("simple"), which reads "forth" from step[0] ("simple")`,
	}
	for _, m := range res.GetModels() {
		want, ok := reasons[m.GetName()]
		if !ok {
			continue
		}
		delete(reasons, m.GetName())
		if m.GetState() != "UNAVAILABLE" || !strings.Contains(m.GetReason(), want) {
			t.Errorf("index: %s %s %q, want UNAVAILABLE with a reason containing %q", m.GetName(), m.GetState(), m.GetReason(), want)
		}
	}
	if len(reasons) > 0 {
		t.Errorf("index does not list %v", reasons)
	}
	a, b := ensInputs(0, 1)
	for _, proto := range []string{"rest", "grpc"} {
		_, err := ensTryInfer(t, ts, proto, "lost", 1, ensTensor{"IN0", a}, ensTensor{"IN1", b})
		if err == nil || !strings.Contains(err.Error(), "model 'nope' is not in the model repository") ||
			(proto == "grpc" && status.Code(err) != codes.Unavailable) || (proto == "rest" && !strings.Contains(err.Error(), "HTTP 503")) {
			t.Errorf("%s infer lost: %v, want unavailable naming the missing model", proto, err)
		}
	}
}

// ensBatchesAndStats sends concurrent chain requests: their steps go through simple's
// dynamic batcher together, so simple runs fewer executions than it gets requests; the
// ensemble counts its own requests and items, and simple counts each step.
func ensBatchesAndStats(t *testing.T, ts *testServer) {
	chainBefore, simpleBefore := modelStats(t, ts, "chain"), modelStats(t, ts, "simple")
	const clients = 8
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			a, b := ensInputs(c, 1)
			out, err := ensTryInfer(t, ts, "grpc", "chain", 1, ensTensor{"IN0", a}, ensTensor{"IN1", b})
			if err != nil {
				t.Errorf("client %d: %v", c, err)
				return
			}
			if !slices.Equal(out["OUT1"], a) {
				t.Errorf("client %d: OUT1 = %v, want %v", c, out["OUT1"], a)
			}
		})
	}
	wg.Wait()
	chain, simple := modelStats(t, ts, "chain"), modelStats(t, ts, "simple")
	if n := chain.InferenceStats.Success.Count - chainBefore.InferenceStats.Success.Count; n != clients {
		t.Errorf("chain: %d successes recorded, want %d", n, clients)
	}
	if n := chain.InferenceCount - chainBefore.InferenceCount; n != clients {
		t.Errorf("chain: inference_count grew by %d, want %d", n, clients)
	}
	if chain.ExecutionCount != 0 {
		t.Errorf("chain: execution_count %d, want 0 (an ensemble executes nothing itself)", chain.ExecutionCount)
	}
	steps := simple.InferenceStats.Success.Count - simpleBefore.InferenceStats.Success.Count
	execs := simple.ExecutionCount - simpleBefore.ExecutionCount
	if steps != 2*clients {
		t.Errorf("simple: %d step requests recorded, want %d (two steps per chain request)", steps, 2*clients)
	}
	if execs >= steps {
		t.Errorf("simple: %d executions for %d step requests: the steps did not batch", execs, steps)
	}
	t.Logf("%d chain requests: simple ran %d step requests in %d executions", clients, steps, execs)
}

// TestEnsembleExplicitLoad: in explicit mode, loading an ensemble loads its step models;
// a load fails, naming the step, when a step model is missing or does not fit the
// step's tensor maps.
func TestEnsembleExplicitLoad(t *testing.T) {
	ts := startServer(t, ensRepo(t), func(c *serveConfig) {
		c.mode = "explicit"
		c.loadModels = []string{"diamond"}
	})
	for _, model := range []string{"diamond", "simple", "identity_int32"} {
		if res, err := ts.GRPC.ModelReady(t.Context(), &inference.ModelReadyRequest{Name: model}); err != nil || !res.GetReady() {
			t.Errorf("ModelReady(%s) = %v, %v; want ready, loaded with diamond", model, res, err)
		}
	}
	if res, err := ts.GRPC.ModelReady(t.Context(), &inference.ModelReadyRequest{Name: "chain"}); err != nil || res.GetReady() {
		t.Errorf("ModelReady(chain) = %v, %v; want not ready (not loaded)", res, err)
	}
	a, b := ensInputs(3, 1)
	got := ensInfer(t, ts, "grpc", "diamond", 1, ensTensor{"IN0", a}, ensTensor{"IN1", b})
	sum := make([]int32, len(a))
	for i := range a {
		sum[i] = a[i] + b[i]
	}
	if !slices.Equal(got["SUM"], sum) {
		t.Errorf("diamond SUM = %v, want %v", got["SUM"], sum)
	}
	for _, tc := range []struct{ model, want string }{
		{"lost", "ensemble_scheduling.step[0]: model 'nope' is not in the model repository"},
		{"badstep", `ensemble_scheduling.step[0].input_map["INPUT0"]: ensemble input "X" is TYPE_FP32 but input "INPUT0" of model 'simple' is TYPE_INT32`},
	} {
		for attempt := 1; attempt <= 2; attempt++ {
			_, err := ts.GRPC.RepositoryModelLoad(t.Context(), &inference.RepositoryModelLoadRequest{ModelName: tc.model})
			if err == nil || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Errorf("load %s, attempt %d: %v, want an error containing %q", tc.model, attempt, err, tc.want)
			}
		}
	}
	code, _, body := httpDo(t, "POST", ts.URL+"/v2/repository/models/chain/load", "", nil)
	if code != 200 {
		t.Fatalf("load chain: %d %s", code, body)
	}
	got = ensInfer(t, ts, "rest", "chain", 1, ensTensor{"IN0", a}, ensTensor{"IN1", b})
	if !slices.Equal(got["OUT1"], a) {
		t.Errorf("chain OUT1 = %v, want %v", got["OUT1"], a)
	}
}

// TestEnsembleUnloadDependents: unload_dependents unloads an ensemble's step models
// with it, except one another loaded ensemble still uses; without it the steps stay.
func TestEnsembleUnloadDependents(t *testing.T) {
	ts := startServer(t, ensRepo(t), func(c *serveConfig) {
		c.mode = "explicit"
		c.loadModels = []string{"diamond", "chain"}
	})
	ready := func(model string) bool {
		res, err := ts.GRPC.ModelReady(t.Context(), &inference.ModelReadyRequest{Name: model})
		return err == nil && res.GetReady()
	}
	unload := func(model, body string) {
		t.Helper()
		if code, _, b := httpDo(t, "POST", ts.URL+"/v2/repository/models/"+model+"/unload", "application/json", strings.NewReader(body)); code != 200 {
			t.Fatalf("unload %s: %d %s", model, code, b)
		}
	}
	unload("diamond", `{"parameters":{"unload_dependents":true}}`)
	if ready("diamond") || ready("identity_int32") || !ready("simple") || !ready("chain") {
		t.Errorf("after unloading diamond with dependents: diamond %v, identity_int32 %v, simple %v, chain %v; want only simple and chain (chain uses simple) ready",
			ready("diamond"), ready("identity_int32"), ready("simple"), ready("chain"))
	}
	unload("chain", `{}`)
	if ready("chain") || !ready("simple") {
		t.Errorf("after unloading chain alone: chain %v, simple %v; want simple still ready", ready("chain"), ready("simple"))
	}
	if code, _, b := httpDo(t, "POST", ts.URL+"/v2/repository/models/chain/load", "", nil); code != 200 {
		t.Fatalf("load chain: %d %s", code, b)
	}
	_, err := ts.GRPC.RepositoryModelUnload(t.Context(), &inference.RepositoryModelUnloadRequest{ModelName: "chain",
		Parameters: map[string]*inference.ModelRepositoryParameter{"unload_dependents": {ParameterChoice: &inference.ModelRepositoryParameter_BoolParam{BoolParam: true}}}})
	if err != nil {
		t.Fatal(err)
	}
	if ready("chain") || ready("simple") {
		t.Errorf("after unloading chain with dependents over gRPC: chain %v, simple %v; want neither ready", ready("chain"), ready("simple"))
	}
}
