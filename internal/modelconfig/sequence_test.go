package modelconfig

import (
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

// accumulatorModel is onnxgen.Accumulator with a START control input added.
var accumulatorModel = IO{
	Inputs: []TensorInfo{
		{"INPUT", tensor.Int32, tensor.Shape{-1, 1}},
		{"INPUT_STATE", tensor.Int32, tensor.Shape{-1, 1}},
		{"START", tensor.Int32, tensor.Shape{-1, 1}},
	},
	Outputs: []TensorInfo{
		{"OUTPUT", tensor.Int32, tensor.Shape{-1, 1}},
		{"OUTPUT_STATE", tensor.Int32, tensor.Shape{-1, 1}},
	},
}

const sequenceBatching = `sequence_batching {
  control_input [ { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] } ]
  state [ { input_name: "INPUT_STATE" output_name: "OUTPUT_STATE" data_type: TYPE_INT32 dims: [ 1 ] } ]
}`

func TestAutoCompleteLeavesSequenceTensorsOut(t *testing.T) {
	config := "max_batch_size: 8\n" + sequenceBatching
	cfg, err := Parse([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	if err := AutoComplete(cfg, accumulatorModel, true); err != nil {
		t.Fatal(err)
	}
	want, err := Parse([]byte(`max_batch_size: 8
		input [ { name: "INPUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
		output [ { name: "OUTPUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
		` + sequenceBatching))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, cfg, protocmp.Transform()); diff != "" {
		t.Errorf("completed config mismatch (-want +got):\n%s", diff)
	}
}

func TestAutoCompleteChecksSequenceTensors(t *testing.T) {
	for _, tc := range []struct {
		name, batching, want string
	}{
		{"unknown control input",
			`sequence_batching { control_input [ { name: "GO" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] } ] }`,
			`sequence_batching.control_input[0]: "GO" is not among the model's inputs`},
		{"control of the wrong type",
			`sequence_batching { control_input [ { name: "START" control [ { kind: CONTROL_SEQUENCE_START fp32_false_true: [ 0, 1 ] } ] } ] }`,
			`sequence_batching.control_input[0]: "START" is INT32 in the model, the config gives it FP32`},
		{"state output missing",
			`sequence_batching { state [ { input_name: "INPUT_STATE" output_name: "NEXT" data_type: TYPE_INT32 dims: [ 1 ] } ] }`,
			`sequence_batching.state[0].output_name: "NEXT" is not among the model's outputs`},
		{"state dims",
			`sequence_batching { state [ { input_name: "INPUT_STATE" output_name: "OUTPUT_STATE" data_type: TYPE_INT32 dims: [ 4 ] } ] }`,
			`sequence_batching.state[0].input_name: "INPUT_STATE": dims [4] do not match the model's shape [1]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte("max_batch_size: 8\n" + tc.batching))
			if err != nil {
				t.Fatal(err)
			}
			err = AutoComplete(cfg, accumulatorModel, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("AutoComplete err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
