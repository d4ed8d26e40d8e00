package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// repoFiles is files(), generated once for the tests: tinygpt's weights take a while.
var repoFiles = sync.OnceValue(files)

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

	want := repoFiles()
	var log bytes.Buffer
	if err := generate(root, want, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), fmt.Sprintf("%d file(s) changed", len(want)+1)) { // and the stale config
		t.Errorf("first run:\n%s", log.String())
	}
	for rel, data := range want {
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
	if err := generate(root, want, &log); err != nil {
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
	if err := generate(root, want, &log); err != nil {
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

// The example repository's tinygpt is the LLM lane's: backend "llm", GPT-2's
// tokenizer, and onnxgen's TinyGPT.
func TestTinyGPTInRepository(t *testing.T) {
	want := repoFiles()
	cfg := string(want["tinygpt/config.pbtxt"])
	for _, line := range []string{
		`name: "tinygpt"`, `backend: "llm"`,
		`parameters { key: "tokenizer" value { string_value: "r50k_base" } }`,
		`parameters { key: "chat_template" value { string_value: "plain" } }`,
		`parameters { key: "context_length" value { string_value: "1024" } }`,
	} {
		if !strings.Contains(cfg, line+"\n") {
			t.Errorf("tinygpt/config.pbtxt lacks the line %s:\n%s", line, cfg)
		}
	}
	// The model's doc string names its shape (generating it again to compare would
	// double the test's time under the race detector).
	if !bytes.Contains(want["tinygpt/1/model.onnx"], []byte("layers=2 heads=4 dim=128 vocab=50257 max_pos=1024 seed=1")) {
		t.Error("tinygpt/1/model.onnx is not onnxgen.TinyGPT's model")
	}
}

// writeGPT (behind -gpt2small) streams a model and its config, and a second
// run rewrites nothing. A small config stands in for GPT-2 small's 650 MB.
func TestWriteGPTIdempotent(t *testing.T) {
	dir := t.TempDir()
	cfg := onnxgen.GPTConfig{Layers: 1, Heads: 2, Dim: 8, Vocab: 300, MaxPos: 16, Seed: 1, LastLogitsOnly: true}
	var log bytes.Buffer
	if err := writeGPT(dir, "small", cfg, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "2 file(s) changed") {
		t.Errorf("first run:\n%s", log.String())
	}
	got, err := os.ReadFile(filepath.Join(dir, "small", "1", "model.onnx"))
	if err != nil || !bytes.Equal(got, onnxgen.GPT(cfg)) {
		t.Errorf("model.onnx differs from onnxgen.GPT (err %v)", err)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "small", "config.pbtxt"))
	if err != nil || !strings.HasPrefix(string(conf), `name: "small"`+"\n"+`backend: "llm"`) {
		t.Errorf("config.pbtxt = %q (err %v)", conf, err)
	}
	log.Reset()
	if err := writeGPT(dir, "small", cfg, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), " 0 file(s) changed") {
		t.Errorf("second run:\n%s", log.String())
	}
	// Another seed, same size: the streamed comparison sees the difference.
	cfg.Seed++
	log.Reset()
	if err := writeGPT(dir, "small", cfg, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), " 1 file(s) changed") {
		t.Errorf("run with another seed:\n%s", log.String())
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "small", "1"))
	if len(entries) != 1 {
		t.Errorf("files left in small/1: %v", entries)
	}
	if err := writeGPT(dir, "bad", onnxgen.GPTConfig{}, &log); err == nil {
		t.Error("writeGPT accepted an empty config")
	}
}
