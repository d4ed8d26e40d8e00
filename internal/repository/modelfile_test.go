package repository

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryml/ferry/internal/inference"
)

// TestPickBackendByModelFile: a folder without config gets the backend whose model
// file it holds, asking a multi-format backend's ModelFile; a backend without a
// default file (remote) never claims a folder.
func TestPickBackendByModelFile(t *testing.T) {
	trees := Backend{DefaultFilename: "model.json", ModelFile: func(vdir string, _ *inference.ModelConfig) string {
		for _, f := range []string{"model.json", "model.txt"} {
			if fileExists(filepath.Join(vdir, f)) {
				return f
			}
		}
		return ""
	}}
	r := &Repository{opts: Options{Backends: Backends{
		"onnxruntime": {Platform: "onnxruntime_onnx", DefaultFilename: "model.onnx"},
		"trees":       trees,
		"remote":      {Platform: "remote"},
	}}}
	for _, tc := range []struct {
		file, wantBackend, wantFile string
	}{
		{"model.onnx", "onnxruntime", "model.onnx"},
		{"model.json", "trees", "model.json"},
		{"model.txt", "trees", "model.txt"},
		{"model.bin", "", ""},
	} {
		dir := t.TempDir()
		vdir := filepath.Join(dir, "1")
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(vdir, tc.file), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		for range 20 { // the table is a map: no order may matter
			cfg := &inference.ModelConfig{}
			b, err := r.pickBackend(dir, cfg)
			if tc.wantBackend == "" {
				if err == nil {
					t.Fatalf("%s: picked backend %q, want none", tc.file, cfg.Backend)
				}
				break
			}
			if err != nil || cfg.Backend != tc.wantBackend {
				t.Fatalf("%s: picked %q (err %v), want %q", tc.file, cfg.Backend, err, tc.wantBackend)
			}
			if got := b.modelFile(vdir, cfg); got != tc.wantFile {
				t.Fatalf("%s: model file %q, want %q", tc.file, got, tc.wantFile)
			}
		}
	}
}
