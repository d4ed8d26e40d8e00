package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/llm/kv"
	"github.com/ferryml/ferry/internal/tensor"
)

// Config configures an Engine. Model, Path, Runtime and ContextLength are required.
type Config struct {
	Model            string        // the model_name label
	Path             string        // model.onnx in the Optimum decoder layout
	Runtime          *onnx.Runtime // one per process; the caller owns it
	Threads          int           // ONNX Runtime intra-op threads, 0 = all cores
	ContextLength    int           // max positions (prompt + output); required
	BlockSize        int           // tokens per KV block; default 16
	CacheTokens      int           // KV budget in tokens; default ContextLength * MaxSeqs
	MaxSeqs          int           // sequences in one step (vLLM max_num_seqs); default 8
	MaxBatchedTokens int           // token budget per step (decodes first, then prefill chunks); default 512
	PrefixCache      bool
	EOS              int // -1: none
	Logger           *slog.Logger
	Metrics          *Metrics          // nil: not counted
	SessionConfig    map[string]string // ONNX Runtime session config entries, over the engine's (sessionConfig)
}

// withDefaults fills the zero fields and checks the rest, naming every bad field.
func (c Config) withDefaults() (Config, error) {
	if c.BlockSize == 0 {
		c.BlockSize = 16
	}
	if c.MaxSeqs == 0 {
		c.MaxSeqs = 8
	}
	if c.MaxBatchedTokens == 0 {
		c.MaxBatchedTokens = 512
	}
	if c.CacheTokens == 0 {
		c.CacheTokens = c.ContextLength * c.MaxSeqs
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Path == "" {
		bad("Path: required")
	}
	if c.Runtime == nil {
		bad("Runtime: required")
	}
	if c.ContextLength <= 0 {
		bad("ContextLength: must be > 0, got %d", c.ContextLength)
	}
	if c.Threads < 0 {
		bad("Threads: must be >= 0, got %d", c.Threads)
	}
	if c.BlockSize < 0 || c.MaxSeqs < 0 || c.MaxBatchedTokens < 0 {
		bad("BlockSize, MaxSeqs, MaxBatchedTokens: must be >= 0, got %d, %d, %d", c.BlockSize, c.MaxSeqs, c.MaxBatchedTokens)
	}
	// One sequence must always fit, or preemption could not make progress.
	if c.ContextLength > 0 && c.CacheTokens < c.ContextLength {
		bad("CacheTokens: must hold at least one full context (%d tokens), got %d", c.ContextLength, c.CacheTokens)
	}
	return c, errors.Join(errs...)
}

// shape is the model's geometry, read from its inputs and outputs.
type shape struct {
	layers, heads, headDim, vocab int
	lastOnly                      bool // logits are [B,1,V] rather than [B,S,V]
	hidden                        int  // width of "hidden_states" [B,S,D]; 0 when the model has none
	// pastNames and presentNames are the KV inputs and outputs, layer*2 + 0 (key) or 1 (value).
	pastNames, presentNames []string
}

// Engine runs one decoder model. Open it, start Run on a goroutine, then call
// Generate and Embed from any number of goroutines; Close after Run returns.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	sess  *onnx.Session
	shape shape
	kv    *kv.Manager // owned by Run
	slots *slots      // a shared-KV model's cache rows (slots.go); nil under the Optimum contract
	arena []float32   // the KV blocks' floats: [block][layer][k,v][head][slot][headDim]; owned by Run
	met   *modelMetrics

	// runMu serialises model runs: the step loop's and Embed's share the cores.
	runMu sync.Mutex

	submit  chan *seq          // Generate -> Run
	wake    chan struct{}      // a sequence was cancelled (cap 1)
	probe   chan chan kv.Stats // tests read the pool through the loop
	stopped chan struct{}      // closed when Run returns
	closed  chan struct{}      // closed by Close

	mu        sync.Mutex
	started   bool // Run was called; guarded by mu
	closeOnce sync.Once
	nextID    uint64 // guarded by mu
}

// Open loads the model and checks it against the decoder contract (names, ranks,
// heads, head size, vocabulary). It starts nothing: call Run.
func Open(cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("engine: config: %w", err)
	}
	io, err := cfg.Runtime.Inspect(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	sh, err := checkContract(io)
	if err != nil {
		return nil, fmt.Errorf("engine: %s: %w", cfg.Path, err)
	}
	numBlocks := (cfg.CacheTokens + cfg.BlockSize - 1) / cfg.BlockSize
	pool, err := kv.New(cfg.BlockSize, numBlocks, cfg.PrefixCache)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	ops, err := onnx.OpTypes(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	sess, err := cfg.Runtime.Open(cfg.Path, onnx.SessionOptions{IntraOpThreads: intraOpThreads(cfg.Threads), Config: sessionConfig(cfg.SessionConfig)})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e := &Engine{
		cfg: cfg, log: cfg.Logger.With("model", cfg.Model), sess: sess, shape: sh, kv: pool,
		arena:  make([]float32, numBlocks*sh.layers*2*sh.heads*cfg.BlockSize*sh.headDim),
		met:    cfg.Metrics.forModel(cfg.Model),
		submit: make(chan *seq, 4096), wake: make(chan struct{}, 1), probe: make(chan chan kv.Stats),
		stopped: make(chan struct{}), closed: make(chan struct{}),
	}
	if sharedKV(ops) {
		e.slots = newSlots(sh, cfg.MaxSeqs, cfg.ContextLength)
	}
	if err := e.probePosition(cfg.ContextLength - 1); err != nil {
		sess.Close()
		return nil, fmt.Errorf("engine: %s: ContextLength %d: the model does not take position %d (is its position table shorter?): %w",
			cfg.Path, cfg.ContextLength, cfg.ContextLength-1, err)
	}
	committed, took := e.commitKV() // once the model is known to open
	e.log.Info("llm engine opened", "layers", sh.layers, "heads", sh.heads, "head_dim", sh.headDim, "vocab", sh.vocab,
		"last_position_logits", sh.lastOnly, "shared_kv", e.slots != nil, "kv_blocks", numBlocks, "block_size", cfg.BlockSize, "prefix_cache", cfg.PrefixCache,
		"kv_bytes", committed, "kv_commit_ms", took.Milliseconds())
	return e, nil
}

// checkContract reads the model's geometry from its I/O and names the first way it
// departs from the decoder contract.
func checkContract(io onnx.IO) (shape, error) {
	ins, outs := map[string]onnx.TensorInfo{}, map[string]onnx.TensorInfo{}
	for _, t := range io.Inputs {
		ins[t.Name] = t
	}
	for _, t := range io.Outputs {
		outs[t.Name] = t
	}
	var sh shape
	for _, name := range []string{"input_ids", "attention_mask", "position_ids"} {
		t, ok := ins[name]
		if !ok || t.DType != tensor.Int64 || len(t.Shape) != 2 {
			return sh, fmt.Errorf("decoder contract: needs input %q INT64 [batch, seq], model has %v", name, describe(t, ok))
		}
	}
	logits, ok := outs["logits"]
	if !ok || logits.DType != tensor.FP32 || len(logits.Shape) != 3 || logits.Shape[2] <= 0 {
		return sh, fmt.Errorf("decoder contract: needs output \"logits\" FP32 [batch, seq, vocab] with a fixed vocab, model has %v", describe(logits, ok))
	}
	sh.vocab, sh.lastOnly = int(logits.Shape[2]), logits.Shape[1] == 1
	for ; ; sh.layers++ {
		pk := fmt.Sprintf("past_key_values.%d.key", sh.layers)
		if _, ok := ins[pk]; !ok {
			break
		}
		pv := fmt.Sprintf("past_key_values.%d.value", sh.layers)
		rk, rv := fmt.Sprintf("present.%d.key", sh.layers), fmt.Sprintf("present.%d.value", sh.layers)
		sh.pastNames, sh.presentNames = append(sh.pastNames, pk, pv), append(sh.presentNames, rk, rv)
		for _, name := range []string{pk, pv, rk, rv} {
			t, ok := ins[name]
			if !ok {
				t, ok = outs[name]
			}
			if !ok || t.DType != tensor.FP32 || len(t.Shape) != 4 || t.Shape[1] <= 0 || t.Shape[3] <= 0 {
				return sh, fmt.Errorf("decoder contract: needs %q FP32 [batch, heads, seq, head_dim] with fixed heads and head_dim, model has %v", name, describe(t, ok))
			}
			if sh.heads == 0 {
				sh.heads, sh.headDim = int(t.Shape[1]), int(t.Shape[3])
			} else if int(t.Shape[1]) != sh.heads || int(t.Shape[3]) != sh.headDim {
				return sh, fmt.Errorf("decoder contract: %q is %v, layer 0 has %d heads of %d", name, t.Shape, sh.heads, sh.headDim)
			}
		}
	}
	if sh.layers == 0 {
		return sh, errors.New("decoder contract: no past_key_values.0.key input (a model exported without past, or not a decoder)")
	}
	if h, ok := outs["hidden_states"]; ok {
		if h.DType != tensor.FP32 || len(h.Shape) != 3 || h.Shape[2] <= 0 {
			return sh, fmt.Errorf("decoder contract: output \"hidden_states\" must be FP32 [batch, seq, width], model has %v", describe(h, true))
		}
		sh.hidden = int(h.Shape[2])
	}
	return sh, nil
}

func describe(t onnx.TensorInfo, ok bool) string {
	if !ok {
		return "none"
	}
	return fmt.Sprintf("%s%v", t.DType, t.Shape)
}

// ContextLength is the most positions (prompt plus output) a sequence may have.
func (e *Engine) ContextLength() int { return e.cfg.ContextLength }

// Close releases the session. Call it after Run has returned; Generate and Embed
// calls still waiting return an error.
func (e *Engine) Close() error {
	var err error
	e.closeOnce.Do(func() {
		close(e.closed)
		e.met.release()
		e.runMu.Lock()
		defer e.runMu.Unlock()
		err = e.sess.Close()
	})
	return err
}

// poolStats asks the step loop for the KV pool's counters (tests use it; the loop
// answers between steps).
func (e *Engine) poolStats(ctx context.Context) (kv.Stats, error) {
	c := make(chan kv.Stats, 1)
	select {
	case e.probe <- c:
		return <-c, nil
	case <-ctx.Done():
		return kv.Stats{}, ctx.Err()
	case <-e.stopped:
		return kv.Stats{}, errors.New("engine: stopped")
	}
}

// probePosition runs one token at position pos, so that a ContextLength past the
// model's position table fails Open rather than every batch that reaches it.
func (e *Engine) probePosition(pos int) error {
	if e.slots != nil {
		return e.probeShared(pos)
	}
	var b batch
	b.past = growAll(nil, 2*e.shape.layers, 0)
	b.present = growAll(nil, 2*e.shape.layers, e.shape.heads*e.shape.headDim)
	b.ids, b.pos, b.mask = []int64{0}, []int64{int64(pos)}, []int64{1}
	b.logits = make([]float32, e.shape.vocab)
	b.bind(e.shape, 1, 0, 1, 1)
	return e.sess.RunBuffers(context.Background(), b.in, b.out)
}

// sessionConfig is ONNX Runtime's session config for the engine: set over its
// defaults. The pool threads spin while they wait for work (ONNX Runtime's own
// default, which V2 models turn off): a decode step is hundreds of short operators
// back to back, and waking parked threads between them left a fifth of two cores
// idle. On GPT-2 small, 2 cores, spinning took single-stream TPOT from 15-16 ms to
// 11-15 ms and eight streams from 227-239 to 258-285 tokens/s (BenchmarkEngine). A
// model that shares its cores with busy V2 models may turn it off with the
// parameter session.intra_op.allow_spinning: "0".
func sessionConfig(set map[string]string) map[string]string {
	out := map[string]string{"session.intra_op.allow_spinning": "1"}
	maps.Copy(out, set)
	return out
}

// intraOpThreads is the session's intra-op thread count for Config.Threads: all cores
// the process may run on when it is 0, counted here rather than left to ONNX Runtime,
// whose own default (0) is its count of physical cores and can be one where the machine
// has two: on a 2-vCPU VM (ONNX Runtime 1.30) it ran GPT-2 small on one thread, 34
// tokens/s for one stream and 119 for eight, against 60 and 205-214 with two.
func intraOpThreads(threads int) int {
	if threads == 0 {
		return runtime.NumCPU()
	}
	return threads
}

// commitKV makes the KV cache's memory (the blocks' arena and a shared-KV model's
// slots) the process's at open, as vLLM and llama.cpp allocate theirs: a machine
// without that memory fails at load rather than under traffic, and requests do not
// pay for faulting it in. They did: Go's fresh allocation is pages the kernel maps
// on first write, and on a 2-vCPU VM a first write cost ~10-20 µs a page, so every
// token's new KV column (73 KB for GPT-2 small) stalled its step by ~0.4 ms; a
// batch-8 step spent ~6 ms outside ONNX Runtime until the cache had been through
// once, against ~0.7 ms committed. It returns the bytes and the time it took.
func (e *Engine) commitKV() (int, time.Duration) {
	t0 := time.Now()
	bufs := [][]float32{e.arena}
	if e.slots != nil {
		bufs = append(bufs, e.slots.cache...)
	}
	n := 0
	for _, b := range bufs {
		n += 4 * len(b)
	}
	commit(bufs...)
	return n, time.Since(t0)
}

// commit writes to every page of bufs, split over the cores (faults on different
// pages proceed in parallel).
func commit(bufs ...[]float32) {
	stride, n := max(os.Getpagesize()/4, 1), runtime.NumCPU()
	var wg sync.WaitGroup
	for _, buf := range bufs {
		per := (len(buf) + n - 1) / n
		for lo := 0; lo < len(buf); lo += per {
			part := buf[lo:min(lo+per, len(buf))]
			wg.Go(func() {
				for i := 0; i < len(part); i += stride {
					part[i] = 0
				}
			})
		}
	}
	wg.Wait()
}
