package repository

import (
	"context"
	"os"
	"path/filepath"
	"sort"

	"github.com/ferryml/ferry/internal/core"
)

// Source brings Root up to date from where the models really live (an object store,
// mirrored by internal/objstore) before the repository reads it: at Start, before each
// Poll and before an explicit Load. cmd/ferry provides it; the repository keeps reading
// only local files.
type Source interface {
	// Sync updates Root. refused maps a model to why its new files were not applied;
	// such a model keeps its previous files, if it had any. An error means Root could not
	// be brought up to date at all and is as it was.
	Sync(ctx context.Context) (refused map[string]error, err error)
}

// syncSource runs the source's sync, if there is one, and keeps its refusals for Acquire
// and Index. After a failed sync the refusals of the last good one still stand.
func (r *Repository) syncSource(ctx context.Context) error {
	if r.opts.Source == nil {
		return nil
	}
	refused, err := r.opts.Source.Sync(ctx)
	if err != nil {
		return err
	}
	r.refused.Store(&refused)
	return nil
}

// refusedError explains why a model is not served when the source refused its files and
// there are no previous ones to fall back on; nil otherwise (also when a model with
// earlier good files had an update refused: those files serve).
func (r *Repository) refusedError(name string) error {
	p := r.refused.Load()
	if p == nil || (*p)[name] == nil {
		return nil
	}
	if st, err := os.Stat(filepath.Join(r.opts.Root, name)); err == nil && st.IsDir() {
		return nil
	}
	return core.Unavailablef("model '%s' is not ready: %v", name, (*p)[name])
}

// addRefusedLocked shows the source's refusals in the index: a model with no files is
// UNAVAILABLE with the reason; a model serving its previous files says its update was
// refused. Caller holds r.mu; out holds the entries built so far, listed[name] the
// models that are on disk.
func (r *Repository) addRefusedLocked(out []core.ModelIndexEntry, listed map[string]bool, readyOnly bool) []core.ModelIndexEntry {
	p := r.refused.Load()
	if p == nil {
		return out
	}
	names := make([]string, 0, len(*p))
	for name := range *p {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		err := (*p)[name]
		if !listed[name] && r.models[name] == nil {
			if !readyOnly {
				out = append(out, core.ModelIndexEntry{Name: name, State: core.StateUnavailable, Reason: err.Error()})
			}
			continue
		}
		for i := range out {
			if out[i].Name == name && out[i].Reason == "" {
				out[i].Reason = "update from the model store refused, previous files kept: " + err.Error()
			}
		}
	}
	return out
}

// refusedCount is the number of models the source refused that have no earlier files to
// serve; under strict readiness they make the server not ready, as a failed load does.
func (r *Repository) refusedCount() int {
	p := r.refused.Load()
	if p == nil {
		return 0
	}
	n := 0
	for name := range *p {
		if r.refusedError(name) != nil {
			n++
		}
	}
	return n
}
