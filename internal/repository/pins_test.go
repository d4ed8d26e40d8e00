package repository

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/core"
)

// A pinned version loads beside the policy's (latest 1), the versions that stay are not
// reopened, and unpinning unloads it; a pin without a folder or that fails to load is
// an error naming it, and the policy's version keeps serving.
func TestPinsKeepVersionsLoaded(t *testing.T) {
	root := t.TempDir()
	for v, mib := range map[string]string{"1": "1", "2": "not a number", "3": "1"} {
		dir := filepath.Join(root, "m", v)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "model.mem"), []byte(mib), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "m", "config.pbtxt"), []byte(memConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &memBackend{opens: map[string]int{}}
	r, err := New(Options{Root: root, Backends: Backends{"mem": b.backend()}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	loaded := func() []string {
		var out []string
		for _, e := range r.Index(true) {
			out = append(out, e.Version)
		}
		slices.Sort(out)
		return out
	}
	if got := loaded(); !slices.Equal(got, []string{"3"}) {
		t.Fatalf("before any pin: %v loaded, want [3]", got)
	}
	if err := r.Pin(ctx, "m", []int64{1}); err != nil {
		t.Fatal(err)
	}
	if got := loaded(); !slices.Equal(got, []string{"1", "3"}) || b.openCount("m") != 2 {
		t.Errorf("pinned 1: %v loaded after %d opens, want [1 3] after 2 (3 not reopened)", got, b.openCount("m"))
	}
	if l, err := r.Acquire(ctx, "m", "1"); err != nil {
		t.Errorf("pinned version 1 does not serve: %v", err)
	} else {
		l.Release()
	}
	err = r.Pin(ctx, "m", []int64{1, 2})
	if !errors.Is(err, core.ErrUnavailable) || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("pinning a version that fails to load: %v, want unavailable naming version 2", err)
	}
	if err := r.Pin(ctx, "m", []int64{1, 7}); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("pinning a version without a folder: %v, want not found", err)
	}
	if got := loaded(); !slices.Equal(got, []string{"1", "3"}) {
		t.Errorf("after refused pins: %v loaded, want [1 3] as before", got)
	}
	if err := r.Pin(ctx, "m", nil); err != nil {
		t.Fatal(err)
	}
	if got := loaded(); !slices.Equal(got, []string{"3"}) {
		t.Errorf("unpinned: %v loaded, want [3]", got)
	}
}
