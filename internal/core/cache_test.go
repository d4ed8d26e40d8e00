package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/ferryml/ferry/internal/cache"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// doubler is a fake instance: OUT = 2*IN (FP32), OUT2 = IN; it counts its runs.
type doubler struct {
	mu   sync.Mutex
	runs int
	fail error
}

func (d *doubler) Execute(_ context.Context, in []*tensor.Tensor, want []string) ([]*tensor.Tensor, error) {
	d.mu.Lock()
	d.runs++
	fail := d.fail
	d.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	x := in[0]
	out := make([]byte, len(x.Data))
	for i := 0; i+4 <= len(out); i += 4 {
		binary.LittleEndian.PutUint32(out[i:], math.Float32bits(2*math.Float32frombits(binary.LittleEndian.Uint32(x.Data[i:]))))
	}
	all := map[string]*tensor.Tensor{
		"OUT":  {Name: "OUT", DType: tensor.FP32, Shape: x.Shape, Data: out},
		"OUT2": {Name: "OUT2", DType: tensor.FP32, Shape: x.Shape, Data: bytes.Clone(x.Data)},
	}
	if want == nil {
		want = []string{"OUT", "OUT2"}
	}
	var res []*tensor.Tensor
	for _, n := range want {
		res = append(res, all[n])
	}
	return res, nil
}

func (d *doubler) Close() error { return nil }

func (d *doubler) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runs
}

// oneModel is a fake Repository serving model "m" version 1 on one scheduler, which
// reload replaces as a reload from changed files would.
type oneModel struct {
	cfg  *inference.ModelConfig
	inst *doubler
	mu   sync.Mutex
	s    *scheduler.Scheduler
}

func newOneModel(t testing.TB, caching bool) *oneModel {
	io := func(name string) []*inference.ModelInput {
		return []*inference.ModelInput{{Name: name, DataType: inference.DataType_TYPE_FP32, Dims: []int64{2}}}
	}
	cfg := &inference.ModelConfig{Name: "m", MaxBatchSize: 4, Input: io("IN"),
		Output: []*inference.ModelOutput{{Name: "OUT", DataType: inference.DataType_TYPE_FP32, Dims: []int64{2}},
			{Name: "OUT2", DataType: inference.DataType_TYPE_FP32, Dims: []int64{2}}}}
	if caching {
		cfg.ResponseCache = &inference.ModelResponseCache{Enable: true}
	}
	r := &oneModel{cfg: cfg, inst: &doubler{}}
	r.reload()
	t.Cleanup(func() { r.s.Close() })
	return r
}

func (r *oneModel) reload() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s != nil {
		r.s.Close()
	}
	r.inst = &doubler{}
	r.s = scheduler.New("m/1", []scheduler.Instance{r.inst}, scheduler.Options{MaxBatchSize: 4})
}

func (r *oneModel) Acquire(_ context.Context, model, version string) (*Lease, error) {
	if model != "m" {
		return nil, &NotFoundError{Model: model}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return NewLease("m", "1", r.cfg, r.s, func() {}), nil
}
func (r *oneModel) Versions(string) []string     { return []string{"1"} }
func (r *oneModel) Index(bool) []ModelIndexEntry { return nil }
func (r *oneModel) Ready(model, version string) (bool, error) {
	l, err := r.Acquire(context.Background(), model, version)
	if err != nil {
		return false, err
	}
	l.Release()
	return true, nil
}

func (r *oneModel) Healthy() bool                                   { return true }
func (r *oneModel) Load(context.Context, string, LoadOptions) error { return nil }
func (r *oneModel) Unload(context.Context, string) error            { return nil }

func f32s(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func request(data ...float32) *InferRequest {
	return &InferRequest{Model: "m", Inputs: []*tensor.Tensor{
		{Name: "IN", DType: tensor.FP32, Shape: tensor.Shape{int64(len(data) / 2), 2}, Data: f32s(data...)}}}
}

func infer(t *testing.T, s *Server, req *InferRequest) *InferResponse {
	t.Helper()
	resp, err := s.Infer(context.Background(), req)
	if err != nil {
		t.Fatalf("Infer: %v", err)
	}
	return resp
}

func TestCacheHitSkipsTheModel(t *testing.T) {
	repo := newOneModel(t, true)
	s := New(Options{Repository: repo, Cache: cache.New(1 << 20)})
	first := infer(t, s, request(1, 2, 3, 4))
	req := request(1, 2, 3, 4)
	req.ID = "second"
	second := infer(t, s, req)
	if repo.inst.count() != 1 {
		t.Fatalf("model ran %d times for two equal requests, want 1", repo.inst.count())
	}
	if second.ID != "second" || second.Model != "m" || second.Version != "1" || len(second.Outputs) != 2 {
		t.Fatalf("hit response %+v; want id second, model m version 1, two outputs", second)
	}
	for i := range first.Outputs {
		a, b := first.Outputs[i], second.Outputs[i]
		if a.Name != b.Name || a.Shape.String() != b.Shape.String() || !bytes.Equal(a.Data, b.Data) {
			t.Errorf("output %d: hit %v %v %v differs from the run's %v %v %v", i, b.Name, b.Shape, b.Data, a.Name, a.Shape, a.Data)
		}
	}
	st := s.StatsSnapshot()
	if len(st) != 1 {
		t.Fatalf("stats %+v", st)
	}
	ms := st[0]
	if ms.Success.Count != 2 || ms.InferenceCount != 4 || ms.ExecutionCount != 1 || ms.CacheHit.Count != 1 ||
		ms.CacheMiss.Count != 1 || ms.Queue.Count != 2 || ms.ComputeInfer.Count != 1 {
		t.Errorf("stats: success %d items %d executions %d hits %d misses %d queue %d infer %d; want 2 4 1 1 1 2 1",
			ms.Success.Count, ms.InferenceCount, ms.ExecutionCount, ms.CacheHit.Count, ms.CacheMiss.Count, ms.Queue.Count, ms.ComputeInfer.Count)
	}
}

// TestCacheKey: whatever changes the outputs changes the key; what does not (input order,
// priority, request id, transport options) keeps it.
func TestCacheKey(t *testing.T) {
	base := func() *InferRequest {
		return &InferRequest{Model: "m", ID: "a", Inputs: []*tensor.Tensor{
			{Name: "A", DType: tensor.FP32, Shape: tensor.Shape{1, 2}, Data: f32s(1, 2)},
			{Name: "B", DType: tensor.FP32, Shape: tensor.Shape{1, 2}, Data: f32s(3, 4)},
		}, Outputs: []RequestedOutput{{Name: "OUT"}}}
	}
	for _, tc := range []struct {
		name     string
		change   func(r *InferRequest)
		wantSame bool
	}{
		{"nothing", func(*InferRequest) {}, true},
		{"input order", func(r *InferRequest) { r.Inputs[0], r.Inputs[1] = r.Inputs[1], r.Inputs[0] }, true},
		{"request id", func(r *InferRequest) { r.ID = "b" }, true},
		{"priority and timeout", func(r *InferRequest) { r.Parameters = Parameters{"priority": int64(1), "timeout": int64(5)} }, true},
		{"binary_data", func(r *InferRequest) { r.Outputs[0].Parameters = Parameters{"binary_data": true} }, true},
		{"data", func(r *InferRequest) { r.Inputs[1].Data = f32s(3, 5) }, false},
		{"shape with the same bytes", func(r *InferRequest) { r.Inputs[0].Shape = tensor.Shape{2, 1} }, false},
		{"datatype with the same bytes", func(r *InferRequest) { r.Inputs[0].DType = tensor.Int32 }, false},
		{"input name", func(r *InferRequest) { r.Inputs[1].Name = "C" }, false},
		{"bytes moved between inputs", func(r *InferRequest) {
			r.Inputs[0].Data, r.Inputs[0].Shape = f32s(1, 2, 3), tensor.Shape{1, 3}
			r.Inputs[1].Data, r.Inputs[1].Shape = f32s(4), tensor.Shape{1, 1}
		}, false},
		{"classification", func(r *InferRequest) { r.Outputs[0].Parameters = Parameters{"classification": int64(2)} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := newOneModel(t, true)
			s := New(Options{Repository: repo, Cache: cache.New(1 << 20)})
			l, _ := repo.Acquire(context.Background(), "m", "")
			a, b := base(), base()
			tc.change(b)
			ka, _ := s.cacheKey(l, a, outputNames(a))
			kb, ok := s.cacheKey(l, b, outputNames(b))
			if !ok || (ka == kb) != tc.wantSame {
				t.Errorf("keys equal = %v (ok %v), want %v", ka == kb, ok, tc.wantSame)
			}
		})
	}
}

func outputNames(r *InferRequest) []string {
	var names []string
	for _, o := range r.Outputs {
		names = append(names, o.Name)
	}
	return names
}

// TestCacheKeyChangesOnReload: a version reloaded from changed files (same name and
// number, new scheduler) does not answer with the old files' responses.
func TestCacheKeyChangesOnReload(t *testing.T) {
	repo := newOneModel(t, true)
	s := New(Options{Repository: repo, Cache: cache.New(1 << 20)})
	infer(t, s, request(1, 2))
	repo.reload()
	infer(t, s, request(1, 2))
	if repo.inst.count() != 1 {
		t.Fatalf("the reloaded model ran %d times, want 1 (no hit from the old load)", repo.inst.count())
	}
	infer(t, s, request(1, 2))
	if repo.inst.count() != 1 {
		t.Fatalf("the reloaded model ran %d times for a repeated request, want 1", repo.inst.count())
	}
}

func TestNoCachingWithoutConfigOrCache(t *testing.T) {
	for _, tc := range []struct {
		name    string
		caching bool
		cache   Cache
	}{
		{"model without response_cache", false, cache.New(1 << 20)},
		{"server without a cache", true, nil},
		{"zero budget", true, cache.New(0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := newOneModel(t, tc.caching)
			s := New(Options{Repository: repo, Cache: tc.cache})
			infer(t, s, request(1, 2))
			infer(t, s, request(1, 2))
			if repo.inst.count() != 2 {
				t.Errorf("model ran %d times for two equal requests, want 2", repo.inst.count())
			}
			if st := s.StatsSnapshot()[0]; st.CacheHit.Count != 0 || st.ExecutionCount != 2 {
				t.Errorf("stats: %d hits %d executions, want 0 and 2", st.CacheHit.Count, st.ExecutionCount)
			}
		})
	}
}

// TestFailuresAreNotCached: a failed run stores nothing and counts no miss; the next
// equal request runs the model again.
func TestFailuresAreNotCached(t *testing.T) {
	repo := newOneModel(t, true)
	c := cache.New(1 << 20)
	s := New(Options{Repository: repo, Cache: c})
	repo.inst.mu.Lock()
	repo.inst.fail = errors.New("boom")
	repo.inst.mu.Unlock()
	if _, err := s.Infer(context.Background(), request(1, 2)); err == nil {
		t.Fatal("Infer succeeded on a failing model")
	}
	repo.inst.mu.Lock()
	repo.inst.fail = nil
	repo.inst.mu.Unlock()
	infer(t, s, request(1, 2))
	if repo.inst.count() != 2 || c.Len() != 1 {
		t.Fatalf("model ran %d times, cache holds %d; want 2 and 1", repo.inst.count(), c.Len())
	}
	if st := s.StatsSnapshot()[0]; st.CacheMiss.Count != 1 || st.Fail.Count != 1 {
		t.Errorf("stats: %d misses %d failures, want 1 and 1", st.CacheMiss.Count, st.Fail.Count)
	}
}

// TestConcurrentHitsAndMisses is for -race: many goroutines ask for a few distinct
// requests; every answer is right and each request is a hit or a miss.
func TestConcurrentHitsAndMisses(t *testing.T) {
	repo := newOneModel(t, true)
	s := New(Options{Repository: repo, Cache: cache.New(1 << 20)})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				v := float32((g + i) % 5)
				resp, err := s.Infer(context.Background(), request(v, v))
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(resp.Outputs[0].Data, f32s(2*v, 2*v)) {
					t.Errorf("request %v answered %v", v, resp.Outputs[0].Data)
					return
				}
			}
		})
	}
	wg.Wait()
	if st := s.StatsSnapshot()[0]; st.Success.Count != 400 || st.CacheHit.Count+st.CacheMiss.Count != 400 {
		t.Errorf("stats: %d successes, %d hits + %d misses; want 400 and 400", st.Success.Count, st.CacheHit.Count, st.CacheMiss.Count)
	}
}
