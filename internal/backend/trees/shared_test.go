package trees

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestLoadSharedSharesOneCopyPerFileContent(t *testing.T) {
	path := copyFixture(t, "xgb_regression.json")
	a, err := LoadShared(path, Unknown)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadShared(path, Unknown)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("two loads of one file gave two models, want one shared")
	}
	// A rewritten file is a new model.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	c, err := LoadShared(path, Unknown)
	if err != nil {
		t.Fatal(err)
	}
	if c == a {
		t.Error("a file with a new modification time gave the old model")
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(c)
}

func TestLoadSharedForgetsCollectedModels(t *testing.T) {
	path := copyFixture(t, "xgb_regression.json")
	if _, err := LoadShared(path, Unknown); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		runtime.GC()
		shared.mu.Lock()
		n := 0
		for k := range shared.models {
			if k.path == path {
				n++
			}
		}
		shared.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("the entry of an unused model stayed after collection")
}

// copyFixture copies testdata/name to a new folder, so a test may touch it.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
