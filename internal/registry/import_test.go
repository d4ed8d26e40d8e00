package registry

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const mlpConfig = `name: "mlp"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [{ name: "x", data_type: TYPE_FP32, dims: [4] }]
output [{ name: "y", data_type: TYPE_FP32, dims: [2] }]
`

func TestImport(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := WithActor(context.Background(), "importer", "ferry registry import")
		repo := t.TempDir()
		writeFiles(t, repo, map[string]string{
			"mlp/config.pbtxt":     mlpConfig,
			"mlp/1/model.onnx":     "one",
			"mlp/2/model.onnx":     "two",
			"mlp/notes/readme":     "not a version",
			"plain/1/model.onnx":   "plain",
			"trees/config.pbtxt":   `backend: "trees"`,
			"trees/3/model.json":   "{}",
			"bad..name/1/x":        "x",
			"broken/config.pbtxt":  "max_batch: 1",
			".hidden/1/model.onnx": "x",
			"README.md":            "a file, not a model",
		})
		noErr(t, os.MkdirAll(filepath.Join(repo, "mlp", "4"), 0o755))
		noErr(t, os.Symlink("/etc/passwd", filepath.Join(repo, "mlp", "4", "model.onnx")))

		rep := must(Import(ctx, s, repo))(t)
		if diff := cmp.Diff([]string{"mlp", "plain", "trees"}, rep.ModelsCreated); diff != "" {
			t.Errorf("ModelsCreated (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"mlp/1", "mlp/2", "plain/1", "trees/3"}, rep.VersionsCreated); diff != "" {
			t.Errorf("VersionsCreated (-want +got):\n%s", diff)
		}
		var skipped []string
		for _, sk := range rep.Skipped {
			skipped = append(skipped, must(filepath.Rel(repo, sk.Path))(t))
		}
		if diff := cmp.Diff([]string{"bad..name", "broken", "mlp/4"}, skipped); diff != "" {
			t.Errorf("Skipped (-want +got):\n%s\n%+v", diff, rep.Skipped)
		}

		v := must(s.Version(ctx, "mlp", 2))(t)
		wantSig := Signature{Inputs: []TensorSpec{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 4}}},
			Outputs: []TensorSpec{{Name: "y", Datatype: "FP32", Shape: []int64{-1, 2}}}}
		if v.Source != filepath.Join(repo, "mlp", "2") || v.Backend != "onnxruntime" || v.Digest != must(DigestDir(v.Source))(t) ||
			!cmp.Equal(v.Signature, wantSig) || v.CreatedBy != "importer" {
			t.Errorf("mlp/2 = %+v", v)
		}
		for model, want := range map[string]string{"plain": "onnxruntime", "trees": "trees"} {
			vs := must(s.Versions(ctx, model))(t)
			if len(vs) != 1 || vs[0].Backend != want {
				t.Errorf("%s versions = %+v, want one with backend %q", model, vs, want)
			}
		}

		// Re-import: nothing changes.
		audits := auditCount(t, s)
		rep = must(Import(ctx, s, repo))(t)
		if len(rep.ModelsCreated)+len(rep.VersionsCreated)+len(rep.Conflicts) != 0 || len(rep.Unchanged) != 4 {
			t.Errorf("re-import report %+v, want 4 unchanged and nothing else", rep)
		}
		if n := auditCount(t, s); n != audits {
			t.Errorf("re-import wrote %d audit rows", n-audits)
		}

		// A changed folder under a registered number is a conflict, not an overwrite.
		writeFiles(t, repo, map[string]string{"mlp/2/model.onnx": "two, retrained"})
		rep = must(Import(ctx, s, repo))(t)
		want := []ImportConflict{{Model: "mlp", Version: 2, Stored: v.Digest, Found: must(DigestDir(v.Source))(t)}}
		if diff := cmp.Diff(want, rep.Conflicts); diff != "" {
			t.Errorf("Conflicts (-want +got):\n%s", diff)
		}
		if got := must(s.Version(ctx, "mlp", 2))(t).Digest; got != v.Digest {
			t.Errorf("conflicting import overwrote the digest: %s", got)
		}
		// Versions created later continue after the imported numbers.
		if n := must(s.CreateVersion(ctx, ModelVersion{Model: "trees", Source: "s3://b/t"}))(t).Version; n != 4 {
			t.Errorf("next trees version = %d, want 4", n)
		}
		_, err := Import(ctx, s, filepath.Join(repo, "missing"))
		if err == nil {
			t.Error("Import of a missing folder succeeded")
		}
	})
}
