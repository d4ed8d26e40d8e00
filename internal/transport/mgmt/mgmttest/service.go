package mgmttest

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"strconv"
	"sync"
	"testing"

	"github.com/ferryml/ferry/internal/registry"
	"github.com/ferryml/ferry/internal/rollout"
	"github.com/ferryml/ferry/internal/router"
)

// Service is a real mgmt.Service: a real registry (SQLite in a temporary folder), its
// managed artifact store, a real rollout controller whose loads succeed at once, and a
// policy table in a map. What it leaves out (loading models) has no HTTP surface.
type Service struct {
	store registry.Store
	arts  *registry.Artifacts
	ctl   *rollout.Controller

	mu       sync.Mutex
	policies map[string]*router.Policy
	traffic  map[string]map[string]int // a rollout's split, as SetTraffic set it
}

// NewService builds the service; its controller runs until the test ends.
func NewService(t testing.TB) *Service {
	t.Helper()
	dir := t.TempDir()
	st, err := registry.OpenDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{store: st, arts: registry.NewArtifacts(dir, 0), policies: map[string]*router.Policy{}, traffic: map[string]map[string]int{}}
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

// SetTraffic is the rollout controller's routing change; Policy shows it as arms.
func (s *Service) SetTraffic(_ context.Context, ep string, w map[string]int, _ *rollout.Mirror) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.traffic[ep] = maps.Clone(w)
	return nil
}

// Store is the registry.
func (s *Service) Store() registry.Store { return s.store }

// PushVersion stores the tar in the managed store and registers the version.
func (s *Service) PushVersion(ctx context.Context, v registry.ModelVersion, artifact io.Reader) (registry.ModelVersion, error) {
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

// SetAlias moves the alias in the registry (loading is not modelled).
func (s *Service) SetAlias(ctx context.Context, model, alias string, version int64) error {
	return s.store.SetAlias(ctx, model, alias, version)
}

// DeleteAlias removes the alias from the registry.
func (s *Service) DeleteAlias(ctx context.Context, model, alias string) error {
	return s.store.DeleteAlias(ctx, model, alias)
}

// StoredPolicy is the policy SetPolicy stored, or nil.
func (s *Service) StoredPolicy(model string) *router.Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policies[model].Clone()
}

// Policy is the stored policy with the registry's aliases and a rollout's split.
func (s *Service) Policy(model string) *router.Policy {
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

// SetPolicy stores p in the registry and the table.
func (s *Service) SetPolicy(ctx context.Context, model string, p *router.Policy) error {
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
func (s *Service) StartRollout(ctx context.Context, r rollout.Rollout) error {
	if r.Stable == "" {
		v, err := s.store.ResolveAlias(ctx, r.Endpoint, "champion")
		if err != nil {
			return err
		}
		r.Stable = strconv.FormatInt(v, 10)
	}
	return s.ctl.Start(ctx, r)
}

// RolloutAction hands the action to the controller.
func (s *Service) RolloutAction(ctx context.Context, endpoint, action string) error {
	return s.ctl.Act(ctx, endpoint, action) // an unknown action is rollout.ErrInvalidAction: a 400
}

// RolloutStatus is the controller's status and history of the endpoint.
func (s *Service) RolloutStatus(endpoint string) (rollout.Status, []rollout.Change, bool) {
	return s.ctl.Status(endpoint)
}

// Rollouts lists the controller's rollouts.
func (s *Service) Rollouts() []rollout.Status { return s.ctl.List() }
