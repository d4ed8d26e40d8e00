package objstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// plan is what one model (a top-level folder; "" for top-level files) needs.
type plan struct {
	fetch  []object // new or changed files
	dirs   []string // folder markers
	remove []string // local files whose object is gone
}

// Sync brings the mirror up to date with the store. It returns the models whose changes
// were refused, each with an error naming the objects at fault; those models keep their
// previous files. The error is for a sync that could not run at all (listing failed,
// context ended, cache folder unwritable): the mirror is then left as it was.
func (s *Syncer) Sync(ctx context.Context) (map[string]error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	remote, err := s.list(ctx)
	if err != nil {
		s.failures.Add(1)
		return nil, fmt.Errorf("model store %s: listing: %w", s.url, err)
	}
	plans, err := s.plan(remote)
	if err != nil {
		s.failures.Add(1)
		return nil, err
	}
	var want []object
	for _, p := range plans {
		want = append(want, p.fetch...)
	}
	got := s.fetchAll(ctx, want)
	defer func() {
		for _, d := range got {
			if d.tmp != "" {
				os.Remove(d.tmp) // not renamed into place: refused model or failed apply
			}
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	refused := map[string]error{}
	var removed, fetched int
	for _, g := range sortedKeys(plans) {
		if err := s.apply(plans[g], got); err != nil {
			refused[g] = err
			s.log.Warn("model store update refused; the model keeps its previous files", "model", g, "err", err)
			continue
		}
		removed += len(plans[g].remove)
		fetched += len(plans[g].fetch)
	}
	s.prune(remote, refused)
	for rel := range s.man.Objects {
		if _, ok := remote[rel]; !ok && refused[group(rel, false)] == nil {
			delete(s.man.Objects, rel)
		}
	}
	if err := s.man.save(s.dir); err != nil {
		s.failures.Add(1)
		return nil, err
	}
	s.syncs.Add(1)
	if fetched+removed > 0 || len(refused) > 0 {
		s.log.Info("model store synced", "store", s.url, "downloaded", fetched, "removed", removed,
			"refused_models", len(refused), "took", time.Since(start).Round(time.Millisecond))
	}
	delete(refused, "") // top-level files belong to no model; their refusal is logged
	return refused, nil
}

// plan compares the listing with the manifest and the files on disk, by model.
func (s *Syncer) plan(remote map[string]object) (map[string]*plan, error) {
	plans := map[string]*plan{}
	of := func(g string) *plan {
		if plans[g] == nil {
			plans[g] = &plan{}
		}
		return plans[g]
	}
	for _, rel := range sortedKeys(remote) {
		o := remote[rel]
		p := of(group(rel, o.dir))
		switch {
		case o.dir:
			p.dirs = append(p.dirs, rel)
		case !s.current(o):
			p.fetch = append(p.fetch, o)
		}
	}
	err := filepath.WalkDir(s.Root(), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := s.rel(path)
		if o, ok := remote[rel]; !ok || o.dir {
			of(group(rel, false)).remove = append(of(group(rel, false)).remove, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("model cache: %w", err)
	}
	return plans, nil
}

// current reports whether the mirror already holds the object's bytes: the manifest
// recorded the same ETag and size when they were verified, and the file is there.
func (s *Syncer) current(o object) bool {
	e, ok := s.man.Objects[o.rel]
	if !ok || e.ETag != o.etag || e.Size != o.size {
		return false
	}
	st, err := os.Stat(s.local(o.rel))
	return err == nil && st.Mode().IsRegular() && st.Size() == o.size
}

// apply moves a model's verified downloads into place and deletes its files whose
// objects are gone, but only if every download of the model was verified.
func (s *Syncer) apply(p *plan, got map[string]*download) error {
	var errs errList
	for _, o := range p.fetch {
		if err := got[o.rel].err; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	for _, rel := range p.dirs {
		if err := os.MkdirAll(s.local(rel), 0o755); err != nil {
			return fmt.Errorf("model cache: %w", err)
		}
	}
	for _, o := range p.fetch {
		d, dst := got[o.rel], s.local(o.rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("model cache: %w", err)
		}
		if err := os.Rename(d.tmp, dst); err != nil {
			return fmt.Errorf("model cache: %w", err)
		}
		d.tmp = ""
		s.man.Objects[o.rel] = d.entry
	}
	for _, rel := range p.remove {
		if err := os.Remove(s.local(rel)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("model cache: %w", err)
		}
		delete(s.man.Objects, rel)
		s.deleted.Add(1)
	}
	return nil
}

// prune removes empty folders that no object needs, deepest first, except in models
// whose update was refused.
func (s *Syncer) prune(remote map[string]object, refused map[string]error) {
	keep := map[string]bool{}
	for rel, o := range remote {
		dir := rel
		if !o.dir {
			dir = filepathDir(rel)
		}
		for ; dir != ""; dir = filepathDir(dir) {
			keep[dir] = true
		}
	}
	var dirs []string
	_ = filepath.WalkDir(s.Root(), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && path != s.Root() {
			dirs = append(dirs, s.rel(path))
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	for _, rel := range dirs {
		if !keep[rel] && refused[group(rel, true)] == nil {
			os.Remove(s.local(rel)) // fails, as it should, on a folder that is not empty
		}
	}
}

// filepathDir is path.Dir for slash paths, with "" for a top-level name.
func filepathDir(rel string) string {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return ""
	}
	return rel[:i]
}

func (s *Syncer) local(rel string) string { return filepath.Join(s.Root(), filepath.FromSlash(rel)) }

func (s *Syncer) rel(path string) string {
	r, _ := filepath.Rel(s.Root(), path)
	return filepath.ToSlash(r)
}
