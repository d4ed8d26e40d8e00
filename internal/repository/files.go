package repository

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/platform/filestate"
)

// modelDirs lists the model folders directly under root.
func modelDirs(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("model repository: %w", err)
	}
	var names []string
	for _, e := range ents {
		if isDir(root, e) && !strings.HasPrefix(e.Name(), ".") && core.CheckModelName(e.Name()) == nil && !isLLMFolder(filepath.Join(root, e.Name())) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// isLLMFolder reports whether the folder's config.pbtxt names the LLM backend: the LLM
// lane serves it, not the V2 repository.
func isLLMFolder(dir string) bool {
	text, err := os.ReadFile(filepath.Join(dir, "config.pbtxt"))
	if err != nil {
		return false
	}
	cfg, err := modelconfig.Parse(text)
	return err == nil && cfg.GetBackend() == modelconfig.BackendLLM
}

// versionDirs lists the numeric version folders of a model, ascending.
func versionDirs(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var vs []int64
	for _, e := range ents {
		if !isDir(dir, e) || within(dir, filepath.Join(dir, e.Name())) != nil {
			continue // a version folder linked out of its model folder is not served
		}
		v, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || v < 0 {
			continue // Triton ignores non-numeric folders too
		}
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	return vs, nil
}

// isDir follows symlinks, so a repository may link model folders in.
func isDir(parent string, e fs.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&fs.ModeSymlink == 0 {
		return false
	}
	st, err := os.Stat(filepath.Join(parent, e.Name()))
	return err == nil && st.IsDir()
}

// within refuses a path that, once its symlinks are followed, is outside dir (its
// symlinks followed too): a model folder may be linked into the repository, but what it
// holds must not lead out of it (a version folder linked to /etc).
func within(dir, path string) error {
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(realDir, real)
	if err != nil || !filepath.IsLocal(rel) {
		return errors.New("it leads out of its folder") // where to is the operator's business, not a client's
	}
	return nil
}

// fingerprint is filestate.Fingerprint: what polling compares.
var fingerprint = filestate.Fingerprint
