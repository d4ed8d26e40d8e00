package modelconfig

import (
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

// Models as a backend reports them.
var (
	dynamicBatchModel = IO{
		Inputs: []TensorInfo{
			{"image", tensor.FP32, tensor.Shape{-1, 3, 224, 224}},
			{"scale", tensor.FP32, tensor.Shape{-1}},
		},
		Outputs: []TensorInfo{{"probs", tensor.FP32, tensor.Shape{-1, 1000}}},
	}
	fixedBatchModel = IO{
		Inputs:  []TensorInfo{{"x", tensor.FP32, tensor.Shape{1, 4}}},
		Outputs: []TensorInfo{{"y", tensor.Int64, tensor.Shape{1}}},
	}
	symbolicModel = IO{ // a sequence model: batch and length both symbolic
		Inputs:  []TensorInfo{{"tokens", tensor.Int64, tensor.Shape{-1, -1}}},
		Outputs: []TensorInfo{{"text", tensor.Bytes, tensor.Shape{-1, -1}}},
	}
)

func TestAutoComplete(t *testing.T) {
	for _, tc := range []struct {
		name    string
		config  string // config.pbtxt as written; explicitMaxBatch comes from HasMaxBatchSize
		io      IO
		want    string // the completed config, as pbtxt
		wantErr string
	}{
		{
			name:   "no config from a dynamic-batch model gets max_batch_size 4 and batch-less dims",
			config: ``,
			io:     dynamicBatchModel,
			want: `max_batch_size: 4
				input [
				  { name: "image" data_type: TYPE_FP32 dims: [ 3, 224, 224 ] },
				  { name: "scale" data_type: TYPE_FP32 dims: [ 1 ] reshape: { } }
				]
				output [ { name: "probs" data_type: TYPE_FP32 dims: [ 1000 ] } ]
				dynamic_batching { }`,
		},
		{
			name:   "fixed first dim means no batching and full dims",
			config: `name: "fixed"`,
			io:     fixedBatchModel,
			want: `name: "fixed"
				input [ { name: "x" data_type: TYPE_FP32 dims: [ 1, 4 ] } ]
				output [ { name: "y" data_type: TYPE_INT64 dims: [ 1 ] } ]`,
		},
		{
			name:   "partial config: listed input filled by name, outputs taken from the model",
			config: `input [ { name: "tokens" } ]  sequence_batching { }`,
			io:     symbolicModel,
			want: `max_batch_size: 4
				input [ { name: "tokens" data_type: TYPE_INT64 dims: [ -1 ] } ]
				output [ { name: "text" data_type: TYPE_STRING dims: [ -1 ] } ]
				sequence_batching { }`,
		},
		{
			name:   "explicit max_batch_size 0 keeps the batch dim in dims",
			config: `max_batch_size: 0`,
			io:     symbolicModel,
			want: `input [ { name: "tokens" data_type: TYPE_INT64 dims: [ -1, -1 ] } ]
				output [ { name: "text" data_type: TYPE_STRING dims: [ -1, -1 ] } ]`,
		},
		{
			name:   "explicit max_batch_size strips the model's batch dim",
			config: `max_batch_size: 32 output [ { name: "probs" } ]`,
			io:     dynamicBatchModel,
			want: `max_batch_size: 32
				input [
				  { name: "image" data_type: TYPE_FP32 dims: [ 3, 224, 224 ] },
				  { name: "scale" data_type: TYPE_FP32 dims: [ 1 ] reshape: { } }
				]
				output [ { name: "probs" data_type: TYPE_FP32 dims: [ 1000 ] } ]
				dynamic_batching { }`,
		},
		{
			name: "a complete config without max_batch_size is left as written",
			config: `input [ { name: "tokens" data_type: TYPE_INT64 dims: [ -1, -1 ] } ]
				output [ { name: "text" data_type: TYPE_STRING dims: [ -1, 7 ] } ]`,
			io: symbolicModel,
			want: `input [ { name: "tokens" data_type: TYPE_INT64 dims: [ -1, -1 ] } ]
				output [ { name: "text" data_type: TYPE_STRING dims: [ -1, 7 ] } ]`,
		},
		{
			name:   "dims written without max_batch_size read as full shapes",
			config: `input [ { name: "tokens" dims: [ -1, 16 ] } ]`,
			io:     symbolicModel,
			want: `input [ { name: "tokens" data_type: TYPE_INT64 dims: [ -1, 16 ] } ]
				output [ { name: "text" data_type: TYPE_STRING dims: [ -1, -1 ] } ]`,
		},
		{
			name:   "a reshape is what the model sees",
			config: `max_batch_size: 2 input [ { name: "image" data_type: TYPE_FP32 dims: [ 150528 ] reshape { shape: [ 3, 224, 224 ] } } ]`,
			io:     dynamicBatchModel,
			want: `max_batch_size: 2
				input [ { name: "image" data_type: TYPE_FP32 dims: [ 150528 ] reshape { shape: [ 3, 224, 224 ] } } ]
				output [ { name: "probs" data_type: TYPE_FP32 dims: [ 1000 ] } ]
				dynamic_batching { }`,
		},
		{
			name:    "conflicting data type names the tensor",
			config:  `input [ { name: "x" data_type: TYPE_INT32 } ]`,
			io:      fixedBatchModel,
			wantErr: `input["x"].data_type: TYPE_INT32 conflicts with the model's TYPE_FP32 (FP32)`,
		},
		{
			name:    "a name the model does not have",
			config:  `output [ { name: "logits" } ]`,
			io:      dynamicBatchModel,
			wantErr: `output["logits"]: not found in the model, whose outputs are probs`,
		},
		{
			name:    "dims that contradict the model",
			config:  `max_batch_size: 8 input [ { name: "image" data_type: TYPE_FP32 dims: [ 3, 256, 256 ] } ]`,
			io:      dynamicBatchModel,
			wantErr: `input["image"]: dims [3,256,256] do not match the model's shape [3,224,224] after the batch dimension`,
		},
		{
			name:    "batching a model whose first dim is fixed",
			config:  `max_batch_size: 8`,
			io:      fixedBatchModel,
			wantErr: `input["x"]: max_batch_size 8 needs a dynamic (-1) first dimension in the model, whose shape is [1,4]`,
		},
		{
			name:    "an element type with no V2 datatype",
			config:  ``,
			io:      IO{Inputs: []TensorInfo{{"c", tensor.Invalid, tensor.Shape{2}}}, Outputs: fixedBatchModel.Outputs},
			wantErr: `input["c"]: the model's element type has no V2 datatype`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.config))
			if err != nil {
				t.Fatal(err)
			}
			err = AutoComplete(cfg, tc.io, HasMaxBatchSize([]byte(tc.config)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("AutoComplete(%q) err = %v, want %q", tc.config, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("AutoComplete(%q) err = %v", tc.config, err)
			}
			want, err := Parse([]byte(tc.want))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, cfg, protocmp.Transform()); diff != "" {
				t.Errorf("AutoComplete(%q) mismatch (-want +got):\n%s", tc.config, diff)
			}
		})
	}
}

// The completed config must pass Validate once defaults are set: the two are
// used in that order by the repository.
func TestAutoCompleteThenValidate(t *testing.T) {
	for name, io := range map[string]IO{"dyn": dynamicBatchModel, "fixed": fixedBatchModel, "sym": symbolicModel} {
		cfg := new(inference.ModelConfig)
		if err := AutoComplete(cfg, io, false); err != nil {
			t.Fatalf("%s: AutoComplete err = %v", name, err)
		}
		SetDefaults(cfg, name)
		if err := Validate(cfg, name); err != nil {
			t.Errorf("%s: Validate(completed config) err =\n%v", name, err)
		}
	}
}
