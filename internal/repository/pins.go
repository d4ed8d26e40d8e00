package repository

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/core"
)

// Pins keep versions loaded beside those a model's version policy chooses: the versions
// an endpoint routes to, an alias names or a rollout has in flight. Traffic may only
// move to a version once it is READY, so whoever moves it pins first and routes after.

// Pin makes versions the model's pinned set (nil: none) and reloads the model so that
// exactly the policy's versions and the pinned ones are loaded. It returns once every
// pinned version is READY, or with an error naming the one that is not; versions that
// stay loaded are not reloaded. A pinned version must have its folder.
func (r *Repository) Pin(ctx context.Context, name string, versions []int64) error {
	if err := core.CheckModelName(name); err != nil {
		return err
	}
	versions = slices.Clone(versions)
	slices.Sort(versions)
	versions = slices.Compact(versions)
	onDisk, err := versionDirs(filepath.Join(r.opts.Root, name))
	if err != nil {
		return &core.NotFoundError{Model: name}
	}
	for _, n := range versions {
		if !slices.Contains(onDisk, n) { // refused before anything changes
			return &core.NotFoundError{Model: name, Version: strconv.FormatInt(n, 10)}
		}
	}
	r.mu.Lock()
	if r.pins == nil {
		r.pins = map[string][]int64{}
	}
	if len(versions) == 0 {
		delete(r.pins, name)
	} else {
		r.pins[name] = versions
	}
	r.mu.Unlock()
	if err := r.loadFromDisk(ctx, name, nil); err != nil {
		if errors.Is(err, core.ErrNotFound) {
			return err
		}
		return core.Unavailablef("%v", err) // a version failed to load: traffic must not move to it
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.models[name]
	for _, n := range versions {
		v := m.versions[n]
		switch {
		case v == nil:
			return &core.NotFoundError{Model: name, Version: strconv.FormatInt(n, 10)}
		case v.state != core.StateReady:
			return core.Unavailablef("model '%s' version %d is %s: %s", name, n, v.state, v.reason)
		}
	}
	return nil
}

// pinnedLocked adds the model's pinned versions that have folders to want, the
// versions its policy chose; r.mu is held.
func (r *Repository) pinnedLocked(name string, want, onDisk []int64) []int64 {
	for _, n := range r.pins[name] {
		if slices.Contains(onDisk, n) && !slices.Contains(want, n) {
			want = append(want, n)
		}
	}
	slices.Sort(want)
	return want
}

// pinKey names the pinned set in a model's fingerprint, so that a change reloads it.
func (r *Repository) pinKeyLocked(name string) string {
	ps := r.pins[name]
	if len(ps) == 0 {
		return ""
	}
	s := make([]string, len(ps))
	for i, n := range ps {
		s[i] = strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("pins:%s", strings.Join(s, ","))
}
