package endpoint

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ferryml/ferry/internal/registry"
	"github.com/ferryml/ferry/internal/router"
)

// pins is a Loader that records what is pinned; fail refuses a version.
type pins struct {
	mu   sync.Mutex
	got  map[string][]int64
	fail int64
}

func (p *pins) Pin(_ context.Context, model string, versions []int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if slices.Contains(versions, p.fail) {
		return errors.New("version failed to load")
	}
	p.got[model] = slices.Clone(versions)
	return nil
}

func (p *pins) of(model string) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got[model]
}

type fixture struct {
	m      *Manager
	store  registry.Store
	routes *router.Table
	pins   *pins
	repo   string
}

// newFixture registers model "m" with versions 1..3, each a repository folder.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	data, repo := t.TempDir(), t.TempDir()
	store, err := registry.OpenDir(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for v := 1; v <= 3; v++ {
		dir := filepath.Join(repo, "m", string(rune('0'+v)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "model.onnx"), []byte{byte(v)}, 0o644)
	}
	if _, err := registry.Import(ctx, store, repo); err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, routes: new(router.Table), pins: &pins{got: map[string][]int64{}}, repo: repo}
	f.m = New(Config{Store: store, Routes: f.routes, Loader: f.pins, RepositoryRoot: repo, Artifacts: registry.NewArtifacts(data, 0),
		Serving: func(context.Context, string) (string, error) { return "3", nil }})
	return f
}

func TestAliasesLoadBeforeTheyMove(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.m.SetAlias(ctx, "m", "champion", 2); err != nil {
		t.Fatal(err)
	}
	// Requests naming no version stay on the one serving them (3), which is frozen
	// as the endpoint's split before 2 loads.
	p := f.routes.Get("m")
	if v, ok := p.Resolve("champion"); !ok || v != "2" || !slices.Equal(f.pins.of("m"), []int64{2, 3}) ||
		!slices.Equal(p.Arms, []router.Arm{{Version: "3", Weight: 100}}) {
		t.Fatalf("champion -> %q (%v), pins %v, arms %v; want 2, pinned beside 3, which gets all unnamed traffic", v, ok, f.pins.of("m"), p.Arms)
	}
	f.pins.fail = 3
	if err := f.m.SetAlias(ctx, "m", "champion", 3); err == nil {
		t.Fatal("an alias moved to a version that fails to load")
	}
	if v, _ := f.routes.Get("m").Resolve("champion"); v != "2" {
		t.Errorf("after a failed move champion -> %s, want 2 still", v)
	}
	if a, _ := f.store.Aliases(ctx, "m"); a["champion"] != 2 {
		t.Errorf("registry has champion -> %d after a failed move", a["champion"])
	}
	f.pins.fail = 0
	if err := f.m.SetAlias(ctx, "m", "champion", 9); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("alias to a version that does not exist: %v", err)
	}
	if err := f.m.SetAlias(ctx, "m", "champion", 1); err != nil {
		t.Fatal(err)
	}
	if got := f.pins.of("m"); !slices.Equal(got, []int64{1, 3}) {
		t.Errorf("after moving champion to 1: pinned %v, want [1 3] (2 let go)", got)
	}
	// A restarted server finds the same alias, and removes a push a crash cut short.
	half := filepath.Join(f.repo, "m", ".push-123")
	os.MkdirAll(half, 0o755)
	g := New(Config{Store: f.store, Routes: new(router.Table), Loader: f.pins, RepositoryRoot: f.repo})
	if err := g.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := g.cfg.Routes.Get("m").Resolve("champion"); v != "1" {
		t.Errorf("after Sync champion -> %q, want 1", v)
	}
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Errorf("a half-placed push survived Sync: %v", err)
	}
}

func TestPoliciesAndRolloutTraffic(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	err := f.m.SetPolicy(ctx, "m", &router.Policy{Arms: []router.Arm{{Version: "1", Weight: 80}, {Version: "2", Weight: 10}}})
	if !errors.Is(err, registry.ErrInvalid) || !strings.Contains(err.Error(), "sum to 90") {
		t.Errorf("weights summing to 90: %v", err)
	}
	if f.routes.Get("m") != nil {
		t.Error("a refused policy reached the router")
	}
	// A rollout: Load freezes unrouted traffic on the serving version first.
	if err := f.m.Load(ctx, "m", "2"); err != nil {
		t.Fatal(err)
	}
	if p := f.routes.Get("m"); p == nil || len(p.Arms) != 1 || p.Arms[0] != (router.Arm{Version: "3", Weight: 100}) {
		t.Fatalf("after Load: policy %+v, want frozen on 3", p)
	}
	if got := f.pins.of("m"); !slices.Equal(got, []int64{2, 3}) {
		t.Errorf("pinned %v, want [2 3]", got)
	}
	if err := f.m.SetTraffic(ctx, "m", map[string]int{"3": 90, "2": 10}, "2", 50); err != nil {
		t.Fatal(err)
	}
	p := f.routes.Get("m")
	if !slices.Equal(p.Arms, []router.Arm{{Version: "3", Weight: 90}, {Version: "2", Weight: 10}}) || p.Shadow.Version != "2" {
		t.Errorf("split %+v shadow %+v", p.Arms, p.Shadow)
	}
	if err := f.m.SetTraffic(ctx, "m", map[string]int{"3": 100, "2": 0}, "", 0); err != nil {
		t.Fatal(err)
	}
	f.m.Unload("m", "2")
	if got := f.pins.of("m"); !slices.Equal(got, []int64{3}) {
		t.Errorf("after the rollout let 2 go: pinned %v, want [3]", got)
	}
	stored, _ := f.store.Endpoints(ctx)
	if !strings.Contains(string(stored["m"]), `"weight":100`) {
		t.Errorf("stored policy %s, want the last split", stored["m"])
	}
}

func tarOf(t *testing.T, files map[string]string) *bytes.Buffer {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for name, body := range files {
		w.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		w.Write([]byte(body))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

func TestPushPlacesTheNextVersionAndLoadsChecksIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// A folder the registry does not know yet: the push goes past it.
	os.MkdirAll(filepath.Join(f.repo, "m", "4"), 0o755)
	v, err := f.m.PushVersion(ctx, registry.ModelVersion{Model: "m", Tags: map[string]string{"team": "a"}},
		tarOf(t, map[string]string{"model.onnx": "weights", "config.pbtxt": `backend: "onnxruntime"`}))
	if err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(f.repo, "m", "5")
	if b, err := os.ReadFile(filepath.Join(folder, "model.onnx")); v.Version != 5 || err != nil || string(b) != "weights" {
		t.Fatalf("pushed version %d, folder 5 holds %q (%v)", v.Version, b, err)
	}
	if _, err := os.Stat(filepath.Join(f.repo, "m", "config.pbtxt")); err != nil {
		t.Errorf("the model had no config; the pushed one was not adopted: %v", err)
	}
	// A new model gets registered on its first push.
	if _, err := f.m.PushVersion(ctx, registry.ModelVersion{Model: "fresh"}, tarOf(t, map[string]string{"model.onnx": "x"})); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Version(ctx, "fresh", 1); err != nil {
		t.Errorf("first push of a new model: %v", err)
	}
	// Tampered files are refused at load.
	os.WriteFile(filepath.Join(folder, "model.onnx"), []byte("other weights"), 0o644)
	if err := f.m.SetAlias(ctx, "m", "candidate", 5); !errors.Is(err, registry.ErrInvalid) || !strings.Contains(err.Error(), "does not hold the registered artifact") {
		t.Errorf("loading a tampered version: %v", err)
	}
	if f.routes.Get("m") != nil {
		t.Error("a tampered version was routed")
	}
}
