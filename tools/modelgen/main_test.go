package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateIdempotent(t *testing.T) {
	root := t.TempDir()
	// A stale config that must go: identity_fp32 demonstrates auto-complete.
	stalePath := filepath.Join(root, "identity_fp32", "config.pbtxt")
	if err := os.MkdirAll(filepath.Dir(stalePath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stalePath, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}

	var log bytes.Buffer
	if err := generate(root, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), fmt.Sprintf("%d file(s) changed", len(files())+1)) { // and the stale config
		t.Errorf("first run:\n%s", log.String())
	}
	for rel, data := range files() {
		got, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: content differs (err %v)", rel, err)
		}
	}
	if _, err := os.Stat(stalePath); !os.IsNotExist(err) {
		t.Errorf("stale %s still there: %v", stalePath, err)
	}

	// The second run changes nothing, not even modification times.
	mlp := filepath.Join(root, "mlp", "1", "model.onnx")
	before, err := os.Stat(mlp)
	if err != nil {
		t.Fatal(err)
	}
	log.Reset()
	if err := generate(root, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), " 0 file(s) changed") || strings.Contains(log.String(), "wrote") {
		t.Errorf("second run:\n%s", log.String())
	}
	after, err := os.Stat(mlp)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("mlp model rewritten on the second run")
	}

	// A changed file is rewritten, and no temporary files are left behind.
	cfg := filepath.Join(root, "simple", "config.pbtxt")
	if err := os.WriteFile(cfg, []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	if err := generate(root, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "1 file(s) changed") {
		t.Errorf("third run:\n%s", log.String())
	}
	entries, _ := os.ReadDir(filepath.Join(root, "simple"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}
