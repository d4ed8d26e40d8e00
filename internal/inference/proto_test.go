package inference

import (
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Configs written the way real Triton config.pbtxt files are: list and
// block syntax mixed, "key : value" spacing, # comments. prototext rejects
// unknown fields, so each one parsing shows the schema covers it. One config
// per scheduler because scheduling_choice is a oneof.

const dynamicBatchingConfig = `
# ResNet-50 served by ONNX Runtime with the dynamic batcher.
name: "resnet50"
platform: "onnxruntime_onnx"
backend: "onnxruntime"
max_batch_size : 8
version_policy: { specific: { versions: [ 1, 3 ] } }
input [
  {
    name: "input"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 3, 224, 224 ]
    reshape: { shape: [ 1, 3, 224, 224 ] }
  },
  {
    name: "mask"
    data_type: TYPE_BOOL
    dims: [ -1 ]
    allow_ragged_batch: true
    optional: true
  }
]
output [
  {
    name: "probs"
    data_type: TYPE_FP32
    dims: [ 1000 ]
    label_filename: "labels.txt"
  },
  {
    name: "text"
    data_type: TYPE_STRING
    dims: [ 1 ]
  }
]
dynamic_batching {
  preferred_batch_size: [ 4, 8 ]
  max_queue_delay_microseconds: 100
  preserve_ordering: true
  priority_levels: 2
  default_priority_level: 2
  default_queue_policy { timeout_action: DELAY default_timeout_microseconds: 5000 max_queue_size: 64 }
  priority_queue_policy {
    key: 1
    value: { timeout_action: REJECT allow_timeout_override: true }
  }
}
instance_group [
  {
    count: 2
    kind: KIND_CPU
    rate_limiter { resources [ { name: "R1" count: 4 } ] priority: 2 }
  },
  {
    name: "gpu_group"
    count: 1
    kind: KIND_GPU
    gpus: [ 0, 1 ]
  }
]
optimization {
  graph: { level: 1 }
  execution_accelerators {
    gpu_execution_accelerator : [ {
      name : "tensorrt"
      parameters { key: "precision_mode" value: "FP16" }
    } ]
  }
  input_pinned_memory: { enable: false }
}
parameters: { key: "intra_op_thread_count" value: { string_value: "2" } }
parameters [
  { key: "inter_op_thread_count" value: { string_value: "1" } }
]
model_warmup [
  {
    name: "zeros"
    batch_size: 4
    inputs {
      key: "input"
      value: { data_type: TYPE_FP32 dims: [ 3, 224, 224 ] zero_data: true }
    }
  },
  {
    name: "file"
    batch_size: 1
    count: 3
    inputs { key: "input" value: { data_type: TYPE_FP32 dims: [ 3, 224, 224 ] input_data_file: "raw_input" } }
    inputs { key: "mask" value: { data_type: TYPE_BOOL dims: [ 4 ] random_data: true } }
  }
]
response_cache { enable: true }
model_transaction_policy { decoupled: false }
metric_tags { key: "team" value: "vision" }
model_metrics {
  metric_control: [
    {
      metric_identifier: { family: "nv_inference_first_response_histogram_ms" }
      histogram_options: { buckets: [ 1, 2, 4, 8 ] }
    }
  ]
}
`

const sequenceBatchingConfig = `
name: "simple_sequence"
backend: "python"
max_batch_size: 8
version_policy: { latest: { num_versions: 2 } }
input [ { name: "INPUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "OUTPUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
sequence_batching {
  max_sequence_idle_microseconds: 5000000
  control_input [
    {
      name: "START"
      control [ { kind: CONTROL_SEQUENCE_START fp32_false_true: [ 0, 1 ] } ]
    },
    {
      name: "READY"
      control [ { kind: CONTROL_SEQUENCE_READY int32_false_true: [ 0, 1 ] } ]
    },
    {
      name: "END"
      control [ { kind: CONTROL_SEQUENCE_END bool_false_true: [ false, true ] } ]
    },
    {
      name: "CORRID"
      control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 } ]
    }
  ]
  state [
    {
      input_name: "INPUT_STATE"
      output_name: "OUTPUT_STATE"
      data_type: TYPE_INT32
      dims: [ -1 ]
      initial_state: { data_type: TYPE_INT32 dims: [ 1 ] zero_data: true name: "zeros" }
    }
  ]
  oldest { max_candidate_sequences: 4 preferred_batch_size: [ 2, 4 ] max_queue_delay_microseconds: 100 }
}
instance_group [ { count: 1 kind: KIND_AUTO } ]
`

const ensembleConfig = `
name: "ensemble_model"
platform: "ensemble"
max_batch_size: 0
version_policy: { all: { } }
input [ { name: "input_text" data_type: TYPE_STRING dims: [ -1 ] } ]
output [ { name: "answer" data_type: TYPE_STRING dims: [ -1 ] } ]
ensemble_scheduling {
  step [
    {
      model_name: "preprocessing"
      model_version: -1
      input_map { key: "input_text" value: "input_text" }
      output_map { key: "input_ids" value: "input_ids" }
      output_map { key: "attention_mask" value: "attention_mask" }
    },
    {
      model_name: "classifier"
      model_version: 1
      input_map { key: "input_ids" value: "input_ids" }
      input_map { key: "attention_mask" value: "attention_mask" }
      output_map { key: "output" value: "answer" }
    }
  ]
}
`

func parse(t *testing.T, text string) *ModelConfig {
	t.Helper()
	cfg := &ModelConfig{}
	if err := prototext.Unmarshal([]byte(text), cfg); err != nil {
		t.Fatalf("parse config.pbtxt: %v", err)
	}
	return cfg
}

func TestParseDynamicBatchingConfig(t *testing.T) {
	cfg := parse(t, dynamicBatchingConfig)

	if cfg.GetName() != "resnet50" || cfg.GetBackend() != "onnxruntime" || cfg.GetMaxBatchSize() != 8 {
		t.Errorf("name/backend/max_batch_size = %q/%q/%d", cfg.GetName(), cfg.GetBackend(), cfg.GetMaxBatchSize())
	}
	if v := cfg.GetVersionPolicy().GetSpecific().GetVersions(); len(v) != 2 || v[0] != 1 || v[1] != 3 {
		t.Errorf("version_policy.specific.versions = %v", v)
	}

	in := cfg.GetInput()
	if len(in) != 2 || in[0].GetDataType() != DataType_TYPE_FP32 || in[0].GetFormat() != ModelInput_FORMAT_NCHW {
		t.Fatalf("inputs = %v", in)
	}
	if got := in[0].GetReshape().GetShape(); len(got) != 4 || got[0] != 1 {
		t.Errorf("reshape = %v", got)
	}
	if !in[1].GetOptional() || !in[1].GetAllowRaggedBatch() || in[1].GetDims()[0] != -1 {
		t.Errorf("mask input = %v", in[1])
	}
	if out := cfg.GetOutput(); len(out) != 2 || out[1].GetDataType() != DataType_TYPE_STRING || out[0].GetLabelFilename() != "labels.txt" {
		t.Errorf("outputs = %v", out)
	}

	db := cfg.GetDynamicBatching()
	if db == nil {
		t.Fatal("dynamic_batching not set")
	}
	if db.GetMaxQueueDelayMicroseconds() != 100 || len(db.GetPreferredBatchSize()) != 2 || !db.GetPreserveOrdering() {
		t.Errorf("dynamic_batching = %v", db)
	}
	if db.GetDefaultQueuePolicy().GetTimeoutAction() != ModelQueuePolicy_DELAY || db.GetDefaultQueuePolicy().GetMaxQueueSize() != 64 {
		t.Errorf("default_queue_policy = %v", db.GetDefaultQueuePolicy())
	}
	if p := db.GetPriorityQueuePolicy()[1]; p == nil || !p.GetAllowTimeoutOverride() {
		t.Errorf("priority_queue_policy[1] = %v", p)
	}
	if cfg.GetSequenceBatching() != nil || cfg.GetEnsembleScheduling() != nil {
		t.Error("more than one scheduler set")
	}

	ig := cfg.GetInstanceGroup()
	if len(ig) != 2 || ig[0].GetKind() != ModelInstanceGroup_KIND_CPU || ig[0].GetCount() != 2 {
		t.Fatalf("instance_group = %v", ig)
	}
	if r := ig[0].GetRateLimiter().GetResources(); len(r) != 1 || r[0].GetCount() != 4 {
		t.Errorf("rate_limiter = %v", ig[0].GetRateLimiter())
	}
	if ig[1].GetKind() != ModelInstanceGroup_KIND_GPU || len(ig[1].GetGpus()) != 2 {
		t.Errorf("gpu group = %v", ig[1])
	}

	acc := cfg.GetOptimization().GetExecutionAccelerators().GetGpuExecutionAccelerator()
	if len(acc) != 1 || acc[0].GetName() != "tensorrt" || acc[0].GetParameters()["precision_mode"] != "FP16" {
		t.Errorf("gpu_execution_accelerator = %v", acc)
	}

	params := cfg.GetParameters()
	if params["intra_op_thread_count"].GetStringValue() != "2" || params["inter_op_thread_count"].GetStringValue() != "1" {
		t.Errorf("parameters = %v", params)
	}

	wu := cfg.GetModelWarmup()
	if len(wu) != 2 || wu[0].GetBatchSize() != 4 || !wu[0].GetInputs()["input"].GetZeroData() {
		t.Fatalf("model_warmup = %v", wu)
	}
	if wu[1].GetInputs()["input"].GetInputDataFile() != "raw_input" || !wu[1].GetInputs()["mask"].GetRandomData() || wu[1].GetCount() != 3 {
		t.Errorf("model_warmup[1] = %v", wu[1])
	}

	if !cfg.GetResponseCache().GetEnable() || cfg.GetMetricTags()["team"] != "vision" {
		t.Errorf("response_cache/metric_tags = %v/%v", cfg.GetResponseCache(), cfg.GetMetricTags())
	}
	if mc := cfg.GetModelMetrics().GetMetricControl(); len(mc) != 1 || len(mc[0].GetHistogramOptions().GetBuckets()) != 4 {
		t.Errorf("model_metrics = %v", cfg.GetModelMetrics())
	}
}

func TestParseSequenceBatchingConfig(t *testing.T) {
	cfg := parse(t, sequenceBatchingConfig)

	if cfg.GetVersionPolicy().GetLatest().GetNumVersions() != 2 {
		t.Errorf("version_policy = %v", cfg.GetVersionPolicy())
	}
	sb := cfg.GetSequenceBatching()
	if sb == nil {
		t.Fatal("sequence_batching not set")
	}
	if sb.GetMaxSequenceIdleMicroseconds() != 5000000 {
		t.Errorf("max_sequence_idle_microseconds = %d", sb.GetMaxSequenceIdleMicroseconds())
	}
	ci := sb.GetControlInput()
	if len(ci) != 4 {
		t.Fatalf("control_input = %v", ci)
	}
	wantKinds := []ModelSequenceBatching_Control_Kind{
		ModelSequenceBatching_Control_CONTROL_SEQUENCE_START,
		ModelSequenceBatching_Control_CONTROL_SEQUENCE_READY,
		ModelSequenceBatching_Control_CONTROL_SEQUENCE_END,
		ModelSequenceBatching_Control_CONTROL_SEQUENCE_CORRID,
	}
	for i, want := range wantKinds {
		if c := ci[i].GetControl(); len(c) != 1 || c[0].GetKind() != want {
			t.Errorf("control_input[%d] = %v, want kind %v", i, ci[i], want)
		}
	}
	if ft := ci[0].GetControl()[0].GetFp32FalseTrue(); len(ft) != 2 || ft[1] != 1 {
		t.Errorf("fp32_false_true = %v", ft)
	}
	if bt := ci[2].GetControl()[0].GetBoolFalseTrue(); len(bt) != 2 || !bt[1] {
		t.Errorf("bool_false_true = %v", bt)
	}
	if ci[3].GetControl()[0].GetDataType() != DataType_TYPE_UINT64 {
		t.Errorf("CORRID data_type = %v", ci[3].GetControl()[0].GetDataType())
	}
	st := sb.GetState()
	if len(st) != 1 || st[0].GetOutputName() != "OUTPUT_STATE" || !st[0].GetInitialState()[0].GetZeroData() {
		t.Errorf("state = %v", st)
	}
	if o := sb.GetOldest(); o == nil || o.GetMaxCandidateSequences() != 4 || sb.GetDirect() != nil {
		t.Errorf("strategy = %v", sb)
	}
}

func TestParseEnsembleConfig(t *testing.T) {
	cfg := parse(t, ensembleConfig)

	if cfg.GetPlatform() != "ensemble" || cfg.GetVersionPolicy().GetAll() == nil {
		t.Errorf("platform/version_policy = %q/%v", cfg.GetPlatform(), cfg.GetVersionPolicy())
	}
	steps := cfg.GetEnsembleScheduling().GetStep()
	if len(steps) != 2 {
		t.Fatalf("steps = %v", steps)
	}
	if steps[0].GetModelName() != "preprocessing" || steps[0].GetModelVersion() != -1 {
		t.Errorf("step 0 = %v", steps[0])
	}
	if steps[0].GetInputMap()["input_text"] != "input_text" || len(steps[0].GetOutputMap()) != 2 {
		t.Errorf("step 0 maps = %v / %v", steps[0].GetInputMap(), steps[0].GetOutputMap())
	}
	if steps[1].GetOutputMap()["output"] != "answer" {
		t.Errorf("step 1 output_map = %v", steps[1].GetOutputMap())
	}
}

func TestUnknownFieldRejected(t *testing.T) {
	if err := prototext.Unmarshal([]byte(`name: "m" no_such_field: 1`), &ModelConfig{}); err == nil {
		t.Fatal("unknown field accepted")
	}
}

// Spot-check field numbers against Triton's, since the wire depends on them.
func TestFieldNumbers(t *testing.T) {
	cases := []struct {
		msg   proto.Message
		field string
		num   protoreflect.FieldNumber
	}{
		{&ModelConfig{}, "backend", 17},
		{&ModelConfig{}, "runtime", 25},
		{&ModelConfig{}, "dynamic_batching", 11},
		{&ModelConfig{}, "sequence_batching", 13},
		{&ModelConfig{}, "ensemble_scheduling", 15},
		{&ModelConfig{}, "instance_group", 7},
		{&ModelConfig{}, "model_warmup", 16},
		{&ModelConfig{}, "response_cache", 24},
		{&ModelConfig{}, "model_metrics", 26},
		{&ModelInstanceGroup{}, "kind", 4},
		{&ModelInstanceGroup{}, "host_policy", 9},
		{&ModelOutput{}, "reshape", 5},
		{&ModelOutput{}, "label_filename", 4},
		{&ModelSequenceBatching_Control{}, "bool_false_true", 5},
		{&ModelSequenceBatching{}, "direct", 3},
		{&ModelSequenceBatching{}, "max_sequence_idle_microseconds", 1},
		{&InferParameter{}, "double_param", 4},
		{&InferParameter{}, "uint64_param", 5},
		{&ModelInferRequest{}, "raw_input_contents", 7},
		{&ModelInferResponse{}, "raw_output_contents", 6},
		{&ModelStreamInferResponse{}, "infer_response", 2},
		{&ModelStatistics{}, "response_stats", 9},
		{&RepositoryModelLoadRequest{}, "parameters", 3},
		{&RepositoryIndexResponse_ModelIndex{}, "reason", 4},
	}
	for _, c := range cases {
		md := c.msg.ProtoReflect().Descriptor()
		fd := md.Fields().ByName(protoreflect.Name(c.field))
		if fd == nil {
			t.Errorf("%s has no field %s", md.FullName(), c.field)
			continue
		}
		if fd.Number() != c.num {
			t.Errorf("%s.%s = %d, want %d", md.FullName(), c.field, fd.Number(), c.num)
		}
	}
}

// A ModelInferRequest survives the wire with raw contents intact.
func TestInferRequestRoundTrip(t *testing.T) {
	req := &ModelInferRequest{
		ModelName: "m",
		Id:        "42",
		Parameters: map[string]*InferParameter{
			"sequence_id": {ParameterChoice: &InferParameter_Uint64Param{Uint64Param: 7}},
			"temperature": {ParameterChoice: &InferParameter_DoubleParam{DoubleParam: 0.5}},
		},
		Inputs: []*ModelInferRequest_InferInputTensor{
			{Name: "x", Datatype: "FP32", Shape: []int64{1, 2}},
		},
		RawInputContents: [][]byte{{0, 0, 128, 63, 0, 0, 0, 64}},
	}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	got := &ModelInferRequest{}
	if err := proto.Unmarshal(b, got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(req, got) {
		t.Fatalf("round trip changed the request:\n got %v\nwant %v", got, req)
	}
}
