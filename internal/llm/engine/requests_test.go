package engine

import (
	"context"
	"errors"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/tools/onnxgen"
)

func TestBadRequestsAreClientErrors(t *testing.T) {
	e := start(t, tinyModel(t), Config{ContextLength: 64})
	max10 := greedy(10)
	for _, tc := range []struct {
		name   string
		prompt []int
		p      llm.Sampling
		code   string
		msg    string
	}{
		{"a prompt as long as the context", prompts(64)[0], greedy(0), "context_length_exceeded", "maximum context length is 64 tokens"},
		{"a prompt plus max_tokens past the context", prompts(60)[0], max10, "context_length_exceeded", "you requested 70 tokens (60 in the messages, 10 in the completion)"},
		{"an empty prompt", nil, max10, "", "the prompt is empty"},
		{"a token outside the vocabulary", []int{1, 50257}, max10, "", "prompt token 1 is id 50257, outside the vocabulary [0, 50257)"},
		{"a negative token", []int{-1}, max10, "", "prompt token 0 is id -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Generate(context.Background(), tc.prompt, tc.p, func(Token) error { return nil })
			le := llm.AsError(err)
			if le == nil || le.Status != http.StatusBadRequest || le.Code != tc.code || !strings.Contains(le.Message, tc.msg) {
				t.Fatalf("Generate err = %#v, want a 400 with code %q mentioning %q", err, tc.code, tc.msg)
			}
		})
	}
}

func TestMaxTokensZeroRunsToTheContext(t *testing.T) {
	e := start(t, tinyModel(t), Config{ContextLength: 64})
	out, res := gen(t, e, prompts(60)[0], greedy(0))
	if len(out) != 4 || res.FinishReason != "length" {
		t.Fatalf("a 60-token prompt in a 64 context: %d tokens, finish %q; want 4, length", len(out), res.FinishReason)
	}
}

func TestStopTokenAndEOSEndTheSequence(t *testing.T) {
	prompt := prompts(12)[0]
	ref, _ := gen(t, start(t, tinyModel(t), Config{}), prompt, greedy(10))
	k := 4
	stopID := ref[k]
	want := ref[:slices.Index(ref, stopID)+1]

	e := start(t, tinyModel(t), Config{EOS: stopID})
	p := greedy(10)
	p.StopTokenIDs = []int{stopID}
	p.IgnoreEOS = false
	if out, res := gen(t, e, prompt, p); !slices.Equal(out, want) || res.FinishReason != "stop" {
		t.Errorf("stop token %d: %v finish %q, want %v finish stop", stopID, out, res.FinishReason, want)
	}
	p.StopTokenIDs = nil
	if out, res := gen(t, e, prompt, p); !slices.Equal(out, want) || res.FinishReason != "stop" {
		t.Errorf("EOS %d: %v finish %q, want %v finish stop", stopID, out, res.FinishReason, want)
	}
	p.IgnoreEOS = true
	if out, res := gen(t, e, prompt, p); !slices.Equal(out, ref) || res.FinishReason != "length" {
		t.Errorf("EOS %d ignored: %v finish %q, want %v finish length", stopID, out, res.FinishReason, ref)
	}
}

// The same seed draws the same tokens alone and inside a busy batch.
func TestSeedReproducesSamples(t *testing.T) {
	e := start(t, tinyModel(t), Config{})
	sampled := func(seed int64) llm.Sampling {
		p := llm.DefaultSampling()
		p.MaxTokens, p.IgnoreEOS, p.Seed = 16, true, &seed
		return p
	}
	prompt := prompts(20)[0]
	a, _ := gen(t, e, prompt, sampled(7))
	ps := append(prompts(5, 30, 9, 14), prompt)
	outs, _ := genAll(t, e, ps, func(i int) llm.Sampling { return sampled(int64(7 + 100*(4-i))) })
	if !slices.Equal(outs[4], a) {
		t.Fatalf("seed 7 alone %v, in a batch %v", a, outs[4])
	}
	if c, _ := gen(t, e, prompt, sampled(8)); slices.Equal(c, a) {
		t.Fatalf("seeds 7 and 8 drew the same 16 tokens %v", a)
	}
}

// A client that leaves (emit fails, or its context ends) frees its blocks before
// Generate returns, and the others' outputs do not change.
func TestCancellationFreesBlocks(t *testing.T) {
	m := NewMetrics()
	e := start(t, tinyModel(t), Config{Metrics: m})
	ps := prompts(30, 50, 70)
	want := recompute(t, e, ps[0], 20)
	var wg sync.WaitGroup
	var others []int
	wg.Go(func() { others, _ = gen(t, e, ps[0], greedy(20)) })
	errLeft := errors.New("client left")
	n := 0
	res, err := e.Generate(context.Background(), ps[1], greedy(50), func(Token) error {
		if n++; n == 3 {
			return errLeft
		}
		return nil
	})
	if !errors.Is(err, errLeft) || res.FinishReason != "abort" || res.CompletionTokens != 3 {
		t.Errorf("emit failing at the 3rd token: %+v, %v; want abort after 3 and the emit error", res, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	res, err = e.Generate(ctx, ps[2], greedy(50), func(Token) error { cancel(); return nil })
	if !errors.Is(err, context.Canceled) || res.FinishReason != "abort" {
		t.Errorf("context cancelled: %+v, %v; want abort and context.Canceled", res, err)
	}
	wg.Wait()
	if !slices.Equal(others, want) {
		t.Errorf("the request beside the cancelled ones: %v, want %v", others, want)
	}
	poolEmpty(t, e)
	if got := counterValue(t, m, "vllm:request_success_total", map[string]string{"finished_reason": "abort"}); got != 2 {
		t.Errorf("aborted requests counted %v, want 2", got)
	}
}

func TestGenerateAfterRunStopsIsUnavailable(t *testing.T) {
	e, err := Open(Config{Model: "tiny", Path: tinyModel(t), Runtime: rt, ContextLength: 64, Threads: 1, EOS: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatalf("Run on an ended context: %v", err)
	}
	if err := e.Run(context.Background()); err == nil {
		t.Fatal("a second Run succeeded")
	}
	_, err = e.Generate(context.Background(), []int{1, 2}, greedy(3), func(Token) error { return nil })
	if le := llm.AsError(err); le == nil || le.Status != http.StatusServiceUnavailable {
		t.Fatalf("Generate after Run returned: %v, want a 503", err)
	}
}

func TestOpenRejectsWhatIsNotADecoder(t *testing.T) {
	tinyModel(t)
	p := filepath.Join(t.TempDir(), "simple.onnx")
	if err := os.WriteFile(p, onnxgen.Simple(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{Model: "simple", Path: p, Runtime: rt, ContextLength: 64})
	if err == nil || !strings.Contains(err.Error(), `decoder contract: needs input "input_ids" INT64 [batch, seq], model has none`) {
		t.Fatalf("Open(simple) err = %v, want the decoder contract named", err)
	}
	_, err = Open(Config{Model: "tiny", Path: tinyModel(t), Runtime: rt, ContextLength: 1025})
	if err == nil || !strings.Contains(err.Error(), "ContextLength 1025: the model does not take position 1024") {
		t.Errorf("Open past the model's 1024 positions: err = %v, want the position named", err)
	}
	_, err = Open(Config{ContextLength: 64, CacheTokens: 10})
	for _, want := range []string{"Path: required", "Runtime: required", "CacheTokens: must hold at least one full context (64 tokens), got 10"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(bad config) err = %v, want it to say %q", err, want)
		}
	}
}

func TestEmbedIsNormalisedMeanOfHiddenStates(t *testing.T) {
	noHidden := onnxgen.TinyGPT()
	noHidden.HiddenStates = false
	e := start(t, generated(t, "no-hidden", noHidden), Config{})
	if _, err := e.Embed(context.Background(), [][]int{{1, 2}}); llm.AsError(err) == nil || llm.AsError(err).Status != 400 {
		t.Fatalf("Embed on a model without hidden_states: %v, want a 400", err)
	}
	e = start(t, tinyModel(t), Config{})
	ps := prompts(5, 17, 9)
	vecs, err := e.Embed(context.Background(), ps)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		one, err := e.Embed(context.Background(), [][]int{p})
		if err != nil {
			t.Fatal(err)
		}
		var norm, diff float64
		for k, x := range vecs[i] {
			norm += float64(x) * float64(x)
			diff = max(diff, math.Abs(float64(x-one[0][k])))
		}
		if math.Abs(norm-1) > 1e-4 || diff > 1e-4 {
			t.Errorf("input %d: |v|² = %v, max |batched - alone| = %v; want 1 and ~0", i, norm, diff)
		}
	}
}

// TestStopMidStep: the engine stopping (its context cancelled) while a step runs ends
// every sequence once. A step whose decode run finished sequences and whose prefill
// run then saw the context end returned before dropping the finished ones, and Run's
// exit finished them again: "close of closed channel" (seen once in make test).
func TestStopMidStep(t *testing.T) {
	path := tinyModel(t)
	for round := range 30 {
		cfg := Config{Path: path, Runtime: rt, Model: "tiny", ContextLength: 64, Threads: 1, EOS: -1}
		e, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				// Short answers finish in decode runs while longer prompts prefill beside them.
				prompt := make([]int, 2+(i*7+round)%40)
				e.Generate(context.Background(), prompt, greedy(1+i%3), func(Token) error { return nil }) //nolint:errcheck // stopped engines fail them
			})
		}
		time.Sleep(time.Duration(round%10) * time.Millisecond)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		wg.Wait()
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
