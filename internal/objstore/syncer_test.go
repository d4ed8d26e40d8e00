package objstore

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferryml/ferry/internal/objstore/s3test"
)

const testKey = "AKIDFERRYTEST"

// newStore is an in-process S3 server that accepts only testKey.
func newStore(t *testing.T) *s3test.Server {
	srv := s3test.New(t, "models")
	srv.RequireAccessKey(testKey)
	return srv
}

func newSyncer(t *testing.T, srv *s3test.Server, dir string) *Syncer {
	t.Helper()
	s, err := New(Options{URL: "s3://models/repo", CacheDir: dir, Endpoint: srv.URL,
		AccessKeyID: testKey, SecretAccessKey: "secret", Timeout: 10 * time.Second, StallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSync(t *testing.T, s *Syncer) map[string]error {
	t.Helper()
	refused, err := s.Sync(context.Background())
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return refused
}

// tree reads the mirror: files with their contents, folders as "path/".
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(path)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// big is a body larger than one network write, so a cut lands inside it.
func big(seed byte) string { return strings.Repeat(string(rune('a'+seed%26)), 200<<10) }

func TestSyncMirrorsOnlyWhatChanged(t *testing.T) {
	srv := newStore(t)
	s := newSyncer(t, srv, t.TempDir())
	steps := []struct {
		name     string
		change   func()
		want     map[string]string
		wantGets map[string]int // total GETs of these keys after the step
	}{
		{
			name: "first sync copies the prefix",
			change: func() {
				srv.Put(t, "repo/a/config.pbtxt", []byte("config a"))
				srv.Put(t, "repo/a/1/model.onnx", []byte("a v1"))
				srv.Put(t, "repo/b/1/model.onnx", []byte("b v1"))
				srv.Put(t, "repo/ens/1/", nil) // an ensemble's empty version folder
				srv.Put(t, "repo/README", []byte("top-level file"))
				srv.Put(t, "elsewhere/x/1/model.onnx", []byte("outside the prefix"))
			},
			want: map[string]string{"a/": "", "a/config.pbtxt": "config a", "a/1/": "", "a/1/model.onnx": "a v1",
				"b/": "", "b/1/": "", "b/1/model.onnx": "b v1", "ens/": "", "ens/1/": "", "README": "top-level file"},
			wantGets: map[string]int{"repo/a/config.pbtxt": 1, "repo/a/1/model.onnx": 1, "elsewhere/x/1/model.onnx": 0},
		},
		{
			name:     "nothing changed, nothing downloaded",
			change:   func() {},
			want:     map[string]string{"a/": "", "a/config.pbtxt": "config a", "a/1/": "", "a/1/model.onnx": "a v1", "b/": "", "b/1/": "", "b/1/model.onnx": "b v1", "ens/": "", "ens/1/": "", "README": "top-level file"},
			wantGets: map[string]int{"repo/a/config.pbtxt": 1, "repo/a/1/model.onnx": 1, "repo/b/1/model.onnx": 1},
		},
		{
			name: "changed objects replaced, new ones added, deleted ones removed with their folders",
			change: func() {
				srv.Put(t, "repo/a/1/model.onnx", []byte("a v1, retrained"))
				srv.Put(t, "repo/a/2/model.onnx", []byte("a v2"))
				srv.Delete(t, "repo/b/1/model.onnx")
				srv.Delete(t, "repo/ens/1/")
			},
			want: map[string]string{"a/": "", "a/config.pbtxt": "config a", "a/1/": "", "a/1/model.onnx": "a v1, retrained",
				"a/2/": "", "a/2/model.onnx": "a v2", "README": "top-level file"},
			wantGets: map[string]int{"repo/a/config.pbtxt": 1, "repo/a/1/model.onnx": 2, "repo/a/2/model.onnx": 1},
		},
		{
			name:     "same size, new bytes: the ETag tells",
			change:   func() { srv.Put(t, "repo/a/2/model.onnx", []byte("A V2")) },
			want:     map[string]string{"a/": "", "a/config.pbtxt": "config a", "a/1/": "", "a/1/model.onnx": "a v1, retrained", "a/2/": "", "a/2/model.onnx": "A V2", "README": "top-level file"},
			wantGets: map[string]int{"repo/a/2/model.onnx": 2},
		},
	}
	for _, step := range steps {
		step.change()
		if refused := mustSync(t, s); len(refused) != 0 {
			t.Fatalf("%s: refused %v", step.name, refused)
		}
		if diff := cmp.Diff(step.want, tree(t, s.Root())); diff != "" {
			t.Errorf("%s: mirror (-want +got):\n%s", step.name, diff)
		}
		for key, n := range step.wantGets {
			if got := srv.Gets(key); got != n {
				t.Errorf("%s: %s fetched %d times, want %d", step.name, key, got, n)
			}
		}
	}
	st := s.Stats()
	if st.Syncs != 4 || st.Downloads != 7 || st.Deleted != 1 || st.Refused != 0 {
		t.Errorf("stats %+v, want 4 syncs, 7 downloads, 1 deletion, nothing refused", st)
	}
}

// TestSyncRefusesBadObjects: a model whose new files include one that fails its check
// keeps all of its previous files (the good new ones are not applied either), while
// another model's update in the same sync goes through; the refusal names the object.
func TestSyncRefusesBadObjects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		upload  func(srv *s3test.Server, key string, data []byte)
		heal    func(srv *s3test.Server, key string, data []byte)
		wantErr string
	}{
		{
			name: "bytes flipped in transit (ETag MD5)",
			upload: func(srv *s3test.Server, key string, data []byte) {
				srv.Put(t, key, data)
				srv.Corrupt(key, true)
			},
			heal:    func(srv *s3test.Server, key string, _ []byte) { srv.Corrupt(key, false) },
			wantErr: "refused: checksum mismatch: the store's ETag says MD5 ",
		},
		{
			name: "copy rotted at rest (x-amz-checksum-sha256)",
			upload: func(srv *s3test.Server, key string, data []byte) {
				srv.PutWithSHA256(t, key, data, s3test.SHA256([]byte("what was uploaded")))
			},
			heal: func(srv *s3test.Server, key string, data []byte) {
				srv.PutWithSHA256(t, key, data, s3test.SHA256(data))
			},
			wantErr: "refused: checksum mismatch: the store's x-amz-checksum-sha256 says SHA-256 " + s3test.SHA256([]byte("what was uploaded")),
		},
		{
			name: "connection dropped half way",
			upload: func(srv *s3test.Server, key string, data []byte) {
				srv.Put(t, key, data)
				srv.Cut(key, true)
			},
			heal:    func(srv *s3test.Server, key string, _ []byte) { srv.Cut(key, false) },
			wantErr: "not fetched: download failed after ",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newStore(t)
			s := newSyncer(t, srv, t.TempDir())
			srv.Put(t, "repo/m/config.pbtxt", []byte("m config 1"))
			srv.Put(t, "repo/m/1/model.onnx", []byte(big(1)))
			srv.Put(t, "repo/n/1/model.onnx", []byte("n 1"))
			mustSync(t, s)
			before := tree(t, s.Root())

			srv.Put(t, "repo/m/config.pbtxt", []byte("m config 2"))
			tc.upload(srv, "repo/m/1/model.onnx", []byte(big(2)))
			srv.Put(t, "repo/n/1/model.onnx", []byte("n 2"))
			tc.upload(srv, "repo/fresh/1/model.onnx", []byte(big(3))) // a model never synced
			refused := mustSync(t, s)

			t.Logf("refusal: %v", refused["m"])
			if len(refused) != 2 {
				t.Fatalf("refused %v, want models m and fresh", refused)
			}
			for model, key := range map[string]string{"m": "repo/m/1/model.onnx", "fresh": "repo/fresh/1/model.onnx"} {
				want := "object s3://models/" + key + " " + tc.wantErr
				if err := refused[model]; err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Errorf("model %s refused with %v, want %q...", model, err, want)
				}
			}
			want := before
			want["n/1/model.onnx"] = "n 2"
			if diff := cmp.Diff(want, tree(t, s.Root())); diff != "" {
				t.Errorf("mirror after the refused update (-want +got):\n%s", diff)
			}
			if ents, _ := os.ReadDir(filepath.Join(s.dir, tmpName)); len(ents) != 0 {
				t.Errorf("downloads left behind: %v", ents)
			}

			tc.heal(srv, "repo/m/1/model.onnx", []byte(big(2)))
			tc.heal(srv, "repo/fresh/1/model.onnx", []byte(big(3)))
			if refused := mustSync(t, s); len(refused) != 0 {
				t.Fatalf("after healing, refused %v", refused)
			}
			got := tree(t, s.Root())
			if got["m/config.pbtxt"] != "m config 2" || got["m/1/model.onnx"] != big(2) || got["fresh/1/model.onnx"] != big(3) {
				t.Errorf("after healing, m and fresh not updated: config %q", got["m/config.pbtxt"])
			}
		})
	}
}

func TestSyncAfterRestartDownloadsNothing(t *testing.T) {
	srv := newStore(t)
	dir := t.TempDir()
	srv.Put(t, "repo/m/1/model.onnx", []byte("m 1"))
	srv.Put(t, "repo/m/config.pbtxt", []byte("config"))
	mustSync(t, newSyncer(t, srv, dir))

	again := newSyncer(t, srv, dir)
	mustSync(t, again)
	if st := again.Stats(); st.Downloads != 0 || st.Syncs != 1 {
		t.Errorf("restarted syncer: %+v, want one sync and no downloads", st)
	}
	if n := srv.Gets("repo/m/1/model.onnx"); n != 1 {
		t.Errorf("model fetched %d times over two runs, want 1", n)
	}

	// A file changed behind the cache's back (its size differs) is fetched again.
	if err := os.WriteFile(filepath.Join(again.Root(), "m", "1", "model.onnx"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustSync(t, again)
	if b, _ := os.ReadFile(filepath.Join(again.Root(), "m", "1", "model.onnx")); string(b) != "m 1" {
		t.Errorf("tampered file not restored: %q", b)
	}
}

func TestSyncSkipsKeysThatLeaveThePrefix(t *testing.T) {
	srv := newStore(t)
	dir := t.TempDir()
	s := newSyncer(t, srv, dir)
	srv.Put(t, "repo/../escape", []byte("x"))
	srv.Put(t, "repo/m/../../escape2", []byte("x"))
	srv.Put(t, "repo/m//double", []byte("x"))
	srv.Put(t, "repo/m/1/model.onnx", []byte("ok"))
	mustSync(t, s)
	for _, p := range []string{filepath.Join(dir, "escape"), filepath.Join(dir, "escape2"), filepath.Join(filepath.Dir(dir), "escape")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s written outside the mirror", p)
		}
	}
	want := map[string]string{"m/": "", "m/1/": "", "m/1/model.onnx": "ok"}
	if diff := cmp.Diff(want, tree(t, s.Root())); diff != "" {
		t.Errorf("mirror (-want +got):\n%s", diff)
	}
}

func TestCacheFolderMustBeFerrys(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "thesis.tex"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{URL: "s3://models/repo", CacheDir: dir, Endpoint: "http://127.0.0.1:1", AccessKeyID: "k", SecretAccessKey: "s"})
	if err == nil || !strings.Contains(err.Error(), "is not a Ferry model cache; refusing to mirror into it") {
		t.Fatalf("New over a folder with other files: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "thesis.tex")); !bytes.Equal(b, []byte("precious")) {
		t.Fatal("the folder's file was touched")
	}
}

func TestSyncWithWrongCredentialsFails(t *testing.T) {
	srv := newStore(t)
	srv.Put(t, "repo/m/1/model.onnx", []byte("m 1"))
	s, err := New(Options{URL: "s3://models/repo", CacheDir: t.TempDir(), Endpoint: srv.URL,
		AccessKeyID: "AKIDSOMEONEELSE", SecretAccessKey: "secret", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Sync(context.Background())
	if err == nil || !strings.Contains(err.Error(), "model store s3://models/repo: listing:") || !strings.Contains(err.Error(), "InvalidAccessKeyId") {
		t.Fatalf("Sync with a key the store does not know: %v", err)
	}
	if st := s.Stats(); st.Failures != 1 || st.Syncs != 0 {
		t.Errorf("stats %+v, want one failure", st)
	}
}
