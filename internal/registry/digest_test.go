package registry

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		noErr(t, os.MkdirAll(filepath.Dir(p), 0o755))
		noErr(t, os.WriteFile(p, []byte(body), 0o644))
	}
}

// framed is the documented framing, built independently of DigestDir.
func framed(files ...[2]string) string {
	h := sha256.New()
	for _, f := range files {
		var size [8]byte
		binary.BigEndian.PutUint64(size[:], uint64(len(f[1])))
		h.Write([]byte(f[0] + "\x00"))
		h.Write(size[:])
		h.Write([]byte(f[1]))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestDigestDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"b.txt": "hello", "a/c.bin": "", "a/d": "xyz"})
	noErr(t, os.MkdirAll(filepath.Join(dir, "empty"), 0o755)) // folders do not count
	want := framed([2]string{"a/c.bin", ""}, [2]string{"a/d", "xyz"}, [2]string{"b.txt", "hello"})
	if got := must(DigestDir(dir))(t); got != want {
		t.Fatalf("DigestDir = %s, want %s (path, NUL, 8-byte size, content; sorted)", got, want)
	}
	noErr(t, Verify(dir, strings.ToUpper(want)))

	// Moving bytes between files, or renaming one, changes the digest.
	for name, files := range map[string]map[string]string{
		"bytes moved": {"x": "ab", "y": ""},
		"renamed":     {"x": "a", "z": "b"},
	} {
		a, b := t.TempDir(), t.TempDir()
		writeFiles(t, a, map[string]string{"x": "a", "y": "b"})
		writeFiles(t, b, files)
		if must(DigestDir(a))(t) == must(DigestDir(b))(t) {
			t.Errorf("%s: same digest", name)
		}
	}

	err := Verify(dir, strings.Repeat("0", 64))
	wantErr(t, "Verify mismatch", err, ErrInvalid)
	if !strings.Contains(err.Error(), "digest mismatch") {
		t.Errorf("Verify err = %q", err)
	}
	noErr(t, os.Symlink("/etc/passwd", filepath.Join(dir, "link")))
	_, err = DigestDir(dir)
	wantErr(t, "symlink in artifact", err, ErrInvalid)
	if !strings.Contains(err.Error(), `"link" is a symlink`) {
		t.Errorf("err = %q, want it to name the link", err)
	}
	_, err = DigestDir(filepath.Join(dir, "missing"))
	if err == nil {
		t.Error("DigestDir of a missing folder succeeded")
	}
}
