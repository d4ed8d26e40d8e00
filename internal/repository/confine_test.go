package repository

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/core"
)

const memModelJSON = `{"backend": "mem", "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [1]}], "output": [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [1]}]}`

// TestLoadFilesNeedTheFlag: a load request carrying its own config or files is refused
// unless the server allows it; allowed, the files are written under LoadFilesDir.
func TestLoadFilesNeedTheFlag(t *testing.T) {
	ctx := context.Background()
	files := map[string][]byte{"1/model.mem": []byte("1")}
	mr := newMemRepo(t, map[string]int{"a": 1}, Options{})
	for _, opts := range []core.LoadOptions{{Files: files, Config: memModelJSON}, {Config: memModelJSON}} {
		err := mr.Load(ctx, "up", opts)
		if !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "--allow-load-files") {
			t.Errorf("Load with config=%t files=%d: err = %v, want invalid naming --allow-load-files", opts.Config != "", len(opts.Files), err)
		}
	}
	if n := mr.backend.totalOpens(); n != 0 {
		t.Errorf("refused loads opened %d instances", n)
	}
	mr.use(t, "a") // still serving

	dir := t.TempDir()
	ok := newMemRepo(t, nil, Options{AllowLoadFiles: true, LoadFilesDir: dir})
	ok.backend.gate = make(chan struct{})
	seen := make(chan []os.DirEntry, 1)
	go func() { // while the instance opens, its files are in a folder under dir
		for i := 0; i < 500 && ok.backend.totalOpens() == 0; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		ents, _ := os.ReadDir(dir)
		seen <- ents
		close(ok.backend.gate)
	}()
	if err := ok.Load(ctx, "up", core.LoadOptions{Files: files, Config: memModelJSON}); err != nil {
		t.Fatalf("Load with AllowLoadFiles: %v", err)
	}
	if ents := <-seen; len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "ferry-load-up-") {
		t.Errorf("LoadFilesDir held %v while loading, want one ferry-load-up-* folder", ents)
	}
}

// TestUploadedCodeNeedsItsOwnFlag: a backend that runs its model file as code (python)
// loads uploaded files only with AllowCodeUploads, even when uploads are allowed.
func TestUploadedCodeNeedsItsOwnFlag(t *testing.T) {
	ctx := context.Background()
	files := map[string][]byte{"1/model.mem": []byte("1")}
	for _, allow := range []bool{false, true} {
		mr := newMemRepo(t, nil, Options{AllowLoadFiles: true, AllowCodeUploads: allow})
		b := mr.backend.backend()
		b.Code = true
		mr.opts.Backends["mem"] = b
		err := mr.Load(ctx, "code", core.LoadOptions{Files: files, Config: memModelJSON})
		if allow && err != nil {
			t.Errorf("AllowCodeUploads: %v", err)
		}
		if !allow && (!errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "--allow-python-uploads")) {
			t.Errorf("code upload without AllowCodeUploads: err = %v, want a refusal naming --allow-python-uploads", err)
		}
		if got, want := mr.backend.totalOpens(), map[bool]int{false: 0, true: 1}[allow]; got != want {
			t.Errorf("AllowCodeUploads=%t: opened %d instances, want %d", allow, got, want)
		}
	}
}

// TestModelFileNameIsNoOracle: default_model_filename "../x" must fail the same way
// whether x exists or not, and name the field, not the file system's answer.
func TestModelFileNameIsNoOracle(t *testing.T) {
	ctx := context.Background()
	mr := newMemRepo(t, map[string]int{"exists": 1, "missing": 1}, Options{})
	root := mr.opts.Root
	if err := os.WriteFile(filepath.Join(root, "secret"), []byte("1"), 0o600); err != nil {
		t.Fatal(err)
	}
	errs := map[string]string{}
	for name, target := range map[string]string{"exists": "../../secret", "missing": "../../nothing"} {
		cfg := memConfig + `default_model_filename: "` + target + `"` + "\n"
		if err := os.WriteFile(filepath.Join(root, name, "config.pbtxt"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		err := mr.Load(ctx, name, core.LoadOptions{})
		if err == nil {
			t.Fatalf("%s: default_model_filename %q loaded", name, target)
		}
		msg := strings.ReplaceAll(strings.ReplaceAll(err.Error(), name, "M"), target, "T")
		if !strings.Contains(msg, "default_model_filename") || strings.Contains(msg, "no such file") {
			t.Errorf("%s: err = %v, want a refusal of default_model_filename before any file access", name, err)
		}
		errs[name] = msg
	}
	if errs["exists"] != errs["missing"] {
		t.Errorf("the errors tell an existing file from a missing one:\n%s\n%s", errs["exists"], errs["missing"])
	}
	if n := mr.backend.openCount("exists"); n != 0 {
		t.Errorf("opened %d instances", n)
	}
}

// TestVersionLinkedOutOfTheModelIsNotServed: a version folder that is a symlink to a
// folder outside its model folder (here, holding a valid model) is not a version; a model
// folder linked in from elsewhere still is (the repository allows that on purpose).
func TestVersionLinkedOutOfTheModelIsNotServed(t *testing.T) {
	ctx := context.Background()
	mr := newMemRepo(t, map[string]int{"m": 1}, Options{})
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "model.mem"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(mr.opts.Root, "m", "7")); err != nil {
		t.Fatal(err)
	}
	if vs, err := versionDirs(filepath.Join(mr.opts.Root, "m")); err != nil || len(vs) != 1 || vs[0] != 1 {
		t.Errorf("versionDirs = %v, %v; want [1] without the linked-out 7", vs, err)
	}
	// A model file linked out of its version folder is refused by name.
	if err := os.Symlink(filepath.Join(outside, "model.mem"), filepath.Join(mr.opts.Root, "m", "1", "linked.mem")); err != nil {
		t.Fatal(err)
	}
	cfg := memConfig + `default_model_filename: "linked.mem"` + "\n"
	if err := os.WriteFile(filepath.Join(mr.opts.Root, "m", "config.pbtxt"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	err := mr.Load(ctx, "m", core.LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "leads out of its folder") {
		t.Errorf("model file linked to %s: err = %v, want a refusal", outside, err)
	}
	// The model folder itself linked in stays allowed.
	elsewhere := filepath.Join(t.TempDir(), "n")
	if err := os.MkdirAll(filepath.Join(elsewhere, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(elsewhere, "config.pbtxt"), []byte(memConfig), 0o644)
	os.WriteFile(filepath.Join(elsewhere, "1", "model.mem"), []byte("1"), 0o644)
	if err := os.Symlink(elsewhere, filepath.Join(mr.opts.Root, "n")); err != nil {
		t.Fatal(err)
	}
	if err := mr.Load(ctx, "n", core.LoadOptions{}); err != nil {
		t.Errorf("a model folder linked into the repository: %v", err)
	}
}

// totalOpens counts the instances opened, whatever folder (an upload's is a temporary one).
func (b *memBackend) totalOpens() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.opens {
		n += c
	}
	return n
}
