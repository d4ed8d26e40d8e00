package modelconfig

import (
	"path/filepath"
	"testing"
)

func TestCheckFileName(t *testing.T) {
	for s, ok := range map[string]bool{
		"model.onnx": true, "model.savedmodel": true, "a..b": false, "..": false, ".": false, "": false,
		"../../etc/shadow": false, "/etc/passwd": false, `..\x`: false, "sub/model.onnx": false, "a\x00b": false,
	} {
		if got := CheckFileName(s) == nil; got != ok {
			t.Errorf("CheckFileName(%q) accepted=%t, want %t", s, got, ok)
		}
	}
}

// FuzzCheckFileName: a name CheckFileName accepts is one element of the folder it is
// joined to, whatever the folder.
func FuzzCheckFileName(f *testing.F) {
	for _, s := range []string{"model.onnx", "../x", "a/b", "..", "x\x00", `a\b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckFileName(s) != nil {
			return
		}
		dir := "/repo/m/1"
		p := filepath.Join(dir, s)
		if filepath.Dir(p) != dir || filepath.Base(p) != s {
			t.Fatalf("CheckFileName accepted %q, which joins to %q", s, p)
		}
	})
}
