package objstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The cache folder holds the mirror, the manifest and the downloads in progress. The
// manifest marks the folder as Ferry's, so a sync never deletes files in a folder it
// did not create.
const (
	manifestName = "manifest.json"
	mirrorName   = "repo"
	tmpName      = "tmp"
)

// entry is what the store said about an object when its bytes were last verified.
type entry struct {
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

// manifest records the objects in the mirror, by their path below the prefix.
type manifest struct {
	URL     string           `json:"url"`
	Objects map[string]entry `json:"objects"`
}

// prepareCache creates the cache folder or checks that an existing one is a Ferry
// cache, clears downloads left by a crash, and reads the manifest. A manifest written
// for another URL is dropped: the mirror is then rebuilt from the new store.
func prepareCache(dir, url string) (*manifest, error) {
	m := &manifest{URL: url, Objects: map[string]entry{}}
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	switch {
	case errors.Is(err, os.ErrNotExist):
		ents, rerr := os.ReadDir(dir)
		if rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return nil, fmt.Errorf("model cache %s: %w", dir, rerr)
		}
		if len(ents) > 0 {
			return nil, fmt.Errorf("model cache %s: folder is not empty and holds no %s, so it is not a Ferry model cache; "+
				"refusing to mirror into it (give an empty or new folder)", dir, manifestName)
		}
	case err != nil:
		return nil, fmt.Errorf("model cache %s: %w", dir, err)
	default:
		var old manifest
		if err := json.Unmarshal(data, &old); err != nil {
			return nil, fmt.Errorf("model cache %s: %s: %w", dir, manifestName, err)
		}
		if old.URL == url && old.Objects != nil {
			m = &old
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, tmpName)); err != nil {
		return nil, fmt.Errorf("model cache %s: %w", dir, err)
	}
	for _, sub := range []string{mirrorName, tmpName} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("model cache: %w", err)
		}
	}
	return m, m.save(dir)
}

// save writes the manifest atomically (temporary file, sync, rename).
func (m *manifest) save(dir string) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(dir, tmpName), "manifest-*")
	if err != nil {
		return fmt.Errorf("model cache: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, manifestName))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("model cache: writing %s: %w", manifestName, err)
	}
	return nil
}
