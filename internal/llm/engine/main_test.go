package engine

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/backend/onnx/onnxtest"
	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// rt is the process's one ONNX Runtime; nil when the library is missing.
var rt *onnx.Runtime

func TestMain(m *testing.M) {
	onnxtest.Main(m, &rt, onnxtest.Options{Leaks: true, Cleanup: func() {
		if modelsDir != "" {
			os.RemoveAll(modelsDir)
		}
	}})
}

// tinyModel is the tiny GPT-2-shaped test model (onnxgen.TinyGPT: last-position logits
// and hidden states), generated once per run, or $FERRY_LLM_TINY.
func tinyModel(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FERRY_LLM_TINY"); p != "" {
		if rt == nil {
			t.Skip("ONNX Runtime library not found: run `make ort` or set FERRY_ORT_LIB")
		}
		return p
	}
	return generated(t, "tiny", onnxgen.TinyGPT())
}

// allPositionsModel is TinyGPT with logits for every position ([B,S,V]), as Optimum
// exports decoders.
func allPositionsModel(t testing.TB) string {
	cfg := onnxgen.TinyGPT()
	cfg.LastLogitsOnly = false
	return generated(t, "all-positions", cfg)
}

var (
	modelsMu  sync.Mutex
	modelsDir string                // removed by TestMain
	models    = map[string]string{} // name -> path, guarded by modelsMu
)

// generated writes the model cfg describes once per run and returns its path.
func generated(t testing.TB, name string, cfg onnxgen.GPTConfig) string {
	t.Helper()
	if rt == nil {
		t.Skip("ONNX Runtime library not found: run `make ort` or set FERRY_ORT_LIB")
	}
	modelsMu.Lock()
	defer modelsMu.Unlock()
	if p, ok := models[name]; ok {
		return p
	}
	if modelsDir == "" {
		dir, err := os.MkdirTemp("", "ferry-llm-engine-test-")
		if err != nil {
			t.Fatal(err)
		}
		modelsDir = dir
	}
	p := filepath.Join(modelsDir, name+".onnx")
	if err := os.WriteFile(p, onnxgen.GPT(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	models[name] = p
	return p
}

// start opens an engine on the model at path with cfg's knobs (Path, Runtime and
// Model are filled in; ContextLength defaults to 256), runs it, and stops and
// closes it when the test ends.
func start(t testing.TB, path string, cfg Config) *Engine {
	t.Helper()
	cfg.Path, cfg.Runtime, cfg.Model = path, rt, "tiny"
	if cfg.ContextLength == 0 {
		cfg.ContextLength = 256
	}
	switch cfg.Threads {
	case 0:
		cfg.Threads = 1 // tests share 2 cores with other packages' tests
	case -1:
		cfg.Threads = 0
	}
	if cfg.EOS == 0 {
		cfg.EOS = -1
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	e, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// greedy is greedy sampling of exactly n tokens.
func greedy(n int) llm.Sampling {
	p := llm.DefaultSampling()
	p.Temperature, p.MaxTokens, p.IgnoreEOS = 0, n, true
	return p
}

// gen runs one Generate and returns the emitted ids.
func gen(t testing.TB, e *Engine, prompt []int, p llm.Sampling) ([]int, Result) {
	t.Helper()
	var ids []int
	res, err := e.Generate(context.Background(), prompt, p, func(tok Token) error {
		ids = append(ids, tok.ID)
		return nil
	})
	if err != nil {
		t.Fatalf("Generate(%d-token prompt): %v", len(prompt), err)
	}
	if res.CompletionTokens != len(ids) {
		t.Fatalf("Result.CompletionTokens %d, emitted %d", res.CompletionTokens, len(ids))
	}
	return ids, res
}

// genAll runs every prompt at once, each on its own goroutine.
func genAll(t testing.TB, e *Engine, prompts [][]int, p func(i int) llm.Sampling) ([][]int, []Result) {
	t.Helper()
	outs, results, errs := make([][]int, len(prompts)), make([]Result, len(prompts)), make([]error, len(prompts))
	var wg sync.WaitGroup
	for i, prompt := range prompts {
		wg.Go(func() {
			results[i], errs[i] = e.Generate(context.Background(), prompt, p(i), func(tok Token) error {
				outs[i] = append(outs[i], tok.ID)
				return nil
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return outs, results
}

// prompts returns n deterministic prompts of the given lengths over the vocabulary.
func prompts(lengths ...int) [][]int {
	out := make([][]int, len(lengths))
	x := uint64(12345)
	for i, n := range lengths {
		out[i] = make([]int, n)
		for j := range out[i] {
			x = x*6364136223846793005 + 1442695040888963407
			out[i][j] = int(x>>33) % 50000
		}
	}
	return out
}

// poolEmpty fails t unless every KV block is back in the pool.
func poolEmpty(t testing.TB, e *Engine) {
	t.Helper()
	st, err := e.poolStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Used != 0 {
		t.Errorf("after every request ended, %d of %d blocks are still in use", st.Used, st.Total)
	}
}
