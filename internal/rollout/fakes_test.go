package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/core"
)

// memStore is an in-memory Store that keeps every event it was given.
type memStore struct {
	mu       sync.Mutex
	statuses map[string][]byte
	events   [][]byte
	down     bool // SaveRollout fails, as a locked database or a full disk would
}

func (m *memStore) setDown(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
}

func newMemStore() *memStore { return &memStore{statuses: map[string][]byte{}} }

func (m *memStore) SaveRollout(_ context.Context, ep string, status, event []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errors.New("database is locked")
	}
	m.statuses[ep] = append([]byte(nil), status...)
	m.events = append(m.events, append([]byte(nil), event...))
	return nil
}

func (m *memStore) Rollouts(ctx context.Context) (map[string][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // as a database query does
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.statuses), nil
}

func (m *memStore) status(t *testing.T, ep string) Status {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var s Status
	if err := json.Unmarshal(m.statuses[ep], &s); err != nil {
		t.Fatalf("stored status of %s: %v", ep, err)
	}
	return s
}

// routing records every routing change and is the table the fake clients route by.
type routing struct {
	mu      sync.Mutex
	weights map[string]int
	mirror  *Mirror
	calls   []trafficCall
}

type trafficCall struct {
	at      time.Time
	weights map[string]int
	mirror  *Mirror
}

func (r *routing) SetTraffic(_ context.Context, _ string, w map[string]int, m *Mirror) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.weights, r.mirror = maps.Clone(w), m
	r.calls = append(r.calls, trafficCall{at: time.Now(), weights: maps.Clone(w), mirror: m})
	return nil
}

func (r *routing) history() []trafficCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]trafficCall(nil), r.calls...)
}

// pick routes request n by the current weights (deterministically: n%100 against
// the candidate's share), and says whether a copy goes to the mirror.
func (r *routing) pick(n int, stable, cand string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mirrored := r.mirror != nil && n%100 < r.mirror.Percent
	if n%100 < r.weights[cand] {
		return cand, mirrored
	}
	return stable, mirrored
}

// models loads after a delay, failing the versions in fail; it records unloads.
type models struct {
	delay time.Duration
	fail  map[string]bool

	mu       sync.Mutex
	loads    []string
	unloads  []string
	unloadAt map[string]time.Time
}

func (m *models) Load(ctx context.Context, _, version string) error {
	m.mu.Lock()
	m.loads = append(m.loads, version)
	m.mu.Unlock()
	select {
	case <-time.After(m.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	if m.fail[version] {
		return errors.New("onnxruntime: model.onnx: invalid graph")
	}
	return nil
}

func (m *models) Unload(_, version string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unloads = append(m.unloads, version)
	if m.unloadAt == nil {
		m.unloadAt = map[string]time.Time{}
	}
	m.unloadAt[version] = time.Now()
}

func (m *models) unloaded() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.unloads...)
}

// behaviour is how a version answers: its latency and whether request n fails.
type behaviour struct {
	latency time.Duration
	fails   func(n int, at time.Time) bool
	diff    float64 // a shadow answer's difference from the primary's
}

// clients sends a request every 10ms until ctx ends, routed by r, and feeds each
// outcome to the meter as core would. It returns when the first candidate error
// happened (zero: none) once ctx ends.
func clients(ctx context.Context, meter *Meter, r *routing, ep, stable, cand string, b map[string]behaviour) func() time.Time {
	var mu sync.Mutex
	var firstErr time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				v, mirrored := r.pick(n, stable, cand)
				if mirrored {
					meter.ObserveShadow(ep, v, cand, b[cand].diff, nil)
				}
				rec := &core.Record{Model: ep, Version: v, Start: now, Total: b[v].latency}
				if f := b[v].fails; f != nil && f(n, now) {
					rec.Err = errors.New("backend: input 3: NaN")
					mu.Lock()
					if firstErr.IsZero() && v == cand {
						firstErr = now
					}
					mu.Unlock()
				}
				meter.Finished(rec)
			}
		}
	}()
	return func() time.Time {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}
}
