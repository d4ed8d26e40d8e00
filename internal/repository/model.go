package repository

import (
	"cmp"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/scheduler"
	"google.golang.org/protobuf/proto"
)

// model is one model folder's loaded state.
type model struct {
	name string
	ctl  sync.Mutex // serialises loads and unloads of this model; taken before Repository.mu

	// Guarded by Repository.mu.
	fp   string // fingerprint of the files behind the current versions
	pins string // the pinned versions the current versions were loaded with (pins.go)
	// fromRequest: the current versions came from a load request's config or files, not
	// from the repository folder alone, so a change of the folder does not replace them.
	fromRequest bool
	reason      string // why the model as a whole failed (config error), "" if it did not
	// stale is why the last reload failed as a whole (its config) while the versions
	// loaded before kept serving; "" once a reload succeeds. Unlike reason it leaves the
	// model serving, so it does not make the server unready (readiness.go).
	stale    string
	versions map[int64]*version

	lastUsed atomic.Int64 // unix nanoseconds of the last lease taken or returned (ondemand.go)
}

// version is one loaded (or failed) model version.
type version struct {
	n      int64
	fp     string
	state  string
	reason string
	cfg    *inference.ModelConfig
	sched  *scheduler.Scheduler
	refs   sync.WaitGroup // leases out; Add only while READY, under Repository.mu
	leases atomic.Int64   // the same count, readable: eviction takes only versions at 0
	// resident is the memory measured at load (budget.go); 0 when no budget is set.
	resident int64
	// stale is why the files that changed under this READY version failed to load; it
	// serves the files loaded before until they load. Guarded by Repository.mu.
	stale string
}

func (m *model) sortedVersions() []*version {
	vs := make([]*version, 0, len(m.versions))
	for _, v := range m.versions {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].n < vs[j].n })
	return vs
}

// pick chooses the version a request names, or the newest READY one.
func (m *model) pick(want string) (*version, error) {
	if want != "" {
		n, err := strconv.ParseInt(want, 10, 64)
		if err != nil || n < 0 {
			return nil, core.Invalidf("model '%s': version %q is not a version number", m.name, want)
		}
		v := m.versions[n]
		if v == nil {
			return nil, &core.NotFoundError{Model: m.name, Version: want}
		}
		if !v.serving() { // readiness.go
			return nil, core.Unavailablef("model '%s' version %s is not ready: %s", m.name, want, v.describe())
		}
		return v, nil
	}
	// One pass, no sorting: this runs for every request that names no version.
	var best, newest *version
	for _, v := range m.versions {
		if newest == nil || v.n > newest.n {
			newest = v
		}
		if (best == nil || v.n > best.n) && v.serving() {
			best = v
		}
	}
	switch {
	case best != nil:
		return best, nil
	case m.reason != "":
		return nil, core.Unavailablef("model '%s' is not ready: %s", m.name, m.reason)
	case newest != nil:
		return nil, core.Unavailablef("model '%s' is not ready: version %d %s", m.name, newest.n, newest.describe())
	}
	return nil, core.Unavailablef("model '%s' has no version to serve", m.name)
}

// healthyLocked reports whether the model's current files loaded without error and
// every version serves.
func (m *model) healthyLocked() bool {
	if !m.servesLocked() || m.stale != "" {
		return false
	}
	for _, v := range m.versions {
		if v.stale != "" {
			return false
		}
	}
	return true
}

// servesLocked reports whether every version of the model serves, though perhaps from
// files loaded before a reload that failed: what strict readiness asks.
func (m *model) servesLocked() bool {
	if m.reason != "" || len(m.versions) == 0 {
		return false
	}
	for _, v := range m.versions {
		if v.state != core.StateReady {
			return false
		}
	}
	return true
}

func (v *version) describe() string {
	state, reason := v.shown()
	if reason == "" {
		return state
	}
	return state + ": " + reason
}

func (m *model) indexEntries() []core.ModelIndexEntry {
	if len(m.versions) == 0 {
		return []core.ModelIndexEntry{{Name: m.name, State: core.StateUnavailable, Reason: m.reason}}
	}
	var out []core.ModelIndexEntry
	for _, v := range m.sortedVersions() {
		state, reason := v.shown()
		if reason == "" && m.reason != "" {
			reason = m.reason
		}
		if reason == "" && state == core.StateReady {
			reason = staleReason(cmp.Or(v.stale, m.stale))
		}
		out = append(out, core.ModelIndexEntry{Name: m.name, Version: strconv.FormatInt(v.n, 10), State: state, Reason: reason})
	}
	return out
}

// staleReason is the index's reason for a version serving the files loaded before a
// reload that failed with why; "" when none failed.
func staleReason(why string) string {
	if why == "" {
		return ""
	}
	return "serving the files loaded before; their reload failed: " + why
}

func cloneConfig(c *inference.ModelConfig) *inference.ModelConfig {
	return proto.Clone(c).(*inference.ModelConfig)
}
