package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name, body, link string
	typ              byte
}

func tarOf(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Linkname: e.link, Mode: 0o644}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		noErr(t, tw.WriteHeader(h))
		if typ == tar.TypeReg {
			must(tw.Write([]byte(e.body)))(t)
		}
	}
	noErr(t, tw.Close())
	return &buf
}

func TestArtifactsPut(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	a := NewArtifacts(data, 1<<20)
	files := []entry{{name: "sub/", typ: tar.TypeDir}, {name: "model.onnx", body: "weights"}, {name: "./sub/vocab.txt", body: "v"}}
	dir, digest, err := a.Put(ctx, "mlp", tarOf(t, files...))
	noErr(t, err)
	if want := filepath.Join(data, "artifacts", "mlp", digest); dir != want {
		t.Errorf("Put dir = %s, want %s", dir, want)
	}
	noErr(t, Verify(dir, digest))
	if b := must(os.ReadFile(filepath.Join(dir, "sub", "vocab.txt")))(t); string(b) != "v" {
		t.Errorf("vocab.txt = %q", b)
	}
	dir2, digest2, err := a.Put(ctx, "mlp", tarOf(t, files...))
	noErr(t, err)
	if dir2 != dir || digest2 != digest {
		t.Errorf("second Put of the same folder gave %s %s", dir2, digest2)
	}
	assertOnly(t, filepath.Join(data, "artifacts", "mlp"), digest)
}

func TestArtifactsPutRefuses(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		entries []entry
		want    string
	}{
		{"dot-dot", []entry{{name: "../evil", body: "x"}}, "'..'"},
		{"nested dot-dot", []entry{{name: "a/../../evil", body: "x"}}, "'..'"},
		{"absolute", []entry{{name: "/tmp/evil", body: "x"}}, "absolute"},
		{"backslash", []entry{{name: `..\evil`, body: "x"}}, `'\'`},
		{"symlink out", []entry{{name: "link", link: "/etc", typ: tar.TypeSymlink}}, "links"},
		{"symlink in", []entry{{name: "a", body: "x"}, {name: "link", link: "a", typ: tar.TypeSymlink}}, "links"},
		{"hard link", []entry{{name: "a", body: "x"}, {name: "h", link: "../../x", typ: tar.TypeLink}}, "links"},
		{"device", []entry{{name: "dev", typ: tar.TypeChar}}, "special"},
		{"too large", []entry{{name: "a", body: strings.Repeat("x", 600)}, {name: "b", body: strings.Repeat("x", 600)}}, "limit"},
		{"duplicate", []entry{{name: "a", body: "x"}, {name: "./a", body: "y"}}, "duplicate"},
		{"no files", []entry{{name: "d/", typ: tar.TypeDir}}, "no files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			a := NewArtifacts(data, 1000)
			_, _, err := a.Put(ctx, "mlp", tarOf(t, tc.entries...))
			wantErr(t, tc.name, err, ErrInvalid)
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `model "mlp" upload`) {
				t.Errorf("err = %q, want it to name the upload and mention %q", err, tc.want)
			}
			assertOnly(t, filepath.Join(data, "artifacts", "mlp"))
			if _, err := os.Stat(filepath.Join(data, "evil")); err == nil {
				t.Error("a file escaped the store")
			}
		})
	}
	_, _, err := NewArtifacts(t.TempDir(), 0).Put(ctx, "mlp", strings.NewReader("not a tar, not at all, no header here"))
	wantErr(t, "garbage", err, ErrInvalid)
	_, _, err = NewArtifacts(t.TempDir(), 0).Put(ctx, "../x", tarOf(t, entry{name: "a", body: "x"}))
	wantErr(t, "bad model name", err, ErrInvalid)
}

// assertOnly fails unless dir holds exactly names (no leftover temp folders).
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	var got []string
	for _, e := range must(os.ReadDir(dir))(t) {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}
