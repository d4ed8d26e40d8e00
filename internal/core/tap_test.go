package core

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/cache"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// countingRepo counts the leases taken on its model.
type countingRepo struct {
	*oneModel
	leases atomic.Int32
}

func (r *countingRepo) Acquire(ctx context.Context, model, version string) (*Lease, error) {
	r.leases.Add(1)
	return r.oneModel.Acquire(ctx, model, version)
}

// A request whose inputs depend on the model (a raw binary REST body) is built from the
// metadata of the version that runs it, under the one lease that runs it.
func TestPrepareBuildsInputsUnderTheRunningLease(t *testing.T) {
	repo := &countingRepo{oneModel: newOneModel(t, false)}
	s := New(Options{Repository: repo})
	req := &InferRequest{Model: "m"}
	req.Prepare = func(md *ModelMetadata, batching bool) error {
		if len(md.Inputs) != 1 || md.Inputs[0].Name != "IN" || !batching {
			t.Errorf("Prepare got %+v, batching %v; want model m's one input IN, batching", md, batching)
		}
		req.Inputs = []*tensor.Tensor{{Name: "IN", DType: tensor.FP32, Shape: tensor.Shape{1, 2}, Data: f32s(1, 2)}}
		return nil
	}
	resp := infer(t, s, req)
	if n := repo.leases.Load(); n != 1 {
		t.Errorf("%d leases for one request, want 1", n)
	}
	if resp.Version != "1" || len(resp.Outputs) != 2 || string(resp.Outputs[0].Data) != string(f32s(2, 4)) {
		t.Errorf("response %+v; want version 1 with OUT = 2*IN", resp)
	}

	bad := errors.New("raw body does not fit")
	_, err := s.Infer(context.Background(), &InferRequest{Model: "m", Prepare: func(*ModelMetadata, bool) error { return bad }})
	if !errors.Is(err, bad) {
		t.Fatalf("Infer with a failing Prepare: %v, want its error", err)
	}
	if runs := repo.inst.count(); runs != 1 {
		t.Errorf("the model ran %d times; a request whose Prepare failed must not run", runs)
	}
}

// recordingTap keeps copies of the records it sees.
type recordingTap struct {
	mu      sync.Mutex
	records []*Record
}

func (r *recordingTap) Finished(rec *Record) {
	r.mu.Lock()
	r.records = append(r.records, rec.Keep())
	r.mu.Unlock()
}

// A tap sees every request that reached a version: runs, cache hits (which never reach
// the scheduler) and failures, with the request's inputs and the response's outputs.
func TestTapSeesEveryFinishedRequest(t *testing.T) {
	repo := newOneModel(t, true)
	tap := &recordingTap{}
	s := New(Options{Repository: repo, Cache: cache.New(1 << 20), Taps: []Tap{tap}})
	req := request(1, 2)
	req.ID, req.Parameters = "a", Parameters{"priority": int64(2)}
	req.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	infer(t, s, req)
	infer(t, s, request(1, 2))
	repo.inst.mu.Lock()
	repo.inst.fail = errors.New("boom")
	repo.inst.mu.Unlock()
	if _, err := s.Infer(context.Background(), request(5, 6)); err == nil {
		t.Fatal("Infer succeeded on a failing model")
	}
	if _, err := s.Infer(context.Background(), &InferRequest{Model: "nope"}); err == nil {
		t.Fatal("Infer succeeded on an unknown model")
	}
	tap.mu.Lock()
	defer tap.mu.Unlock()
	if len(tap.records) != 3 {
		t.Fatalf("tap saw %d records, want 3 (run, cache hit, failure; an unknown model reaches no version)", len(tap.records))
	}
	run, hit, failed := tap.records[0], tap.records[1], tap.records[2]
	if run.Model != "m" || run.Version != "1" || run.ID != "a" || run.Priority != 2 || run.TraceParent != req.TraceParent || run.Items != 1 || run.Cached || run.Err != nil ||
		string(run.Inputs[0].Data) != string(f32s(1, 2)) || string(run.Outputs[0].Data) != string(f32s(2, 4)) || run.Total <= 0 || run.Timing.Batch != 1 {
		t.Errorf("run record %+v", run)
	}
	if !hit.Cached || hit.Err != nil || hit.Items != 1 || len(hit.Outputs) != 2 || hit.Timing != (scheduler.Timing{}) {
		t.Errorf("cache hit record %+v", hit)
	}
	if failed.Err == nil || failed.Outputs != nil || string(failed.Inputs[0].Data) != string(f32s(5, 6)) {
		t.Errorf("failure record %+v", failed)
	}
}

// Keep copies: what the request or response does with its buffers afterwards does not
// reach a kept record.
func TestRecordKeepCopiesTensors(t *testing.T) {
	in := &tensor.Tensor{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{1, 2}, Data: f32s(1, 2)}
	r := &Record{Inputs: []*tensor.Tensor{in}}
	kept := r.Keep()
	in.Data[0], in.Shape[1] = 9, 7
	if kept.Inputs[0].Data[0] == 9 || kept.Inputs[0].Shape[1] == 7 || kept.Outputs != nil {
		t.Errorf("kept record shares the request's buffers: %+v", kept.Inputs[0])
	}
}

type noopTap struct{}

func (noopTap) Finished(*Record) {}

// BenchmarkTap measures what a no-op subscriber costs a request against none, the two
// servers taking turns in rounds so that machine noise hits both alike:
//
//	go test -run=NONE -bench=Tap -benchtime=1x ./internal/core/
func BenchmarkTap(b *testing.B) {
	repo := newOneModel(b, false)
	servers := map[string]*Server{"none": New(Options{Repository: repo}), "noop": New(Options{Repository: repo, Taps: []Tap{noopTap{}}})}
	const rounds, perRound = 10, 20000
	spent := map[string]time.Duration{}
	for range b.N {
		for range rounds {
			for _, name := range []string{"none", "noop"} {
				start := time.Now()
				for range perRound {
					if _, err := servers[name].Infer(context.Background(), request(1, 2)); err != nil {
						b.Fatal(err)
					}
				}
				spent[name] += time.Since(start)
			}
		}
	}
	n := float64(b.N * rounds * perRound)
	b.ReportMetric(float64(spent["none"].Nanoseconds())/n, "none_ns/req")
	b.ReportMetric(float64(spent["noop"].Nanoseconds())/n, "noop_ns/req")
	b.ReportMetric(float64(spent["noop"])/float64(spent["none"]), "noop/none")
}
