package native

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/backend/onnx/onnxtest"
	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/internal/llm/engine"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// rt is the process's one ONNX Runtime; nil when the library is missing.
var rt *onnx.Runtime

func TestMain(m *testing.M) { onnxtest.Main(m, &rt, onnxtest.Options{Leaks: true}) }

const gptConfig = `backend: "llm"
parameters { key: "tokenizer" value { string_value: "r50k_base" } }
parameters { key: "context_length" value { string_value: "128" } }
`

// gptRepo is a repository with model "gpt" at versions 1 and 2: small GPTs of
// different seeds, so their greedy answers differ.
func gptRepo(t *testing.T) string {
	t.Helper()
	if rt == nil {
		t.Skip("ONNX Runtime library not found: run `make ort` or set FERRY_ORT_LIB")
	}
	root := t.TempDir()
	for v := range 2 {
		writeGPT(t, root, v+1, smallGPT(uint64(v+1)))
	}
	if err := os.WriteFile(filepath.Join(root, "gpt", "config.pbtxt"), []byte(gptConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// smallGPT is a one-layer GPT of the given seed.
func smallGPT(seed uint64) []byte {
	return onnxgen.GPT(onnxgen.GPTConfig{Layers: 1, Heads: 2, Dim: 32, Vocab: 50257, MaxPos: 128, LastLogitsOnly: true, Seed: seed})
}

// writeGPT writes model as version v of "gpt" under root.
func writeGPT(t *testing.T, root string, v int, model []byte) {
	t.Helper()
	dir := filepath.Join(root, "gpt", fmt.Sprint(v))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), model, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startServer opens the repository's default versions and runs the server until the
// test ends.
func startServer(t *testing.T, root string) *Server {
	t.Helper()
	specs, err := Discover(root)
	if err != nil || len(specs) != 1 || specs[0].Version != 2 {
		t.Fatalf("Discover: %+v, %v; want gpt at version 2", specs, err)
	}
	base := engine.Config{Runtime: rt, Threads: 1}
	m, err := Open(specs[0], base)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(base, m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// greedy generates n tokens of version ver's greedy answer.
func greedy(ctx context.Context, s *Server, ver string, n int) (string, error) {
	p := llm.DefaultSampling()
	p.Temperature, p.MaxTokens, p.IgnoreEOS = 0, n, true
	var b strings.Builder
	_, err := s.Generate(ctx, &llm.Request{Model: "gpt", Version: ver, Kind: llm.Completion, Prompt: "Hello there", Sampling: p},
		func(d llm.Delta) error { b.WriteString(d.Text); return nil })
	return b.String(), err
}

// TestPinServesVersions: the default is the newest folder; Pin opens another version
// beside it, requests name either, an unknown or unpinned version is a 404 naming it,
// and a version unpinned while a request runs on it finishes that request first.
func TestPinServesVersions(t *testing.T) {
	s := startServer(t, gptRepo(t))
	ctx := t.Context()
	def, err := greedy(ctx, s, "", 8)
	if err != nil {
		t.Fatal(err)
	}
	if v2, err := greedy(ctx, s, "2", 8); err != nil || v2 != def {
		t.Errorf("version 2: %q, %v; want the default's %q", v2, err, def)
	}
	if _, err := greedy(ctx, s, "1", 8); llm.AsError(err) == nil || llm.AsError(err).Status != 404 || !strings.Contains(err.Error(), "version 1") {
		t.Errorf("version 1 before Pin: %v, want a 404 naming version 1", err)
	}
	if err := s.Pin(ctx, "gpt", []int64{1}); err != nil {
		t.Fatal(err)
	}
	v1, err := greedy(ctx, s, "1", 8)
	if err != nil || v1 == def {
		t.Fatalf("version 1 after Pin: %q, %v; want an answer unlike version 2's %q", v1, err, def)
	}
	if err := s.Pin(ctx, "gpt", []int64{1, 3}); err == nil || !strings.Contains(err.Error(), "version 3") {
		t.Errorf("Pin of a missing version 3: %v, want an error naming it", err)
	}
	if got, err := greedy(ctx, s, "1", 8); err != nil || got != v1 {
		t.Errorf("version 1 after a failed Pin: %q, %v; want it still served", got, err)
	}

	// A long request on version 1 while Pin lets version 1 go: it finishes whole.
	var wg sync.WaitGroup
	var long string
	var longErr error
	wg.Go(func() { long, longErr = greedy(ctx, s, "1", 100) })
	time.Sleep(50 * time.Millisecond) // let it start; if it has not, it gets a 404 and fails below
	if err := s.Pin(ctx, "gpt", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := greedy(ctx, s, "1", 4); llm.AsError(err) == nil || llm.AsError(err).Status != 404 {
		t.Errorf("version 1 after it was unpinned: %v, want a 404", err)
	}
	wg.Wait()
	if longErr != nil || !strings.HasPrefix(long, v1) {
		t.Errorf("request in flight on the unpinned version: %q, %v; want it finished, starting %q", long, longErr, v1)
	}
	if got, err := greedy(ctx, s, "", 8); err != nil || got != def {
		t.Errorf("the default after unpinning: %q, %v; want %q", got, err, def)
	}
	if err := s.Pin(ctx, "other", []int64{1}); llm.AsError(err) == nil {
		t.Errorf("Pin of an unknown model: %v, want a model-not-found error", err)
	}
}

// TestRescanMovesTheDefault: a newer version folder becomes the default at the next
// Rescan while clients keep sending requests naming no version, none of which fails;
// a folder that does not open leaves the default where it was until its file changes;
// the old default goes, a pinned version stays.
func TestRescanMovesTheDefault(t *testing.T) {
	root := gptRepo(t)
	s := startServer(t, root)
	ctx := t.Context()
	v2, err := greedy(ctx, s, "", 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, "gpt", []int64{1}); err != nil {
		t.Fatal(err)
	}
	v1, err := greedy(ctx, s, "1", 8)
	if err != nil {
		t.Fatal(err)
	}

	writeGPT(t, root, 3, []byte("not a model: a copy still being written"))
	s.Rescan(ctx)
	if got, err := greedy(ctx, s, "", 8); err != nil || got != v2 {
		t.Fatalf("default after a broken version 3: %q, %v; want version 2's %q", got, err, v2)
	}
	if v, _ := s.DefaultVersion("gpt"); v != "2" {
		t.Fatalf("DefaultVersion after a broken version 3: %s, want 2", v)
	}

	// Clients naming no version run throughout the move.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Int64
	var served atomic.Int64
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := greedy(ctx, s, "", 2); err != nil {
					failed.Add(1)
					t.Errorf("request during the move: %v", err)
				}
				served.Add(1)
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	writeGPT(t, root, 3, smallGPT(3))
	s.Rescan(ctx)
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 || served.Load() == 0 {
		t.Fatalf("%d of %d requests failed during the move", failed.Load(), served.Load())
	}

	if v, _ := s.DefaultVersion("gpt"); v != "3" {
		t.Errorf("DefaultVersion after version 3 was written whole: %s, want 3", v)
	}
	v3, err := greedy(ctx, s, "", 8)
	if err != nil || v3 == v2 {
		t.Errorf("default after the move: %q, %v; want version 3's answer, unlike version 2's %q", v3, err, v2)
	}
	if got, err := greedy(ctx, s, "3", 8); err != nil || got != v3 {
		t.Errorf("version 3 by name: %q, %v; want %q", got, err, v3)
	}
	if _, err := greedy(ctx, s, "2", 4); llm.AsError(err) == nil || llm.AsError(err).Status != 404 {
		t.Errorf("the old default after the move: %v, want a 404", err)
	}
	if got, err := greedy(ctx, s, "1", 8); err != nil || got != v1 {
		t.Errorf("pinned version 1 after the move: %q, %v; want %q", got, err, v1)
	}
	s.Rescan(ctx) // nothing newer: nothing changes
	if v, _ := s.DefaultVersion("gpt"); v != "3" {
		t.Errorf("DefaultVersion after an idle Rescan: %s, want 3", v)
	}
}
