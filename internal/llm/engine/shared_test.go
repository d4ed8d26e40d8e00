package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// sharedModel is TinyGPT with attention by GroupQueryAttention on one in-place KV
// buffer per layer (onnxgen's SharedKV): the same weights as tinyModel, so the same
// logits within float rounding. lastOnly false gives logits for every position.
func sharedModel(t testing.TB, lastOnly bool) string {
	cfg := onnxgen.TinyGPT()
	cfg.SharedKV, cfg.LastLogitsOnly = true, lastOnly
	name := "shared"
	if !lastOnly {
		name = "shared-all-positions"
	}
	return generated(t, name, cfg)
}

var (
	twinsMu sync.Mutex
	twins   = map[*Engine]*Engine{} // a shared-KV engine -> an Optimum engine of the same weights
)

// startShared starts an engine on sharedModel and opens (without running) its
// Optimum twin, which recompute uses as the reference.
func startShared(t testing.TB, cfg Config, lastOnly bool) *Engine {
	t.Helper()
	e := start(t, sharedModel(t, lastOnly), cfg)
	if e.slots == nil {
		t.Fatal("the SharedKV model was not recognised as shared-KV")
	}
	twinPath := tinyModel(t)
	if !lastOnly {
		twinPath = allPositionsModel(t)
	}
	twin, err := Open(Config{Path: twinPath, Runtime: rt, Model: "twin", ContextLength: e.cfg.ContextLength, Threads: 1, EOS: -1})
	if err != nil {
		t.Fatal(err)
	}
	if twin.slots != nil {
		t.Fatal("the Optimum model was taken for a shared-KV one")
	}
	twinsMu.Lock()
	twins[e] = twin
	twinsMu.Unlock()
	t.Cleanup(func() {
		twinsMu.Lock()
		delete(twins, e)
		twinsMu.Unlock()
		twin.Close()
	})
	return e
}

func twinOf(t testing.TB, e *Engine) *Engine {
	twinsMu.Lock()
	defer twinsMu.Unlock()
	twin := twins[e]
	if twin == nil {
		t.Fatal("a shared-KV engine without a twin: start it with startShared")
	}
	return twin
}

// checkSharedGreedy is checkGreedy on the shared-KV model.
func checkSharedGreedy(t *testing.T, cfg Config, lastOnly bool, n int) *Engine {
	t.Helper()
	return checkOutputs(t, startShared(t, cfg, lastOnly), n)
}

// Eight prompts of different lengths at once: their first prompts batch over
// consecutive slots, then decode steps batch over rows of different lengths.
func TestSharedKVGreedySameInABatchOfEight(t *testing.T) {
	checkSharedGreedy(t, Config{}, true, 16)
}

func TestSharedKVGreedyAtBatchOne(t *testing.T) {
	e := startShared(t, Config{MaxSeqs: 1}, true)
	for i, p := range prompts(batchLengths...) {
		if got, _ := gen(t, e, p, greedy(12)); !slices.Equal(got, recompute(t, e, p, 12)) {
			t.Errorf("prompt %d: shared-KV greedy %v differs from the recompute", i, got)
		}
	}
}

// Small token budgets: chunks on a past run alone, beside decode runs whose
// throwaway rows cover the chunking slots.
func TestSharedKVGreedySameWithChunkedPrefill(t *testing.T) {
	checkSharedGreedy(t, Config{MaxBatchedTokens: 24, BlockSize: 8}, true, 12)
}

func TestSharedKVAllPositionLogits(t *testing.T) {
	checkSharedGreedy(t, Config{MaxBatchedTokens: 48}, false, 8)
}

// A prefix hit copies the cached blocks into the slot; the rest of the prompt runs
// as a chunk on that past.
func TestSharedKVPrefixCacheHit(t *testing.T) {
	e := startShared(t, Config{PrefixCache: true}, true)
	shared := prompts(50)[0]
	a, b := append(slices.Clone(shared), 1, 2, 3), append(slices.Clone(shared), 7, 8)
	gen(t, e, a, greedy(6))
	outB, resB := gen(t, e, b, greedy(6))
	if resB.CachedTokens != 48 {
		t.Fatalf("cached tokens %d, want 48", resB.CachedTokens)
	}
	if want := recompute(t, e, b, 6); !slices.Equal(outB, want) {
		t.Fatalf("after a prefix hit: %v, want %v", outB, want)
	}
}

// Many sequences over shared prefixes in a pool of one context: preemption frees
// slots mid-run, readmission takes them again, finished sequences leave holes that
// compaction fills; every output still equals the reference.
func TestSharedKVUnderPressure(t *testing.T) {
	for _, prefix := range []bool{false, true} {
		t.Run(fmt.Sprintf("prefix cache %v", prefix), func(t *testing.T) {
			ps := sharedPrefixPrompts()
			m := NewMetrics()
			e := startShared(t, Config{ContextLength: 96, CacheTokens: 96, BlockSize: 4, MaxSeqs: 6, MaxBatchedTokens: 20, PrefixCache: prefix, Metrics: m}, true)
			outs, _ := genAll(t, e, ps, func(i int) llm.Sampling { return greedy(8 + i%3*4) })
			for i, p := range ps {
				if want := recompute(t, e, p, 8+i%3*4); !slices.Equal(outs[i], want) {
					t.Errorf("prompt %d (%d tokens): %v, want %v", i, len(p), outs[i], want)
				}
			}
			if counterValue(t, m, "vllm:num_preemptions_total", nil) == 0 {
				t.Error("the test meant to cause preemptions and caused none")
			}
			poolEmpty(t, e)
		})
	}
}

func TestSharedKVEmbedMatchesOptimum(t *testing.T) {
	e := startShared(t, Config{}, true)
	ins := prompts(5, 12, 1)
	got, err := e.Embed(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	want, err := twinOf(t, e).Embed(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ins {
		for k := range got[i] {
			if d := math.Abs(float64(got[i][k] - want[i][k])); d > 1e-5 {
				t.Fatalf("input %d element %d: shared-KV %v, Optimum %v", i, k, got[i][k], want[i][k])
			}
		}
	}
}

// The decode run must come before a chunk or prompt run in the same step: a slot
// chunking inside the decode run's range gets a throwaway token at its next free
// column, which the chunk's run then overwrites; in the other order the throwaway
// would overwrite the chunk's first column. Compaction can move a chunking sequence
// below decoding ones, which the end-to-end tests do not force in a known step.
func TestSharedKVGroupsOrder(t *testing.T) {
	s := func(slot, computed int) *seq { return &seq{slot: slot, computed: computed} }
	rows := []row{{s(3, 0), 7}, {s(0, 10), 1}, {s(1, 4), 5}, {s(2, 9), 1}, {s(4, 0), 2}, {s(6, 0), 3}}
	got := groups(rows)
	want := []group{{0, 3, []int{1, 3}}, {1, 2, []int{2}}, {3, 5, []int{0, 4}}, {6, 7, []int{5}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("groups = %v, want %v (decode run first, then chunks alone, then prompts over consecutive slots)", got, want)
	}
}

// TestUnderChurn drives the engine as traffic does, for two seconds, with either KV
// layout (the slots of a shared-KV model, the gathered pasts of an Optimum one): 24
// clients send prompts over three shared prefixes with random lengths and token
// counts into a pool of 1.5 contexts, and a quarter of them leave after a random
// number of tokens. Preemption, prefix hits, chunks, compaction after every exit and
// cancellations mid-prefill all interleave. Every request that was not cancelled
// must equal the reference (the first 60 are compared), and the pool must be empty at
// the end.
func TestUnderChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of churn")
	}
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared kv %v", shared), func(t *testing.T) { churn(t, shared) })
	}
}

func churn(t *testing.T, shared bool) {
	m := NewMetrics()
	cfg := Config{ContextLength: 128, CacheTokens: 192, BlockSize: 4, MaxSeqs: 6, MaxBatchedTokens: 40, PrefixCache: true, Metrics: m}
	var e *Engine
	if shared {
		e = startShared(t, cfg, true)
	} else {
		e = start(t, tinyModel(t), cfg)
	}
	bases := prompts(60, 60, 60)
	type done struct {
		prompt []int
		n      int
		out    []int
	}
	var (
		mu       sync.Mutex
		finished []done
		left     int
	)
	deadline := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for c := range 24 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for time.Now().Before(deadline) {
				p := slices.Clone(bases[rng.IntN(3)][:rng.IntN(50)])
				for range 1 + rng.IntN(20) {
					p = append(p, rng.IntN(50000))
				}
				n, quit := 1+rng.IntN(24), -1
				if rng.IntN(4) == 0 {
					quit = rng.IntN(n)
				}
				var out []int
				errLeft := errors.New("left")
				_, err := e.Generate(context.Background(), p, greedy(n), func(tok Token) error {
					if len(out) == quit {
						return errLeft
					}
					out = append(out, tok.ID)
					return nil
				})
				mu.Lock()
				switch {
				case errors.Is(err, errLeft):
					left++
				case err != nil:
					t.Errorf("Generate: %v", err)
				default:
					finished = append(finished, done{p, n, out})
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Each reference is a full forward per token: the first 60 to finish are checked.
	for _, d := range finished[:min(len(finished), 60)] {
		if want := recompute(t, e, d.prompt, d.n); !slices.Equal(d.out, want) {
			t.Fatalf("a %d-token prompt: %v, want %v", len(d.prompt), d.out, want)
		}
	}
	poolEmpty(t, e)
	pre, hits := counterValue(t, m, "vllm:num_preemptions_total", nil), counterValue(t, m, "vllm:prefix_cache_hits", nil)
	t.Logf("%d requests finished, %d left early; %v preemptions, %v prefix-cache hit tokens", len(finished), left, pre, hits)
	if len(finished) < 50 || left == 0 || pre == 0 || hits == 0 {
		t.Errorf("requests %d, left %d, preemptions %v, hits %v: want more than 50 requests with each path taken", len(finished), left, pre, hits)
	}
}

// relayout keeps every occupied slot's columns when the capacity grows and shrinks.
func TestSharedKVRelayoutKeepsColumns(t *testing.T) {
	e := &Engine{cfg: Config{ContextLength: 512}, shape: shape{layers: 1, heads: 3, headDim: 2}}
	e.slots = newSlots(e.shape, 4, 512)
	lens := []int{50, 0, 37, 60}
	for slot, n := range lens {
		if n > 0 {
			e.slots.owner[slot] = &seq{slot: slot, computed: n}
		}
	}
	val := func(buf, slot, h, col, d int) float32 { return float32(buf*1e6 + slot*1e5 + h*1e4 + col*10 + d) }
	fill := func() {
		for buf, c := range e.slots.cache {
			for slot, n := range lens {
				for h := range 3 {
					for col := range n {
						for d := range 2 {
							c[e.slotAt(slot, h, col)+d] = val(buf, slot, h, col, d)
						}
					}
				}
			}
		}
	}
	check := func(when string) {
		t.Helper()
		for buf, c := range e.slots.cache {
			for slot, n := range lens {
				for h := range 3 {
					for col := range n {
						for d := range 2 {
							if got, want := c[e.slotAt(slot, h, col)+d], val(buf, slot, h, col, d); got != want {
								t.Fatalf("%s (capacity %d): buffer %d slot %d head %d column %d: %v, want %v", when, e.slots.capacity, buf, slot, h, col, got, want)
							}
						}
					}
				}
			}
		}
	}
	e.fit(64)
	fill()
	check("at 64")
	e.fit(300)
	if e.slots.capacity != 512 {
		t.Fatalf("capacity %d after fitting 300 columns, want 512", e.slots.capacity)
	}
	check("grown")
	e.shrink()
	if e.slots.capacity != 128 {
		t.Fatalf("capacity %d after shrinking with 60 columns in use, want 128", e.slots.capacity)
	}
	check("shrunk")
}
