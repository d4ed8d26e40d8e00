package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
)

// ImportReport says what Import did, model by model.
type ImportReport struct {
	ModelsCreated   []string         `json:"models_created,omitempty"`
	VersionsCreated []string         `json:"versions_created,omitempty"` // "model/3"
	Unchanged       []string         `json:"unchanged,omitempty"`        // same digest as stored
	Conflicts       []ImportConflict `json:"conflicts,omitempty"`        // left as stored
	Skipped         []ImportSkip     `json:"skipped,omitempty"`
}

// ImportConflict is a version folder whose digest differs from the version
// registered under its number; the stored version wins (versions are immutable).
type ImportConflict struct {
	Model   string `json:"model"`
	Version int64  `json:"version"`
	Stored  string `json:"stored_digest"`
	Found   string `json:"found_digest"`
}

// ImportSkip is a folder Import could not register, and why.
type ImportSkip struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Import registers a Triton-style repository (MODEL/config.pbtxt optional,
// MODEL/<number>/ version folders) in s: each model, and each version under
// its folder's number, with the folder as source, its digest, and the backend
// and signature config.pbtxt gives. Running it again changes nothing that is
// already registered with the same digest; a different digest under an
// existing number is reported as a conflict, never overwritten. Folders that
// cannot be registered (bad names, unreadable files, symlinks) are reported
// and skipped; only a failing store or an unreadable repoDir is an error.
func Import(ctx context.Context, s Store, repoDir string) (ImportReport, error) {
	var rep ImportReport
	root, err := filepath.Abs(repoDir)
	if err != nil {
		return rep, fmt.Errorf("import %q: %w", repoDir, err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return rep, fmt.Errorf("import: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := importModel(ctx, s, filepath.Join(root, e.Name()), e.Name(), &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func importModel(ctx context.Context, s Store, dir, name string, rep *ImportReport) error {
	if err := validModel(name); err != nil {
		rep.Skipped = append(rep.Skipped, ImportSkip{Path: dir, Reason: err.Error()})
		return nil
	}
	backend, sig, err := configInfo(dir, name)
	if err != nil {
		rep.Skipped = append(rep.Skipped, ImportSkip{Path: dir, Reason: err.Error()})
		return nil
	}
	if _, err := s.Model(ctx, name); errors.Is(err, ErrNotFound) {
		if _, err := s.CreateModel(ctx, RegisteredModel{Name: name}); err != nil && !errors.Is(err, ErrExists) {
			return err
		}
		rep.ModelsCreated = append(rep.ModelsCreated, name)
	} else if err != nil {
		return err
	}
	for _, n := range versionFolders(dir) {
		if err := importVersion(ctx, s, dir, name, n, backend, sig, rep); err != nil {
			return err
		}
	}
	return nil
}

func importVersion(ctx context.Context, s Store, dir, name string, n int64, backend string, sig Signature, rep *ImportReport) error {
	vdir := filepath.Join(dir, strconv.FormatInt(n, 10))
	digest, err := DigestDir(vdir)
	if err != nil {
		rep.Skipped = append(rep.Skipped, ImportSkip{Path: vdir, Reason: err.Error()})
		return nil
	}
	label := name + "/" + strconv.FormatInt(n, 10)
	have, err := s.Version(ctx, name, n)
	switch {
	case err == nil && have.Digest == digest:
		rep.Unchanged = append(rep.Unchanged, label)
		return nil
	case err == nil:
		rep.Conflicts = append(rep.Conflicts, ImportConflict{Model: name, Version: n, Stored: have.Digest, Found: digest})
		return nil
	case !errors.Is(err, ErrNotFound):
		return err
	}
	b := backend
	if b == "" && fileExists(filepath.Join(vdir, modelconfig.FilenameONNX)) {
		b = modelconfig.BackendONNXRuntime // Ferry serves ONNX without a config
	}
	_, err = s.CreateVersion(ctx, ModelVersion{Model: name, Version: n, Source: vdir, Digest: digest, Backend: b, Signature: sig})
	switch {
	case errors.Is(err, ErrInvalid):
		rep.Skipped = append(rep.Skipped, ImportSkip{Path: vdir, Reason: err.Error()})
	case err != nil:
		return err
	default:
		rep.VersionsCreated = append(rep.VersionsCreated, label)
	}
	return nil
}

// versionFolders lists the numbered subfolders (> 0) in ascending order;
// anything else in a model folder is not a version (Triton ignores it too).
func versionFolders(dir string) []int64 {
	entries, _ := os.ReadDir(dir)
	var out []int64
	for _, e := range entries {
		if !e.IsDir() || !allDigits(e.Name()) {
			continue
		}
		if n, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// configInfo reads the backend and signature from config.pbtxt when there is
// one ("" and none when not; the version folder may still tell, see above).
func configInfo(dir, name string) (string, Signature, error) {
	text, err := os.ReadFile(filepath.Join(dir, "config.pbtxt"))
	if errors.Is(err, os.ErrNotExist) {
		return "", Signature{}, nil
	}
	if err != nil {
		return "", Signature{}, err
	}
	cfg, err := modelconfig.Parse(text)
	if err != nil {
		return "", Signature{}, err
	}
	modelconfig.SetDefaults(cfg, name)
	backend := cfg.GetBackend()
	if backend == "" {
		backend = cfg.GetPlatform() // an ensemble has a platform and no backend
	}
	var sig Signature
	batch := cfg.GetMaxBatchSize() > 0
	for _, in := range cfg.GetInput() {
		sig.Inputs = append(sig.Inputs, spec(in.GetName(), in.GetDataType(), in.GetDims(), batch))
	}
	for _, out := range cfg.GetOutput() {
		sig.Outputs = append(sig.Outputs, spec(out.GetName(), out.GetDataType(), out.GetDims(), batch))
	}
	return backend, sig, nil
}

// spec is a config tensor as V2 metadata shows it: with -1 in front for the
// batch dimension when the model batches.
func spec(name string, t inference.DataType, dims []int64, batch bool) TensorSpec {
	shape := append([]int64{}, dims...)
	if batch {
		shape = append([]int64{-1}, shape...)
	}
	return TensorSpec{Name: name, Datatype: modelconfig.DType(t).String(), Shape: shape}
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
