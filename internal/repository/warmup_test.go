package repository

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// runLog records every Execute of the fake instances of one test, in order.
type runLog struct {
	mu     sync.Mutex
	runs   []fakeRun
	closed int
	fail   error // when set, every Execute fails with it
}

type fakeRun struct {
	instance int
	inputs   []*tensor.Tensor
}

func (l *runLog) snapshot() ([]fakeRun, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]fakeRun(nil), l.runs...), l.closed
}

// fakeInstance echoes its first input as OUTPUT0 and records the call.
type fakeInstance struct {
	id  int
	log *runLog
}

func (f *fakeInstance) Execute(_ context.Context, in []*tensor.Tensor, _ []string) ([]*tensor.Tensor, error) {
	f.log.mu.Lock()
	defer f.log.mu.Unlock()
	f.log.runs = append(f.log.runs, fakeRun{instance: f.id, inputs: in})
	if f.log.fail != nil {
		return nil, f.log.fail
	}
	return []*tensor.Tensor{{Name: "OUTPUT0", DType: in[0].DType, Shape: in[0].Shape, Data: in[0].Data}}, nil
}

func (f *fakeInstance) Close() error {
	f.log.mu.Lock()
	defer f.log.mu.Unlock()
	f.log.closed++
	return nil
}

var _ scheduler.Instance = (*fakeInstance)(nil)

// fakeRepo is a repository over one model folder whose "onnxruntime" backend opens fake
// instances. states records the state hook's calls, with the runs seen at each.
type fakeRepo struct {
	*Repository
	log    *runLog
	mu     sync.Mutex
	states []string // "READY@6": state and the number of runs at that moment
	execs  int      // Executed calls seen by the scheduler observer
}

func newFakeRepo(t *testing.T, config string, files map[string][]byte) *fakeRepo {
	t.Helper()
	root := t.TempDir()
	files["m/config.pbtxt"] = []byte(config)
	files["m/1/model.onnx"] = []byte("fake")
	for rel, data := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fr := &fakeRepo{log: &runLog{}}
	next := 0
	backend := Backend{Platform: "onnxruntime_onnx", DefaultFilename: "model.onnx",
		Open: func(context.Context, string, *inference.ModelConfig) (scheduler.Instance, error) {
			next++
			return &fakeInstance{id: next, log: fr.log}, nil
		}}
	var err error
	fr.Repository, err = New(Options{Root: root, Mode: ModeExplicit, Backends: Backends{"onnxruntime": backend},
		Hooks: Hooks{State: func(_, _, state string) {
			runs, _ := fr.log.snapshot()
			fr.mu.Lock()
			fr.states = append(fr.states, state+"@"+strconv.Itoa(len(runs)))
			fr.mu.Unlock()
		}},
		SchedulerObserver: func(string, string) scheduler.Observer { return (*countingObserver)(fr) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fr.Close() })
	return fr
}

type countingObserver fakeRepo

func (o *countingObserver) Executed(int) {
	o.mu.Lock()
	o.execs++
	o.mu.Unlock()
}
func (o *countingObserver) Dropped(string)                {}
func (o *countingObserver) QueueDepth(int, int)           {}
func (o *countingObserver) Batched(time.Duration, string) {}

const warmupBase = `name: "m"
backend: "onnxruntime"
max_batch_size: 4
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 3 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 3 ] } ]
instance_group [ { count: 2 kind: KIND_CPU } ]
`

// TestWarmupRunsBeforeReady: every sample runs count times per instance, round every
// instance, with the batch size and data it asks for, before the version is READY; the
// scheduler's metrics observer does not see those runs, and a real request afterwards is.
func TestWarmupRunsBeforeReady(t *testing.T) {
	fr := newFakeRepo(t, warmupBase+`
model_warmup [
  { name: "zeros" batch_size: 2 count: 2 inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } } },
  { name: "random" batch_size: 1 inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 3 ] random_data: true } } }
]`, map[string][]byte{})
	if err := fr.Load(context.Background(), "m", core.LoadOptions{}); err != nil {
		t.Fatalf("Load: %v", err)
	}
	runs, _ := fr.log.snapshot()
	const want = 2*2 + 1*2 // count × instances per sample
	if len(runs) != want {
		t.Fatalf("warmup ran %d times, want %d", len(runs), want)
	}
	fr.mu.Lock()
	states := strings.Join(fr.states, " ")
	fr.mu.Unlock()
	if got := states; got != "LOADING@0 READY@6" {
		t.Fatalf("state hook saw %q, want LOADING@0 READY@6 (all warmup runs before READY)", got)
	}
	perInstance := map[int]int{}
	for i, r := range runs {
		perInstance[r.instance]++
		in := r.inputs[0]
		switch {
		case i < 4:
			if in.Shape.String() != "[2,3]" || !bytes.Equal(in.Data, make([]byte, 24)) {
				t.Errorf("run %d (zeros): shape %v data %v; want [2,3] of zeros", i, in.Shape, in.Data)
			}
		default:
			if in.Shape.String() != "[1,3]" || len(in.Data) != 12 {
				t.Fatalf("run %d (random): shape %v, %d bytes; want [1,3], 12 bytes", i, in.Shape, len(in.Data))
			}
			for j := range 3 {
				if v := math.Float32frombits(binary.LittleEndian.Uint32(in.Data[4*j:])); !(v >= 0 && v < 1) {
					t.Errorf("run %d (random): value %v outside [0, 1)", i, v)
				}
			}
		}
	}
	if perInstance[1] != 3 || perInstance[2] != 3 {
		t.Errorf("runs per instance %v, want 3 each", perInstance)
	}
	fr.mu.Lock()
	if fr.execs != 0 {
		t.Errorf("scheduler observer saw %d warmup executions, want 0", fr.execs)
	}
	fr.mu.Unlock()
	l, err := fr.Acquire(context.Background(), "m", "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	in := &tensor.Tensor{Name: "INPUT0", DType: tensor.FP32, Shape: tensor.Shape{1, 3}, Data: make([]byte, 12)}
	if _, err := l.Scheduler.Submit(context.Background(), &scheduler.Request{Inputs: []*tensor.Tensor{in}}); err != nil {
		t.Fatal(err)
	}
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.execs != 1 {
		t.Errorf("scheduler observer saw %d executions after one request, want 1", fr.execs)
	}
}

// TestWarmupWithDynamicBatching: warmup requests go through the batcher one at a time, so
// each keeps the batch size its sample asked for.
func TestWarmupWithDynamicBatching(t *testing.T) {
	fr := newFakeRepo(t, warmupBase+`dynamic_batching { max_queue_delay_microseconds: 100 }
model_warmup [ { name: "b3" batch_size: 3 count: 3 inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } } } ]`,
		map[string][]byte{})
	if err := fr.Load(context.Background(), "m", core.LoadOptions{}); err != nil {
		t.Fatalf("Load: %v", err)
	}
	runs, _ := fr.log.snapshot()
	if len(runs) != 6 {
		t.Fatalf("warmup ran %d times, want 6", len(runs))
	}
	for i, r := range runs {
		if r.inputs[0].Shape.String() != "[3,3]" {
			t.Errorf("run %d: shape %v, want [3,3]", i, r.inputs[0].Shape)
		}
	}
}

// TestWarmupFileData reads input_data_file from the version's warmup folder first, then
// the model's, and uses BYTES files whole.
func TestWarmupFileData(t *testing.T) {
	f32 := func(vs ...float32) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		return b
	}
	strs := tensor.AppendBytesElement(tensor.AppendBytesElement(nil, []byte("ab")), []byte("c"))
	fr := newFakeRepo(t, `name: "m"
backend: "onnxruntime"
max_batch_size: 0
instance_group [ { count: 1 } ]
input [ { name: "A" data_type: TYPE_FP32 dims: [ 2 ] }, { name: "B" data_type: TYPE_FP32 dims: [ 2 ] }, { name: "S" data_type: TYPE_STRING dims: [ 2 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 2 ] } ]
model_warmup [ { name: "files" batch_size: 1 inputs [
  { key: "A" value: { data_type: TYPE_FP32 dims: [ 2 ] input_data_file: "a.bin" } },
  { key: "B" value: { data_type: TYPE_FP32 dims: [ 2 ] input_data_file: "b.bin" } },
  { key: "S" value: { data_type: TYPE_STRING dims: [ 2 ] input_data_file: "s.bin" } }
] } ]`, map[string][]byte{
		"m/warmup/a.bin":   f32(1, 2, 99), // longer than one item: used from its start, as Triton does
		"m/warmup/b.bin":   f32(3, 4),
		"m/1/warmup/b.bin": f32(5, 6), // the version's own file wins
		"m/warmup/s.bin":   strs,
	})
	if err := fr.Load(context.Background(), "m", core.LoadOptions{}); err != nil {
		t.Fatalf("Load: %v", err)
	}
	runs, _ := fr.log.snapshot()
	if len(runs) != 1 {
		t.Fatalf("warmup ran %d times, want 1", len(runs))
	}
	want := map[string][]byte{"A": f32(1, 2), "B": f32(5, 6), "S": strs}
	for _, in := range runs[0].inputs {
		if in.Shape.String() != "[2]" || !bytes.Equal(in.Data, want[in.Name]) {
			t.Errorf("input %s: shape %v data %v; want [2] %v", in.Name, in.Shape, in.Data, want[in.Name])
		}
	}
}

// TestWarmupFailureFailsTheLoad: a sample that cannot be built or run leaves the version
// UNAVAILABLE with a reason naming the sample, and its instances closed.
func TestWarmupFailureFailsTheLoad(t *testing.T) {
	sample := func(input string) string {
		return warmupBase + `model_warmup [ { name: "s1" batch_size: 1 inputs ` + input + ` } ]`
	}
	for _, tc := range []struct {
		name, config string
		files        map[string][]byte
		fail         error
		want         string
	}{
		{"missing file", sample(`{ key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 3 ] input_data_file: "nope.bin" } }`), nil, nil,
			`input_data_file "nope.bin": found neither`},
		{"short file", sample(`{ key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 3 ] input_data_file: "x.bin" } }`),
			map[string][]byte{"m/warmup/x.bin": make([]byte, 8)}, nil, `input_data_file "x.bin" has 8 bytes; dims need 12`},
		{"bad BYTES file", `name: "m"
backend: "onnxruntime"
input [ { name: "S" data_type: TYPE_STRING dims: [ 2 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_STRING dims: [ 2 ] } ]
instance_group [ { count: 2 } ]
model_warmup [ { name: "s1" batch_size: 1 inputs { key: "S" value: { data_type: TYPE_STRING dims: [ 2 ] input_data_file: "s.bin" } } } ]`,
			map[string][]byte{"m/warmup/s.bin": tensor.AppendBytesElement(nil, []byte("one"))}, nil, "holds 1 BYTES elements; dims need 2"},
		{"unknown input", sample(`[ { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } },
			{ key: "EXTRA" value: { data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } } ]`), nil, nil, `input "EXTRA": model 'm' has no such input`},
		{"missing input", sample(`{ key: "OTHER" value: { data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } }`), nil, nil,
			`input "INPUT0": the model needs it and the sample does not give it`},
		{"wrong data type", sample(`{ key: "INPUT0" value: { data_type: TYPE_INT32 dims: [ 3 ] zero_data: true } }`), nil, nil,
			`input "INPUT0": data_type TYPE_INT32 does not match the model's TYPE_FP32`},
		{"too large", sample(`{ key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 100000, 100000 ] zero_data: true } }`), nil, nil,
			"over the 1073741824-byte warmup limit"},
		{"model fails", sample(`{ key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } }`), nil,
			errors.New("kernel exploded"), "kernel exploded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.files == nil {
				tc.files = map[string][]byte{}
			}
			fr := newFakeRepo(t, tc.config, tc.files)
			fr.log.fail = tc.fail
			err := fr.Load(context.Background(), "m", core.LoadOptions{})
			if err == nil {
				t.Fatal("Load succeeded; want the warmup to fail it")
			}
			idx := fr.Index(false)
			if len(idx) != 1 || idx[0].State != core.StateUnavailable {
				t.Fatalf("index %+v; want m version 1 UNAVAILABLE", idx)
			}
			for _, text := range []string{`warmup sample "s1" (model_warmup[0])`, tc.want} {
				if !strings.Contains(idx[0].Reason, text) || !strings.Contains(err.Error(), text) {
					t.Errorf("reason %q / error %q lack %q", idx[0].Reason, err, text)
				}
			}
			if _, closed := fr.log.snapshot(); closed != 2 {
				t.Errorf("%d of 2 instances closed after the failed load", closed)
			}
			if _, err := fr.Acquire(context.Background(), "m", ""); !errors.Is(err, core.ErrUnavailable) {
				t.Errorf("Acquire after the failed load: %v, want unavailable", err)
			}
		})
	}
}

// TestWarmupStatefulModel: a sequence model's sample runs as batch_size one-row
// sequences (start and end in one request); a sample input naming a control tensor, as
// Triton configs may, is left to the sequence batcher, which fills it in.
func TestWarmupStatefulModel(t *testing.T) {
	fr := newFakeRepo(t, `name: "m"
backend: "onnxruntime"
max_batch_size: 4
instance_group [ { count: 1 } ]
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 3 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 3 ] } ]
sequence_batching { control_input [ { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] } ] }
model_warmup [ { name: "seq" batch_size: 2 count: 2 inputs [
  { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 3 ] random_data: true } },
  { key: "START" value: { data_type: TYPE_INT32 dims: [ 1 ] zero_data: true } } ] } ]`, map[string][]byte{})
	if err := fr.Load(context.Background(), "m", core.LoadOptions{}); err != nil {
		t.Fatalf("Load: %v", err)
	}
	runs, _ := fr.log.snapshot()
	if len(runs) != 4 { // batch_size 2 × count 2 × 1 instance
		t.Fatalf("warmup ran %d times, want 4", len(runs))
	}
	for i, r := range runs {
		var start *tensor.Tensor
		for _, in := range r.inputs {
			if in.Name == "START" {
				start = in
			}
		}
		if start == nil || len(start.Data) < 4 || binary.LittleEndian.Uint32(start.Data) != 1 {
			t.Errorf("run %d: START = %+v, want the batcher's 1 for a sequence start", i, start)
		}
	}
}
