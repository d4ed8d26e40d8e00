package core

import (
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// ensRepo serves fixed models, each version "1", with real schedulers over fake
// instances. Ensembles have a nil scheduler, as the repository gives them.
type ensRepo struct {
	models map[string]ensModel
}

type ensModel struct {
	cfg   *inference.ModelConfig
	sched *scheduler.Scheduler
}

func (r *ensRepo) Acquire(_ context.Context, model, version string) (*Lease, error) {
	m, ok := r.models[model]
	if !ok || (version != "" && version != "1") {
		return nil, &NotFoundError{Model: model, Version: version}
	}
	return NewLease(model, "1", m.cfg, m.sched, func() {}), nil
}

func (r *ensRepo) Versions(string) []string     { return []string{"1"} }
func (r *ensRepo) Index(bool) []ModelIndexEntry { return nil }
func (r *ensRepo) Ready(model, version string) (bool, error) {
	l, err := r.Acquire(context.Background(), model, version)
	if err != nil {
		return false, err
	}
	l.Release()
	return true, nil
}

func (r *ensRepo) Healthy() bool                                   { return true }
func (r *ensRepo) Load(context.Context, string, LoadOptions) error { return nil }
func (r *ensRepo) Unload(context.Context, string) error            { return nil }

// ensFn is a fake instance that runs a function; runs counts its executions.
type ensFn struct {
	run  func(ctx context.Context, in map[string][]int32) (map[string][]int32, error)
	runs atomic.Int32
}

func (f *ensFn) Execute(ctx context.Context, in []*tensor.Tensor, _ []string) ([]*tensor.Tensor, error) {
	f.runs.Add(1)
	byName := map[string][]int32{}
	for _, t := range in {
		byName[t.Name] = ensInts(t)
	}
	out, err := f.run(ctx, byName)
	if err != nil {
		return nil, err
	}
	var ts []*tensor.Tensor
	for _, name := range slices.Sorted(maps.Keys(out)) {
		ts = append(ts, ensVec(name, out[name]...))
	}
	return ts, nil
}

func (f *ensFn) Close() error { return nil }

func ensVec(name string, v ...int32) *tensor.Tensor {
	data := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(data[4*i:], uint32(x))
	}
	return &tensor.Tensor{Name: name, DType: tensor.Int32, Shape: tensor.Shape{int64(len(v))}, Data: data}
}

func ensInts(t *tensor.Tensor) []int32 {
	out := make([]int32, len(t.Data)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out
}

// ensServer builds a Server over models: each entry is a config (name, I/O, and for an
// ensemble its steps) and, for a ensPlain model, the fake instance it runs on.
func ensServer(t *testing.T, models map[string]string, instances map[string]*ensFn) *Server {
	t.Helper()
	repo := &ensRepo{models: map[string]ensModel{}}
	for name, text := range models {
		cfg, err := modelconfig.Parse([]byte(`name: "` + name + "\"\n" + text))
		if err != nil {
			t.Fatalf("config of %s: %v", name, err)
		}
		modelconfig.SetDefaults(cfg, name)
		if err := modelconfig.Validate(cfg, name); err != nil {
			t.Fatalf("config of %s: %v", name, err)
		}
		m := ensModel{cfg: cfg}
		if inst := instances[name]; inst != nil {
			m.sched = scheduler.New(name, []scheduler.Instance{inst}, scheduler.Options{})
			t.Cleanup(func() { m.sched.Close() })
		}
		repo.models[name] = m
	}
	return New(Options{Repository: repo})
}

// ensIO declares INT32 [2] inputs and outputs; an input named with a "?" suffix is optional.
func ensIO(inputs, outputs []string) string {
	var b strings.Builder
	for _, in := range inputs {
		opt := strings.HasSuffix(in, "?")
		b.WriteString(`input { name: "` + strings.TrimSuffix(in, "?") + `" data_type: TYPE_INT32 dims: [ 2 ]`)
		if opt {
			b.WriteString(" optional: true")
		}
		b.WriteString(" }\n")
	}
	for _, out := range outputs {
		b.WriteString(`output { name: "` + out + `" data_type: TYPE_INT32 dims: [ 2 ] }` + "\n")
	}
	return b.String()
}

const ensPlain = "backend: \"fake\"\n"

func ensSteps(steps string) string {
	return "platform: \"ensemble\"\nensemble_scheduling { step [ " + steps + " ] }\n"
}

// add returns S = A + B and D = A - B.
func ensAdd() *ensFn {
	return &ensFn{run: func(_ context.Context, in map[string][]int32) (map[string][]int32, error) {
		a, b := in["A"], in["B"]
		return map[string][]int32{"S": {a[0] + b[0], a[1] + b[1]}, "D": {a[0] - b[0], a[1] - b[1]}}, nil
	}}
}

// ensPass returns Y = X once release returns.
func ensPass(release func(ctx context.Context) error) *ensFn {
	return &ensFn{run: func(ctx context.Context, in map[string][]int32) (map[string][]int32, error) {
		if err := release(ctx); err != nil {
			return nil, err
		}
		return map[string][]int32{"Y": in["X"]}, nil
	}}
}

func ensInfer(s *Server, ctx context.Context, model string, outputs []string, in ...*tensor.Tensor) (map[string][]int32, error) {
	req := &InferRequest{Model: model, Inputs: in}
	for _, o := range outputs {
		req.Outputs = append(req.Outputs, RequestedOutput{Name: o})
	}
	resp, err := s.Infer(ctx, req)
	if err != nil {
		return nil, err
	}
	out := map[string][]int32{}
	for _, t := range resp.Outputs {
		out[t.Name] = ensInts(t)
	}
	return out, nil
}

// TestEnsembleDiamondRunsIndependentStepsTogether: the two branches of a diamond run at
// the same time (each waits until the other has started), the join runs on their
// outputs, and the ensemble and every step model record their own statistics.
func TestEnsembleDiamondRunsIndependentStepsTogether(t *testing.T) {
	var both sync.WaitGroup
	both.Add(2)
	meet := func(ctx context.Context) error {
		both.Done()
		done := make(chan struct{})
		go func() { both.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-time.After(10 * time.Second):
			both.Done() // free the waiter goroutine
			return errors.New("the other branch never started: independent steps ran one after the other")
		}
	}
	s := ensServer(t, map[string]string{
		"left":  ensPlain + ensIO([]string{"X"}, []string{"Y"}),
		"right": ensPlain + ensIO([]string{"X"}, []string{"Y"}),
		"add":   ensPlain + ensIO([]string{"A", "B"}, []string{"S", "D"}),
		"diamond": ensIO([]string{"IN0", "IN1"}, []string{"OUT"}) + ensSteps(`
			{ model_name: "add" model_version: -1 input_map [ { key: "A" value: "l" }, { key: "B" value: "r" } ] output_map { key: "S" value: "OUT" } },
			{ model_name: "left" model_version: -1 input_map { key: "X" value: "IN0" } output_map { key: "Y" value: "l" } },
			{ model_name: "right" model_version: 1 input_map { key: "X" value: "IN1" } output_map { key: "Y" value: "r" } }`),
	}, map[string]*ensFn{"left": ensPass(meet), "right": ensPass(meet), "add": ensAdd()})

	got, err := ensInfer(s, t.Context(), "diamond", nil, ensVec("IN0", 1, 2), ensVec("IN1", 10, 20))
	if err != nil {
		t.Fatalf("infer diamond: %v", err)
	}
	if !slices.Equal(got["OUT"], []int32{11, 22}) || len(got) != 1 {
		t.Errorf("diamond outputs %v, want only OUT [11 22]", got)
	}
	for _, model := range []string{"diamond", "left", "right", "add"} {
		st, err := s.ModelStatistics(t.Context(), model, "")
		if err != nil || len(st) != 1 || st[0].Success.Count != 1 || st[0].InferenceCount != 1 {
			t.Errorf("stats of %s: %+v, %v; want one success of one item", model, st, err)
		}
	}
	if st, _ := s.ModelStatistics(t.Context(), "diamond", ""); len(st) == 1 && st[0].ExecutionCount != 0 {
		t.Errorf("diamond execution_count %d, want 0: an ensemble executes nothing itself", st[0].ExecutionCount)
	}
}

// TestEnsembleRunsOnlyStepsForRequestedOutputs: asking for one output skips the steps
// that lead only to the others; a chain maps each step's outputs to the next's inputs.
func TestEnsembleRunsOnlyStepsForRequestedOutputs(t *testing.T) {
	first, second, other := ensAdd(), ensAdd(), ensAdd()
	s := ensServer(t, map[string]string{
		"first":  ensPlain + ensIO([]string{"A", "B"}, []string{"S", "D"}),
		"second": ensPlain + ensIO([]string{"A", "B"}, []string{"S", "D"}),
		"other":  ensPlain + ensIO([]string{"A", "B"}, []string{"S", "D"}),
		"chain": ensIO([]string{"IN0", "IN1"}, []string{"TWICE_A", "TWICE_B", "SIDE"}) + ensSteps(`
			{ model_name: "first" model_version: -1 input_map [ { key: "A" value: "IN0" }, { key: "B" value: "IN1" } ]
			  output_map [ { key: "S" value: "sum" }, { key: "D" value: "diff" } ] },
			{ model_name: "second" model_version: -1 input_map [ { key: "A" value: "sum" }, { key: "B" value: "diff" } ]
			  output_map [ { key: "S" value: "TWICE_A" }, { key: "D" value: "TWICE_B" } ] },
			{ model_name: "other" model_version: -1 input_map [ { key: "A" value: "IN0" }, { key: "B" value: "IN0" } ]
			  output_map { key: "S" value: "SIDE" } }`),
	}, map[string]*ensFn{"first": first, "second": second, "other": other})

	got, err := ensInfer(s, t.Context(), "chain", []string{"TWICE_B"}, ensVec("IN0", 3, 4), ensVec("IN1", 5, 6))
	if err != nil {
		t.Fatalf("infer chain: %v", err)
	}
	if !slices.Equal(got["TWICE_B"], []int32{10, 12}) || len(got) != 1 {
		t.Errorf("chain outputs %v, want only TWICE_B [10 12]", got)
	}
	if n := other.runs.Load(); n != 0 {
		t.Errorf("step model 'other' ran %d times for an output that does not need it", n)
	}
	got, err = ensInfer(s, t.Context(), "chain", nil, ensVec("IN0", 3, 4), ensVec("IN1", 5, 6))
	if err != nil {
		t.Fatalf("infer chain, all outputs: %v", err)
	}
	want := map[string][]int32{"TWICE_A": {6, 8}, "TWICE_B": {10, 12}, "SIDE": {6, 8}}
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Errorf("chain %s = %v, want %v", name, got[name], w)
		}
	}
}

// TestEnsembleStepErrorNamesStepAndCancelsTheOthers: a failing step fails the request
// with the step and its model named, and the step still running sees its context end.
func TestEnsembleStepErrorNamesStepAndCancelsTheOthers(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan struct{})
	waiter := ensPass(func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return ctx.Err()
	})
	broken := &ensFn{run: func(ctx context.Context, _ map[string][]int32) (map[string][]int32, error) {
		<-started
		return nil, errors.New("boom")
	}}
	s := ensServer(t, map[string]string{
		"waiter": ensPlain + ensIO([]string{"X"}, []string{"Y"}),
		"broken": ensPlain + ensIO([]string{"X"}, []string{"Y"}),
		"fails": ensIO([]string{"IN"}, []string{"A", "B"}) + ensSteps(`
			{ model_name: "waiter" model_version: -1 input_map { key: "X" value: "IN" } output_map { key: "Y" value: "A" } },
			{ model_name: "broken" model_version: -1 input_map { key: "X" value: "IN" } output_map { key: "Y" value: "B" } }`),
	}, map[string]*ensFn{"waiter": waiter, "broken": broken})

	_, err := ensInfer(s, t.Context(), "fails", nil, ensVec("IN", 1, 2))
	want := "ensemble 'fails' version 1: step 1 (model 'broken'): model 'broken' version 1: inference failed: boom"
	if err == nil || err.Error() != want {
		t.Errorf("infer fails: err = %v, want %q", err, want)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the step still running was never cancelled")
	}
	if st, _ := s.ModelStatistics(t.Context(), "fails", ""); len(st) != 1 || st[0].Fail.Count != 1 {
		t.Errorf("stats of fails: %+v, want one failure", st)
	}
}

// TestEnsembleCancellationReachesSteps: when the caller goes away, the running step's
// context ends and the request fails at once.
func TestEnsembleCancellationReachesSteps(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan struct{})
	waiter := ensPass(func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return ctx.Err()
	})
	s := ensServer(t, map[string]string{
		"waiter": ensPlain + ensIO([]string{"X"}, []string{"Y"}),
		"wait":   ensIO([]string{"IN"}, []string{"OUT"}) + ensSteps(`{ model_name: "waiter" model_version: -1 input_map { key: "X" value: "IN" } output_map { key: "Y" value: "OUT" } }`),
	}, map[string]*ensFn{"waiter": waiter})
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-started; cancel() }()
	_, err := ensInfer(s, ctx, "wait", nil, ensVec("IN", 1, 2))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "step 0 (model 'waiter')") {
		t.Errorf("infer wait, cancelled: err = %v, want unavailable naming step 0 (model 'waiter')", err)
	}
	<-cancelled
}

// TestEnsembleErrorsNameTheProblem covers the failures a config can only show at run
// time: a step model that is not loaded, ensembles naming each other, and an optional
// ensemble input the request leaves out (which is fine).
func TestEnsembleErrorsNameTheProblem(t *testing.T) {
	opt := &ensFn{run: func(_ context.Context, in map[string][]int32) (map[string][]int32, error) {
		if _, ok := in["B"]; ok {
			return nil, errors.New("optional input B was given a value")
		}
		return map[string][]int32{"S": in["A"]}, nil
	}}
	s := ensServer(t, map[string]string{
		"ghostly": ensIO([]string{"IN"}, []string{"OUT"}) + ensSteps(`{ model_name: "ghost" model_version: -1 input_map { key: "X" value: "IN" } output_map { key: "Y" value: "OUT" } }`),
		"ping":    ensIO([]string{"IN"}, []string{"OUT"}) + ensSteps(`{ model_name: "pong" model_version: -1 input_map { key: "IN" value: "IN" } output_map { key: "OUT" value: "OUT" } }`),
		"pong":    ensIO([]string{"IN"}, []string{"OUT"}) + ensSteps(`{ model_name: "ping" model_version: -1 input_map { key: "IN" value: "IN" } output_map { key: "OUT" value: "OUT" } }`),
		"opt":     ensPlain + ensIO([]string{"A", "B?"}, []string{"S"}),
		"maybe": ensIO([]string{"IN", "EXTRA?"}, []string{"OUT"}) + ensSteps(`
			{ model_name: "opt" model_version: -1 input_map [ { key: "A" value: "IN" }, { key: "B" value: "EXTRA" } ] output_map { key: "S" value: "OUT" } }`),
	}, map[string]*ensFn{"opt": opt})

	_, err := ensInfer(s, t.Context(), "ghostly", nil, ensVec("IN", 1, 2))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) ||
		!strings.Contains(err.Error(), "ensemble 'ghostly' version 1: step 0 (model 'ghost'): Request for unknown model: 'ghost' is not found") {
		t.Errorf("infer ghostly: err = %v, want unavailable (not not-found) naming step 0 and model 'ghost'", err)
	}
	_, err = ensInfer(s, t.Context(), "ping", nil, ensVec("IN", 1, 2))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "ensembles nest more than 8 deep") ||
		!strings.HasPrefix(err.Error(), "ensemble 'ping' version 1: step 0 (model 'pong'): ensemble 'pong' version 1: step 0 (model 'ping'): ") {
		t.Errorf("infer ping: err = %v, want the nesting limit, with the path through ping and pong", err)
	}
	got, err := ensInfer(s, t.Context(), "maybe", nil, ensVec("IN", 7, 8))
	if err != nil || !slices.Equal(got["OUT"], []int32{7, 8}) {
		t.Errorf("infer maybe without EXTRA: %v, %v; want OUT [7 8]", got, err)
	}
}
