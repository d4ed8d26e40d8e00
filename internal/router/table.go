package router

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
)

// Table holds the live policy of every endpoint. Readers (Get, on every request) load
// one pointer and never lock; writers copy the map, change the copy and publish it in
// one atomic swap, so a reader sees an endpoint's old policy or its new one, never a
// half-changed one. The zero Table is empty and ready to use.
type Table struct {
	mu       sync.Mutex // serialises writers, so no write is lost to another's copy
	policies atomic.Pointer[map[string]*Policy]
}

// Get returns the model's policy, or nil if it has none (nil Decides RouteDefault). The
// policy is shared: never mutate it.
func (t *Table) Get(model string) *Policy {
	m := t.policies.Load()
	if m == nil {
		return nil
	}
	return (*m)[model]
}

// Set validates p and makes a copy of it the model's policy, so the caller may go on
// using p without racing readers.
func (t *Table) Set(model string, p *Policy) error {
	if model == "" {
		return errors.New("router: model name is empty")
	}
	if p == nil {
		return fmt.Errorf("router: model %q: policy is nil (Delete removes one)", model)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("router: model %q: %w", model, err)
	}
	c := p.Clone()
	t.update(func(m map[string]*Policy) { m[model] = c })
	return nil
}

// Delete removes the model's policy; its requests then take RouteDefault.
func (t *Table) Delete(model string) {
	t.update(func(m map[string]*Policy) { delete(m, model) })
}

// All returns every endpoint's policy, in a map the caller owns (the policies are shared:
// never mutate them).
func (t *Table) All() map[string]*Policy {
	m := t.policies.Load()
	if m == nil {
		return map[string]*Policy{}
	}
	return maps.Clone(*m)
}

func (t *Table) update(change func(map[string]*Policy)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := map[string]*Policy{}
	if old := t.policies.Load(); old != nil {
		m = maps.Clone(*old)
	}
	change(m)
	t.policies.Store(&m)
}
