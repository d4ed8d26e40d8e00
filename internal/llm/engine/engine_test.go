package engine

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"testing"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/llm"
)

// recompute is the reference: greedy decoding that runs the whole sequence through
// the model at every step with an empty past, so no KV cache, block or batch is
// involved. For a shared-KV engine it runs the Optimum model of the same weights
// (sharedModel's twin), which takes an empty past.
func recompute(t testing.TB, e *Engine, prompt []int, n int) []int {
	t.Helper()
	if e.slots != nil {
		e = twinOf(t, e)
	}
	sh := e.shape
	seq := slices.Clone(prompt)
	for range n {
		S := len(seq)
		ids, pos, mask := make([]int64, S), make([]int64, S), make([]int64, S)
		for i, id := range seq {
			ids[i], pos[i], mask[i] = int64(id), int64(i), 1
		}
		s2 := []int64{1, int64(S)}
		in := []onnx.Buffer{{Name: "input_ids", Shape: s2, I64: ids}, {Name: "position_ids", Shape: s2, I64: pos}, {Name: "attention_mask", Shape: s2, I64: mask}}
		for l := range sh.layers {
			for _, kind := range []string{"key", "value"} {
				in = append(in, onnx.Buffer{Name: fmt.Sprintf("past_key_values.%d.%s", l, kind), Shape: []int64{1, int64(sh.heads), 0, int64(sh.headDim)}, F32: []float32{}})
			}
		}
		rows := S
		if sh.lastOnly {
			rows = 1
		}
		logits := make([]float32, rows*sh.vocab)
		out := []onnx.Buffer{{Name: "logits", Shape: []int64{1, int64(rows), int64(sh.vocab)}, F32: logits}}
		e.runMu.Lock()
		err := e.sess.RunBuffers(context.Background(), in, out)
		e.runMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		last := logits[(rows-1)*sh.vocab:]
		seq = append(seq, argmax(last))
	}
	return seq[len(prompt):]
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

var batchLengths = []int{3, 17, 40, 5, 64, 9, 33, 100}

// checkGreedy runs the 8 prompts at once on an engine with cfg and compares each
// output with the no-cache reference.
func checkGreedy(t testing.TB, path string, cfg Config, n int) *Engine {
	t.Helper()
	return checkOutputs(t, start(t, path, cfg), n)
}

// checkOutputs runs the 8 prompts at once on e and compares each output with the
// no-cache reference.
func checkOutputs(t testing.TB, e *Engine, n int) *Engine {
	t.Helper()
	ps := prompts(batchLengths...)
	outs, _ := genAll(t, e, ps, func(int) llm.Sampling { return greedy(n) })
	for i, p := range ps {
		if want := recompute(t, e, p, n); !slices.Equal(outs[i], want) {
			t.Errorf("prompt %d (%d tokens): batched greedy %v, want (full recompute) %v", i, len(p), outs[i], want)
		}
	}
	return e
}

func TestGreedyMatchesFullRecomputeAtBatchOne(t *testing.T) {
	e := start(t, tinyModel(t), Config{MaxSeqs: 1})
	for i, p := range prompts(batchLengths...) {
		got, res := gen(t, e, p, greedy(12))
		if want := recompute(t, e, p, 12); !slices.Equal(got, want) {
			t.Errorf("prompt %d: greedy %v, want %v", i, got, want)
		}
		if res.FinishReason != "length" || res.PromptTokens != len(p) {
			t.Errorf("prompt %d: result %+v, want finish length and %d prompt tokens", i, res, len(p))
		}
	}
}

func TestGreedySameInABatchOfEight(t *testing.T) {
	checkGreedy(t, tinyModel(t), Config{}, 16)
}

// Small token budgets cut the long prompts into chunks that share steps with
// decodes.
func TestGreedySameWithChunkedPrefill(t *testing.T) {
	checkGreedy(t, tinyModel(t), Config{MaxBatchedTokens: 24, BlockSize: 8}, 12)
}

func TestGreedySameWithPrefixCache(t *testing.T) {
	checkGreedy(t, tinyModel(t), Config{PrefixCache: true}, 16)
}

// A KV budget of one context for eight sequences forces preemption and recompute;
// outputs must not change and nothing may be emitted twice.
func TestPreemptionKeepsGreedyOutputs(t *testing.T) {
	for _, prefix := range []bool{false, true} {
		t.Run(fmt.Sprintf("prefix cache %v", prefix), func(t *testing.T) {
			m := NewMetrics()
			e := checkGreedy(t, tinyModel(t), Config{ContextLength: 160, CacheTokens: 160, BlockSize: 8, PrefixCache: prefix, Metrics: m}, 24)
			if n := counterValue(t, m, "vllm:num_preemptions_total", nil); n == 0 {
				t.Error("no preemption counted under a one-context KV budget")
			}
			poolEmpty(t, e)
		})
	}
}

// The model that returns logits for every position ([B,S,V]) decodes the same as
// the one that returns only the last ([B,1,V]): same weights, other output.
func TestAllPositionLogitsModel(t *testing.T) {
	checkGreedy(t, allPositionsModel(t), Config{MaxBatchedTokens: 48}, 8)
}

func TestPrefixCacheHitSkipsTheSharedBlocks(t *testing.T) {
	m := NewMetrics()
	e := start(t, tinyModel(t), Config{PrefixCache: true, Metrics: m})
	shared := prompts(50)[0]
	a := append(slices.Clone(shared), 1, 2, 3)
	b := append(slices.Clone(shared), 7, 8)
	outA, resA := gen(t, e, a, greedy(6))
	outB, resB := gen(t, e, b, greedy(6))
	if resA.CachedTokens != 0 || resB.CachedTokens != 48 {
		t.Fatalf("cached tokens %d then %d, want 0 then 48 (three 16-token blocks of the 50 shared)", resA.CachedTokens, resB.CachedTokens)
	}
	if want := recompute(t, e, b, 6); !slices.Equal(outB, want) {
		t.Fatalf("after a prefix hit: %v, want %v", outB, want)
	}
	again, resA2 := gen(t, e, a, greedy(6))
	if !slices.Equal(again, outA) || resA2.CachedTokens != 48 {
		t.Fatalf("repeat: %v with %d cached, want %v with 48", again, resA2.CachedTokens, outA)
	}
	if q, h := counterValue(t, m, "vllm:prefix_cache_queries", nil), counterValue(t, m, "vllm:prefix_cache_hits", nil); q != 53+52+53 || h != 96 {
		t.Fatalf("prefix cache queries %v, hits %v; want 158 and 96", q, h)
	}
}

// sharedPrefixPrompts are 12 prompts over two shared prefixes of 16 to 32 tokens,
// each with its own tail of 1 to 12 tokens.
func sharedPrefixPrompts() [][]int {
	base := prompts(40, 40)
	var ps [][]int
	for i := range 12 {
		p := slices.Clone(base[i%2][:16+8*(i%3)])
		ps = append(ps, append(p, prompts(1 + i)[0][:1+i]...))
	}
	return ps
}

// Many sequences over two shared prefixes, a pool of one context, small blocks and
// a small token budget: prefix hits, chunked prefill, preemption and readmission all
// at once, and every output still equals the no-cache reference.
func TestGreedySameUnderPressureWithSharedPrefixes(t *testing.T) {
	ps := sharedPrefixPrompts()
	m := NewMetrics()
	e := start(t, tinyModel(t), Config{ContextLength: 96, CacheTokens: 96, BlockSize: 4, MaxSeqs: 6, MaxBatchedTokens: 20, PrefixCache: true, Metrics: m})
	outs, _ := genAll(t, e, ps, func(int) llm.Sampling { return greedy(16) })
	for i, p := range ps {
		if want := recompute(t, e, p, 16); !slices.Equal(outs[i], want) {
			t.Errorf("prompt %d (%d tokens): %v, want %v", i, len(p), outs[i], want)
		}
	}
	if counterValue(t, m, "vllm:num_preemptions_total", nil) == 0 || counterValue(t, m, "vllm:prefix_cache_hits", nil) == 0 {
		t.Error("the test meant to cause preemptions and prefix hits and caused none")
	}
}

// TestSessionConfig: the engine's threads spin unless the model's config says
// otherwise, and the model's other entries pass through.
func TestSessionConfig(t *testing.T) {
	if got := sessionConfig(nil); !maps.Equal(got, map[string]string{"session.intra_op.allow_spinning": "1"}) {
		t.Errorf("default %v: want spinning on", got)
	}
	set := map[string]string{"session.intra_op.allow_spinning": "0", "session.intra_op.spin_duration_us": "100"}
	if got := sessionConfig(set); !maps.Equal(got, set) {
		t.Errorf("with %v: %v, want the model's entries", set, got)
	}
}

// An engine left to choose its threads takes every core the process may use: ONNX
// Runtime's own default counted one core on a 2-vCPU VM.
func TestIntraOpThreadsDefaultToEveryCore(t *testing.T) {
	if got := intraOpThreads(0); got != runtime.NumCPU() {
		t.Errorf("intraOpThreads(0) = %d, want runtime.NumCPU() = %d", got, runtime.NumCPU())
	}
	if got := intraOpThreads(3); got != 3 {
		t.Errorf("intraOpThreads(3) = %d, want 3", got)
	}
}
