package core

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/router"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// scaler is a fake instance: OUT = factor*IN (FP32). It waits for gate, when set.
type scaler struct {
	factor float32
	gate   chan struct{}
}

func (s *scaler) Execute(ctx context.Context, in []*tensor.Tensor, _ []string) ([]*tensor.Tensor, error) {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	x := in[0]
	out := make([]byte, len(x.Data))
	for i := 0; i+4 <= len(out); i += 4 {
		binary.LittleEndian.PutUint32(out[i:], math.Float32bits(s.factor*math.Float32frombits(binary.LittleEndian.Uint32(x.Data[i:]))))
	}
	return []*tensor.Tensor{{Name: "OUT", DType: tensor.FP32, Shape: x.Shape, Data: out}}, nil
}

func (s *scaler) Close() error { return nil }

// versions is a fake Repository serving model "m" in versions "1" (OUT = IN) and "2"
// (OUT = 2*IN); "" means the newest, 2.
type versions struct {
	cfg *inference.ModelConfig
	s   map[string]*scheduler.Scheduler
}

func newVersions(t testing.TB, two *scaler) *versions {
	cfg := &inference.ModelConfig{Name: "m", MaxBatchSize: 4,
		Input:  []*inference.ModelInput{{Name: "IN", DataType: inference.DataType_TYPE_FP32, Dims: []int64{2}}},
		Output: []*inference.ModelOutput{{Name: "OUT", DataType: inference.DataType_TYPE_FP32, Dims: []int64{2}}}}
	r := &versions{cfg: cfg, s: map[string]*scheduler.Scheduler{
		"1": scheduler.New("m/1", []scheduler.Instance{&scaler{factor: 1}}, scheduler.Options{MaxBatchSize: 4}),
		"2": scheduler.New("m/2", []scheduler.Instance{two}, scheduler.Options{MaxBatchSize: 4}),
	}}
	t.Cleanup(func() {
		for _, s := range r.s {
			s.Close()
		}
	})
	return r
}

func (r *versions) Acquire(_ context.Context, model, version string) (*Lease, error) {
	if version == "" {
		version = "2"
	}
	s, ok := r.s[version]
	if model != "m" || !ok {
		return nil, &NotFoundError{Model: model, Version: version}
	}
	return NewLease("m", version, r.cfg, s, func() {}), nil
}
func (r *versions) Versions(string) []string     { return []string{"1", "2"} }
func (r *versions) Index(bool) []ModelIndexEntry { return nil }
func (r *versions) Ready(model, version string) (bool, error) {
	_, err := r.Acquire(context.Background(), model, version)
	return err == nil, err
}
func (r *versions) Healthy() bool                                   { return true }
func (r *versions) Load(context.Context, string, LoadOptions) error { return nil }
func (r *versions) Unload(context.Context, string) error            { return nil }

func routed(t *testing.T, p *router.Policy, two *scaler, taps ...Tap) *Server {
	t.Helper()
	routes := new(router.Table)
	if err := routes.Set("m", p); err != nil {
		t.Fatal(err)
	}
	return New(Options{Repository: newVersions(t, two), Routes: routes, Taps: taps})
}

func TestAliasesNameVersionsEverywhere(t *testing.T) {
	s := routed(t, &router.Policy{Aliases: map[string]string{"champion": "1", "challenger": "2"}}, &scaler{factor: 2})
	ctx := context.Background()
	for alias, want := range map[string]string{"champion": "1", "challenger": "2", "1": "1", "": "2"} {
		req := request(1, 2)
		req.Version = alias
		if resp := infer(t, s, req); resp.Version != want {
			t.Errorf("version %q answered as %s, want %s", alias, resp.Version, want)
		}
	}
	if ok, err := s.ModelReady(ctx, "m", "champion"); !ok || err != nil {
		t.Errorf("ModelReady(champion) = %v, %v", ok, err)
	}
	if st, err := s.ModelStatistics(ctx, "m", "challenger"); err != nil || len(st) != 1 || st[0].Version != "2" {
		t.Errorf("ModelStatistics(challenger) = %+v, %v", st, err)
	}
	req := request(1, 2)
	req.Version = "nobody"
	_, err := s.Infer(ctx, req)
	if !errors.Is(err, ErrInvalid) || err.Error() != `model 'm' has no alias "nobody", and a version is a number` {
		t.Errorf("an unknown alias: %v", err)
	}
	if _, err := s.ModelMetadata(ctx, "m", "nobody"); !errors.Is(err, ErrInvalid) {
		t.Errorf("metadata of an unknown alias: %v", err)
	}
}

// movingRepo is versions whose version 1 is let go, with the alias moved to 2, in
// the instant between a request's routing decision and its lease, as an endpoint's
// move can do under load (publish the new policy, then let the old version go).
type movingRepo struct {
	*versions
	routes *router.Table
	moved  bool
}

func (r *movingRepo) Acquire(ctx context.Context, model, version string) (*Lease, error) {
	if version == "1" && !r.moved {
		r.moved = true
		delete(r.s, "1")
		if err := r.routes.Set("m", &router.Policy{Aliases: map[string]string{"prod": "2"}}); err != nil {
			return nil, err
		}
	}
	return r.versions.Acquire(ctx, model, version)
}

// TestARequestRoutedToALetGoVersionFollowsTheMove: the request decided on the old
// policy finds its version gone and is decided again under the new one.
func TestARequestRoutedToALetGoVersionFollowsTheMove(t *testing.T) {
	routes := new(router.Table)
	if err := routes.Set("m", &router.Policy{Aliases: map[string]string{"prod": "1"}}); err != nil {
		t.Fatal(err)
	}
	repo := &movingRepo{versions: newVersions(t, &scaler{factor: 2}), routes: routes}
	s := New(Options{Repository: repo, Routes: routes})
	req := request(1, 2)
	req.Version = "prod"
	if resp := infer(t, s, req); resp.Version != "2" || !repo.moved {
		t.Fatalf("answered by version %s (moved %v), want 2 after the move", resp.Version, repo.moved)
	}
	// A version named by number is not routed: gone is gone.
	req = request(1, 2)
	req.Version = "1"
	if _, err := s.Infer(context.Background(), req); !errors.Is(err, ErrNotFound) {
		t.Fatalf("version 1 after it was let go: %v", err)
	}
}

func TestWeightsMatchesAndTheTap(t *testing.T) {
	tap := &recordingTap{}
	s := routed(t, &router.Policy{Arms: []router.Arm{{Version: "1", Weight: 30}, {Version: "2", Weight: 70}},
		Matches: []router.Match{{From: router.SourceHeader, Key: "x-ferry-variant", Value: "b", Version: "2"}}},
		&scaler{factor: 2}, tap)
	const n = 4000
	got := map[string]int{}
	for range n {
		got[infer(t, s, request(1, 2)).Version]++
	}
	if share := float64(got["1"]) / n; math.Abs(share-0.30) > 0.03 {
		t.Errorf("version 1 got %.1f%% of %d requests, want 30%%", 100*share, n)
	}
	for range 50 {
		req := request(1, 2)
		req.Header = http.Header{"X-Ferry-Variant": {"b"}}
		if v := infer(t, s, req).Version; v != "2" {
			t.Fatalf("a request with x-ferry-variant: b went to %s", v)
		}
	}
	routes := map[string]int{}
	for _, r := range tap.records {
		routes[r.Route]++
	}
	if routes["weight"] != n || routes["match"] != 50 {
		t.Errorf("tap routes %v, want %d weight and 50 match", routes, n)
	}
}

func TestShadowRunsAfterTheAnswerAndIsCompared(t *testing.T) {
	tap := &recordingTap{}
	gate := make(chan struct{})
	s := routed(t, &router.Policy{Arms: []router.Arm{{Version: "1", Weight: 100}}, Shadow: &router.Shadow{Version: "2", Percent: 100}},
		&scaler{factor: 2, gate: gate}, tap)
	// The shadow version is stuck: the client still has its answer at once.
	for range 3 {
		if resp := infer(t, s, request(1, 2)); resp.Version != "1" || string(resp.Outputs[0].Data) != string(f32s(1, 2)) {
			t.Fatalf("client got %+v, want version 1's answer", resp)
		}
	}
	close(gate)
	deadline := time.Now().Add(5 * time.Second)
	var shadows []*Record
	for time.Now().Before(deadline) {
		tap.mu.Lock()
		shadows = shadows[:0]
		for _, r := range tap.records {
			if r.Route == RouteShadow {
				shadows = append(shadows, r)
			}
		}
		tap.mu.Unlock()
		if len(shadows) == 3 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(shadows) != 3 {
		t.Fatalf("%d shadow records, want 3", len(shadows))
	}
	for _, r := range shadows {
		// OUT = 2*IN against IN: the largest difference is at IN = 2.
		if r.Version != "2" || r.Err != nil || r.Shadow == nil || r.Shadow.Primary != "1" || r.Shadow.Diff != 2 {
			t.Errorf("shadow record %+v (shadow %+v), want version 2 compared with 1, diff 2", r, r.Shadow)
		}
	}
}

func TestShadowsBeyondTheSlotsAreDropped(t *testing.T) {
	gate := make(chan struct{})
	s := routed(t, &router.Policy{Arms: []router.Arm{{Version: "1", Weight: 100}}, Shadow: &router.Shadow{Version: "2", Percent: 100}},
		&scaler{factor: 2, gate: gate})
	defer close(gate)
	var wg sync.WaitGroup
	for range shadowSlots + 10 {
		wg.Go(func() { infer(t, s, request(1, 2)) })
	}
	wg.Wait()
	if d := s.ShadowsDropped(); d != 10 {
		t.Errorf("%d shadow copies dropped, want the 10 beyond %d slots", d, shadowSlots)
	}
}

func TestOutputDiff(t *testing.T) {
	f := func(name string, shape tensor.Shape, v ...float32) *tensor.Tensor {
		return &tensor.Tensor{Name: name, DType: tensor.FP32, Shape: shape, Data: f32s(v...)}
	}
	s := func(name, v string) *tensor.Tensor {
		return &tensor.Tensor{Name: name, DType: tensor.Bytes, Shape: tensor.Shape{1}, Data: tensor.AppendBytesElement(nil, []byte(v))}
	}
	nan := float32(math.NaN())
	for _, tc := range []struct {
		what      string
		want, got []*tensor.Tensor
		diff      float64
	}{
		{"equal", []*tensor.Tensor{f("y", tensor.Shape{2}, 1, nan)}, []*tensor.Tensor{f("y", tensor.Shape{2}, 1, nan)}, 0},
		{"largest", []*tensor.Tensor{f("y", tensor.Shape{2}, 1, 2)}, []*tensor.Tensor{f("y", tensor.Shape{2}, 1.5, -1)}, 3},
		{"shape", []*tensor.Tensor{f("y", tensor.Shape{2}, 1, 2)}, []*tensor.Tensor{f("y", tensor.Shape{1, 2}, 1, 2)}, math.Inf(1)},
		{"missing", []*tensor.Tensor{f("y", tensor.Shape{1}, 1)}, []*tensor.Tensor{f("z", tensor.Shape{1}, 1)}, math.Inf(1)},
		{"NaN on one side", []*tensor.Tensor{f("y", tensor.Shape{1}, 1)}, []*tensor.Tensor{f("y", tensor.Shape{1}, nan)}, math.Inf(1)},
		{"bytes", []*tensor.Tensor{s("y", "a")}, []*tensor.Tensor{s("y", "b")}, 1},
	} {
		if d := outputDiff(tc.want, tc.got); d != tc.diff {
			t.Errorf("%s: diff %v, want %v", tc.what, d, tc.diff)
		}
	}
}
