package mgmt

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/ferryml/ferry/internal/registry"
	"github.com/ferryml/ferry/internal/rollout"
	"github.com/ferryml/ferry/internal/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// service is the test's Service: a real registry (SQLite in a temporary folder), its
// managed artifact store, a real rollout controller whose loads succeed at once, and a
// policy table in a map. What it leaves out (loading models) has no HTTP surface.
type service struct {
	store registry.Store
	arts  *registry.Artifacts
	ctl   *rollout.Controller

	mu       sync.Mutex
	policies map[string]*router.Policy
	traffic  map[string]map[string]int // a rollout's split, as SetTraffic set it
}

var _ Service = (*service)(nil)

func newService(t *testing.T) *service {
	t.Helper()
	dir := t.TempDir()
	st, err := registry.OpenDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &service{store: st, arts: registry.NewArtifacts(dir, 0), policies: map[string]*router.Policy{}, traffic: map[string]map[string]int{}}
	s.ctl, err = rollout.New(rollout.Config{Store: st, Traffic: s, Models: loadAll{}, Meter: rollout.NewMeter()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ctl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller Run: %v", err)
		}
		st.Close()
	})
	return s
}

// loadAll loads every version at once.
type loadAll struct{}

func (loadAll) Load(context.Context, string, string) error { return nil }
func (loadAll) Unload(string, string)                      {}

func (s *service) SetTraffic(_ context.Context, ep string, w map[string]int, _ *rollout.Mirror) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.traffic[ep] = maps.Clone(w)
	return nil
}

func (s *service) Store() registry.Store { return s.store }

func (s *service) PushVersion(ctx context.Context, v registry.ModelVersion, artifact io.Reader) (registry.ModelVersion, error) {
	if _, err := s.store.Model(ctx, v.Model); err != nil {
		return registry.ModelVersion{}, err
	}
	dir, digest, err := s.arts.Put(ctx, v.Model, artifact)
	if err != nil {
		return registry.ModelVersion{}, err
	}
	v.Source, v.Digest = dir, digest
	return s.store.CreateVersion(ctx, v)
}

func (s *service) SetAlias(ctx context.Context, model, alias string, version int64) error {
	return s.store.SetAlias(ctx, model, alias, version)
}

func (s *service) DeleteAlias(ctx context.Context, model, alias string) error {
	return s.store.DeleteAlias(ctx, model, alias)
}

func (s *service) StoredPolicy(model string) *router.Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policies[model].Clone()
}

// Policy is the stored policy with the registry's aliases and a rollout's split.
func (s *service) Policy(model string) *router.Policy {
	p := s.StoredPolicy(model)
	as, _ := s.store.Aliases(context.Background(), model)
	s.mu.Lock()
	split := s.traffic[model]
	s.mu.Unlock()
	if p == nil && len(as) == 0 && split == nil {
		return nil
	}
	if p == nil {
		p = &router.Policy{}
	}
	for a, v := range as {
		if p.Aliases == nil {
			p.Aliases = map[string]string{}
		}
		p.Aliases[a] = strconv.FormatInt(v, 10)
	}
	if split != nil {
		p.Arms = nil
		for v, w := range split {
			p.Arms = append(p.Arms, router.Arm{Version: v, Weight: w})
		}
	}
	return p
}

func (s *service) SetPolicy(ctx context.Context, model string, p *router.Policy) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := s.store.SaveEndpoint(ctx, model, b); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policies[model] = p.Clone()
	return nil
}

// StartRollout fills Stable with the model's champion, as the server does.
func (s *service) StartRollout(ctx context.Context, r rollout.Rollout) error {
	if r.Stable == "" {
		v, err := s.store.ResolveAlias(ctx, r.Endpoint, "champion")
		if err != nil {
			return err
		}
		r.Stable = strconv.FormatInt(v, 10)
	}
	return s.ctl.Start(ctx, r)
}

func (s *service) RolloutAction(ctx context.Context, endpoint, action string) error {
	switch action {
	case "promote":
		return s.ctl.Promote(ctx, endpoint)
	case "pause":
		return s.ctl.Pause(ctx, endpoint)
	case "resume":
		return s.ctl.Resume(ctx, endpoint)
	case "abort":
		return s.ctl.Abort(ctx, endpoint)
	}
	return fmt.Errorf("%w: unknown action %q", registry.ErrInvalid, action)
}

func (s *service) RolloutStatus(endpoint string) (rollout.Status, []rollout.Change, bool) {
	return s.ctl.Status(endpoint)
}

func (s *service) Rollouts() []rollout.Status { return s.ctl.List() }

// api is a real HTTP server of the handler, and the test's client of it.
type api struct {
	t   *testing.T
	svc *service
	srv *httptest.Server
}

func newAPI(t *testing.T, o Options) *api {
	t.Helper()
	svc := newService(t)
	srv := httptest.NewServer(New(svc, o))
	t.Cleanup(srv.Close)
	return &api{t: t, svc: svc, srv: srv}
}

// do sends a request; path is taken as written (escapes and ".." kept).
func (a *api) do(method, path string, body io.Reader, header map[string]string) (int, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// json sends a JSON body (a string as written, anything else marshalled) and wants
// status want; it decodes the answer into out when out is not nil.
func (a *api) json(method, path string, body any, want int, out any) []byte {
	a.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	code, got := a.do(method, path, r, map[string]string{"Content-Type": "application/json"})
	if code != want {
		a.t.Fatalf("%s %s = %d %s, want %d", method, path, code, got, want)
	}
	if out != nil {
		if err := json.Unmarshal(got, out); err != nil {
			a.t.Fatalf("%s %s: answer %s: %v", method, path, got, err)
		}
	}
	return got
}

// tarOf is a tar of files (name -> content).
func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// push uploads a version of model with meta in the header form.
func (a *api) push(model, meta string, files map[string]string) (int, []byte) {
	a.t.Helper()
	h := map[string]string{"Content-Type": "application/x-tar", "X-Ferry-Version-Meta": meta}
	return a.do("POST", "/api/v1/models/"+model+"/versions", bytes.NewReader(tarOf(a.t, files)), h)
}
