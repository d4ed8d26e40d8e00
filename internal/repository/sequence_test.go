package repository

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/google/go-cmp/cmp"
)

func TestSequencingFromConfig(t *testing.T) {
	vdir := filepath.Join(t.TempDir(), "acc", "1")
	if err := os.MkdirAll(filepath.Join(vdir, initialStateDir), 0o755); err != nil {
		t.Fatal(err)
	}
	seven := binary.LittleEndian.AppendUint32(nil, 7)
	if err := os.WriteFile(filepath.Join(vdir, initialStateDir, "seven.bin"), seven, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := modelconfig.Parse([]byte(`max_batch_size: 4
sequence_batching {
  oldest { max_candidate_sequences: 3 preferred_batch_size: [ 2 ] max_queue_delay_microseconds: 500 }
  max_sequence_idle_microseconds: 2000000
  control_input [
    { name: "S" control [ { kind: CONTROL_SEQUENCE_START fp32_false_true: [ 0, 1 ] } ] },
    { name: "R" control [ { kind: CONTROL_SEQUENCE_READY bool_false_true: [ false, true ] } ] },
    { name: "E" control [ { kind: CONTROL_SEQUENCE_END int32_false_true: [ 5, 9 ] } ] },
    { name: "C" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_STRING } ] }
  ]
  state [ { input_name: "in" output_name: "out" data_type: TYPE_INT32 dims: [ 1 ]
            initial_state { name: "seven" data_type: TYPE_INT32 dims: [ 1 ] data_file: "seven.bin" } } ]
}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := sequencing(cfg, vdir)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	want := &scheduler.Sequencing{
		Strategy: scheduler.StrategyOldest, MaxCandidates: 3, PreferredBatchSizes: []int{2},
		MaxQueueDelay: 500 * time.Microsecond, IdleTimeout: 2 * time.Second,
		Controls: []scheduler.Control{
			{Kind: scheduler.ControlStart, Input: "S", DType: tensor.FP32, False: le.AppendUint32(nil, 0), True: le.AppendUint32(nil, math.Float32bits(1))},
			{Kind: scheduler.ControlReady, Input: "R", DType: tensor.Bool, False: []byte{0}, True: []byte{1}},
			{Kind: scheduler.ControlEnd, Input: "E", DType: tensor.Int32, False: le.AppendUint32(nil, 5), True: le.AppendUint32(nil, 9)},
			{Kind: scheduler.ControlCorrID, Input: "C", DType: tensor.Bytes},
		},
		States: []scheduler.State{{Input: "in", Output: "out", DType: tensor.Int32, Dims: tensor.Shape{1}, Initial: seven}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sequencing mismatch (-want +got):\n%s", diff)
	}
}

func TestSequencingRefuses(t *testing.T) {
	for _, tc := range []struct{ name, batching, want string }{
		{"two controls in one input",
			`control_input [ { name: "X" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] }, { kind: CONTROL_SEQUENCE_END int32_false_true: [ 0, 1 ] } ] } ]`,
			`sequence_batching.control_input[0]: input "X": one control per control input is supported, got 2`},
		{"missing initial state file",
			`state [ { input_name: "i" output_name: "o" data_type: TYPE_INT32 dims: [ 1 ] initial_state { name: "f" data_type: TYPE_INT32 dims: [ 1 ] data_file: "none.bin" } } ]`,
			`sequence_batching.state[0]: initial_state "f": data_file:`},
		{"initial state of another shape",
			`state [ { input_name: "i" output_name: "o" data_type: TYPE_INT32 dims: [ 1 ] initial_state { name: "z" data_type: TYPE_INT32 dims: [ 2 ] zero_data: true } } ]`,
			`initial_state "z": TYPE_INT32[2] differs from the state's TYPE_INT32[1]`},
		{"variable state dims",
			`state [ { input_name: "i" output_name: "o" data_type: TYPE_INT32 dims: [ -1 ] } ]`,
			`a state needs fixed dims`},
		{"iterative sequences", `iterative_sequence: true`, "iterative_sequence: not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := modelconfig.Parse([]byte("max_batch_size: 4\nsequence_batching { " + tc.batching + " }"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = sequencing(cfg, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("sequencing err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
