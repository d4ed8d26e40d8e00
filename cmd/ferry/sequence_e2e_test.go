package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
	"github.com/ferryml/ferry/tools/onnxgen"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// seqState is the implicit state of the accumulator models.
const seqState = `
  state [ { input_name: "INPUT_STATE" output_name: "OUTPUT_STATE" data_type: TYPE_INT32 dims: [ 1 ]
            initial_state { name: "zero" data_type: TYPE_INT32 dims: [ 1 ] zero_data: true } } ]`

// seqIO is the accumulator's client-facing tensors: the state pair stays inside.
const seqIO = `max_batch_size: 8
input [ { name: "INPUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "OUTPUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
instance_group [ { count: 2 kind: KIND_CPU } ]
`

// seqRepo holds the accumulator under each strategy, one with a short idle timeout, and
// the accumulator with control inputs, whose config lists no inputs or outputs (they are
// auto-completed without the control and state tensors).
func seqRepo(t *testing.T) string {
	t.Helper()
	repo := t.TempDir()
	writeModel(t, repo, "acc_direct", 1, onnxgen.Accumulator(), seqIO+`sequence_batching {
  direct { max_queue_delay_microseconds: 2000 minimum_slot_utilization: 0.5 }`+seqState+"\n}\n")
	writeModel(t, repo, "acc_oldest", 1, onnxgen.Accumulator(), seqIO+`sequence_batching {
  oldest { max_candidate_sequences: 6 preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 2000 }`+seqState+"\n}\n")
	writeModel(t, repo, "acc_idle", 1, onnxgen.Accumulator(), seqIO+`sequence_batching {
  max_sequence_idle_microseconds: 200000`+seqState+"\n}\n")
	writeModel(t, repo, "acc_controls", 1, onnxgen.AccumulatorWithControls(), `max_batch_size: 8
sequence_batching {
  control_input [
    { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] },
    { name: "END" control [ { kind: CONTROL_SEQUENCE_END int32_false_true: [ 0, 1 ] } ] },
    { name: "READY" control [ { kind: CONTROL_SEQUENCE_READY int32_false_true: [ 0, 1 ] } ] },
    { name: "CORRID" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 } ] }
  ]`+seqState+"\n}\n")
	return repo
}

// seqStep is one request of a sequence: id is a uint64, an int64 or a string (nil
// sends no sequence_id).
type seqStep struct {
	model      string
	id         any
	start, end bool
	value      int32
	rows       int // 0 means 1
}

// seqResult is a response's outputs by name, as integers.
type seqResult map[string][]int64

func (st seqStep) params() []v2client.Param {
	var p []v2client.Param
	if st.id != nil {
		p = append(p, v2client.Param{Key: "sequence_id", Value: st.id})
	}
	if st.start {
		p = append(p, v2client.Param{Key: "sequence_start", Value: true})
	}
	if st.end {
		p = append(p, v2client.Param{Key: "sequence_end", Value: true})
	}
	return p
}

// seqSend sends a step over proto (REST as JSON) with the sequence parameters in the
// protocol's types; it is safe in any goroutine.
func seqSend(ctx context.Context, ts *testServer, proto string, st seqStep) (seqResult, error) {
	rows := max(st.rows, 1)
	data := make([]int32, rows)
	for i := range data {
		data[i] = st.value
	}
	in := &tensor.Tensor{Name: "INPUT", DType: tensor.Int32, Shape: tensor.Shape{int64(rows), 1}, Data: e2eLE(data)}
	res, err := ts.v2(proto, st.model, "").Infer(ctx, &v2client.Request{Inputs: []*tensor.Tensor{in}, Parameters: st.params()})
	if err != nil {
		return nil, err
	}
	out := seqResult{}
	for _, o := range res.Outputs {
		switch o.DType {
		case tensor.Int32:
			for j := 0; j+4 <= len(o.Data); j += 4 {
				out[o.Name] = append(out[o.Name], int64(int32(binary.LittleEndian.Uint32(o.Data[j:]))))
			}
		case tensor.Uint64:
			for j := 0; j+8 <= len(o.Data); j += 8 {
				out[o.Name] = append(out[o.Name], int64(binary.LittleEndian.Uint64(o.Data[j:])))
			}
		default:
			return nil, fmt.Errorf("output %s: unexpected datatype %s", o.Name, o.DType)
		}
	}
	return out, nil
}

func TestSequencesAccumulateTheirOwnSums(t *testing.T) {
	ts := startServer(t, seqRepo(t))
	for _, model := range []string{"acc_direct", "acc_oldest"} {
		for _, proto := range []string{"rest", "grpc"} {
			t.Run(model+" over "+proto, func(t *testing.T) {
				const sequences, steps = 12, 8 // more sequences than acc_oldest's 6 candidates
				var wg sync.WaitGroup
				for s := range sequences {
					// Integer and string correlation IDs, in every form the protocol has.
					ids := []any{int64(1000 + s), fmt.Sprintf("%s-%s-%d", model, proto, s)}
					if proto == "grpc" {
						ids = append(ids, uint64(5000+s))
					}
					id := ids[s%len(ids)]
					wg.Go(func() {
						sum := int64(0)
						for step := range steps {
							v := int32(s*100 + step + 1)
							res, err := seqSend(t.Context(), ts, proto, seqStep{model: model, id: id, start: step == 0, end: step == steps-1, value: v})
							if err != nil {
								t.Errorf("sequence %v step %d: %v", id, step, err)
								return
							}
							sum += int64(v)
							if got := res["OUTPUT"]; !slices.Equal(got, []int64{sum}) || len(res) != 1 {
								t.Errorf("sequence %v step %d: outputs %v, want only OUTPUT [%d]", id, step, res, sum)
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
	for _, model := range []string{"acc_direct", "acc_oldest"} {
		var stats struct {
			ModelStats []struct {
				InferenceCount int `json:"inference_count"`
				ExecutionCount int `json:"execution_count"`
			} `json:"model_stats"`
		}
		_, _, b := httpDo(t, "GET", ts.URL+"/v2/models/"+model+"/stats", "", nil)
		if err := json.Unmarshal(b, &stats); err != nil || len(stats.ModelStats) != 1 {
			t.Fatalf("stats of %s: %s (%v)", model, b, err)
		}
		// Batching across sequences depends on timing, so it is reported, not asserted.
		s := stats.ModelStats[0]
		t.Logf("%s: %d requests in %d executions", model, s.InferenceCount, s.ExecutionCount)
	}
}

func TestSequenceControlsReachTheModel(t *testing.T) {
	ts := startServer(t, seqRepo(t))
	// Auto-complete left the control and state tensors out of the metadata.
	code, _, b := httpDo(t, "GET", ts.URL+"/v2/models/acc_controls", "", nil)
	if code != 200 {
		t.Fatalf("metadata: %d %s", code, b)
	}
	var md struct {
		Inputs, Outputs []struct{ Name string }
	}
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	var ins, outs []string
	for _, x := range md.Inputs {
		ins = append(ins, x.Name)
	}
	for _, x := range md.Outputs {
		outs = append(outs, x.Name)
	}
	if !slices.Equal(ins, []string{"INPUT"}) || !slices.Equal(outs, []string{"OUTPUT", "CONTROLS", "CORRID_OUT"}) {
		t.Errorf("metadata inputs %v outputs %v, want [INPUT] and [OUTPUT CONTROLS CORRID_OUT]", ins, outs)
	}
	for _, proto := range []string{"rest", "grpc"} {
		id := map[string]any{"rest": int64(77), "grpc": uint64(1) << 40}[proto]
		corr := map[string]int64{"rest": 77, "grpc": 1 << 40}[proto]
		// CONTROLS = START + 2·END + 4·READY.
		for i, tc := range []struct {
			start, end bool
			value      int32
			sum, ctl   int64
		}{{true, false, 3, 3, 5}, {false, false, 4, 7, 4}, {false, true, 5, 12, 6}} {
			res, err := seqSend(t.Context(), ts, proto, seqStep{model: "acc_controls", id: id, start: tc.start, end: tc.end, value: tc.value})
			if err != nil {
				t.Fatalf("%s step %d: %v", proto, i, err)
			}
			want := seqResult{"OUTPUT": {tc.sum}, "CONTROLS": {tc.ctl}, "CORRID_OUT": {corr}}
			for name, w := range want {
				if !slices.Equal(res[name], w) {
					t.Errorf("%s step %d: %s = %v, want %v", proto, i, name, res[name], w)
				}
			}
		}
	}
}

func TestSequenceErrors(t *testing.T) {
	ts := startServer(t, seqRepo(t))
	if _, err := seqSend(t.Context(), ts, "rest", seqStep{model: "acc_idle", id: int64(9), start: true, value: 1}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // max_sequence_idle_microseconds is 200 ms
	for _, tc := range []struct {
		what string
		st   seqStep
		want string
	}{
		{"after the idle time without START", seqStep{model: "acc_idle", id: int64(9), value: 1}, "sequence 9 is not active"},
		{"never started", seqStep{model: "acc_idle", id: "nobody", value: 1}, `sequence "nobody" is not active`},
		{"no sequence_id", seqStep{model: "acc_idle", value: 1}, "needs a sequence_id parameter"},
		{"two rows", seqStep{model: "acc_idle", id: int64(10), start: true, value: 1, rows: 2}, "must have batch size 1, got 2"},
		{"sequence_start not a boolean", seqStep{model: "acc_idle", id: int64(11), value: 1}, `parameter "sequence_start": want a boolean`},
	} {
		st := tc.st
		rest := func() (seqResult, error) { return seqSend(t.Context(), ts, "rest", st) }
		if tc.what == "sequence_start not a boolean" {
			rest = func() (seqResult, error) {
				return seqRESTParams(t, ts, v2client.Param{Key: "sequence_id", Value: 11}, v2client.Param{Key: "sequence_start", Value: "yes"})
			}
		}
		_, err := rest()
		if err == nil || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("REST, %s: %v, want HTTP 400 containing %q", tc.what, err, tc.want)
		}
		if tc.what == "sequence_start not a boolean" {
			continue
		}
		_, err = seqSend(t.Context(), ts, "grpc", st)
		e2eWantStatus(t, "gRPC, "+tc.what, err, codes.InvalidArgument, tc.want)
	}
	// A new START after the release works, from a fresh state.
	res, err := seqSend(t.Context(), ts, "grpc", seqStep{model: "acc_idle", id: int64(9), start: true, value: 4})
	if err != nil || !slices.Equal(res["OUTPUT"], []int64{4}) {
		t.Errorf("restart after release: %v %v, want OUTPUT [4]", res, err)
	}
	if _, err := seqSend(t.Context(), ts, "grpc", seqStep{model: "acc_idle", id: int64(12), start: true, end: true, value: 1}); status.Code(err) != codes.OK {
		t.Errorf("START and END in one request: %v", err)
	}
}

// seqRESTParams sends one INPUT row to acc_idle over REST with the given parameters,
// whatever their types.
func seqRESTParams(t *testing.T, ts *testServer, params ...v2client.Param) (seqResult, error) {
	in := &tensor.Tensor{Name: "INPUT", DType: tensor.Int32, Shape: tensor.Shape{1, 1}, Data: e2eLE([]int32{1})}
	_, err := ts.rest.Model("acc_idle", "").Infer(t.Context(), &v2client.Request{Inputs: []*tensor.Tensor{in}, Parameters: params})
	return seqResult{}, err
}
