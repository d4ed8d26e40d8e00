package endpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ferryml/ferry/internal/registry"
)

// PushVersion stores a tar of a version folder's files in the managed store, registers
// it as the model's next version (creating the registered model on its first push) and
// places a copy in the model repository as that version's folder. It loads nothing and
// routes nothing: an alias, a policy or a rollout does. A config.pbtxt in the artifact
// also becomes the model's config when the model has none yet.
func (m *Manager) PushVersion(ctx context.Context, v registry.ModelVersion, artifact io.Reader) (registry.ModelVersion, error) {
	if m.cfg.RepositoryRoot == "" || m.cfg.Artifacts == nil {
		return registry.ModelVersion{}, fmt.Errorf("%w: pushing versions needs a local model repository folder and --data-dir", registry.ErrInvalid)
	}
	if _, err := m.cfg.Store.CreateModel(ctx, registry.RegisteredModel{Name: v.Model}); err != nil && !errors.Is(err, registry.ErrExists) {
		return registry.ModelVersion{}, err
	}
	dir, digest, err := m.cfg.Artifacts.Put(ctx, v.Model, artifact)
	if err != nil {
		return registry.ModelVersion{}, err
	}
	m.mu.Lock() // numbers and folders: one push at a time
	defer m.mu.Unlock()
	next, err := m.nextVersion(ctx, v.Model)
	if err != nil {
		return registry.ModelVersion{}, err
	}
	v.Version, v.Source, v.Digest = next, dir, digest
	modelDir := filepath.Join(m.cfg.RepositoryRoot, v.Model)
	target := filepath.Join(modelDir, strconv.FormatInt(next, 10))
	if err := place(dir, target); err != nil {
		return registry.ModelVersion{}, fmt.Errorf("placing version %d of model %q in the repository: %w", next, v.Model, err)
	}
	created, err := m.cfg.Store.CreateVersion(ctx, v)
	if err != nil {
		os.RemoveAll(target) // not registered: not served either
		return registry.ModelVersion{}, err
	}
	if err := adoptConfig(dir, modelDir); err != nil {
		m.log.Warn("pushed config.pbtxt not used", "model", v.Model, "err", err)
	}
	return created, nil
}

// nextVersion is one past the highest version the registry or the repository folder
// has, so a push never lands on a folder the registry does not know.
func (m *Manager) nextVersion(ctx context.Context, model string) (int64, error) {
	vs, err := m.cfg.Store.Versions(ctx, model)
	if err != nil {
		return 0, err
	}
	top := int64(0)
	for _, v := range vs {
		top = max(top, v.Version)
	}
	ents, _ := os.ReadDir(filepath.Join(m.cfg.RepositoryRoot, model))
	for _, e := range ents {
		if n, err := strconv.ParseInt(e.Name(), 10, 64); err == nil {
			top = max(top, n)
		}
	}
	return top + 1, nil
}

// place copies the files of src into a new folder dst, through a temporary folder
// renamed at the end, so the repository never sees half a version.
func place(src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("%s exists", dst)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".push-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.CopyFS(tmp, os.DirFS(src)); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// adoptConfig copies the artifact's config.pbtxt to the model folder when it has none.
func adoptConfig(artifact, modelDir string) error {
	b, err := os.ReadFile(filepath.Join(artifact, "config.pbtxt"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(modelDir, "config.pbtxt"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil // the model's own config stays
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// verify checks, once per version, that the repository folder of a pushed version
// still holds what was registered; versions imported from the repository folder are
// the folder (a poll reload of changed files is theirs to make).
func (m *Manager) verify(ctx context.Context, model string, n int64) error {
	key := model + "/" + strconv.FormatInt(n, 10)
	v, err := m.cfg.Store.Version(ctx, model, n)
	if errors.Is(err, registry.ErrNotFound) {
		return nil // not registered: a plain repository version
	}
	if err != nil {
		return err
	}
	folder := filepath.Join(m.cfg.RepositoryRoot, model, strconv.FormatInt(n, 10))
	if m.cfg.RepositoryRoot == "" || filepath.Clean(v.Source) == folder || m.verified[key] == v.Digest {
		return nil
	}
	if err := registry.Verify(folder, v.Digest); err != nil {
		return fmt.Errorf("%w: model %q version %d: the repository folder does not hold the registered artifact: %v", registry.ErrInvalid, model, n, err)
	}
	m.verified[key] = v.Digest
	return nil
}

// removeHalfPlaced deletes the temporary folders of pushes a crash cut short (place
// renames a finished copy into place, so only these can be half written).
func (m *Manager) removeHalfPlaced() {
	if m.cfg.RepositoryRoot == "" {
		return
	}
	left, _ := filepath.Glob(filepath.Join(m.cfg.RepositoryRoot, "*", ".push-*"))
	for _, dir := range left {
		if err := os.RemoveAll(dir); err != nil {
			m.log.Warn("half-placed push not removed", "folder", dir, "err", err)
		}
	}
}
