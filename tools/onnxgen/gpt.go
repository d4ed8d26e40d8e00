package onnxgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
)

// GPTConfig shapes a GPT-2-style decoder written by [GPT] and [WriteGPT].
type GPTConfig struct {
	Layers, Heads, Dim, Vocab, MaxPos int
	// Seed seeds the random weights: one seed gives byte-identical models.
	Seed uint64
	// LastLogitsOnly makes logits [batch, 1, vocab]: only the last position,
	// sliced before the LM head, so a long prefill does not pay for a
	// [batch, sequence, vocab] product it would throw away.
	LastLogitsOnly bool
	// HiddenStates adds the output "hidden_states", float [batch, sequence,
	// Dim]: the final LayerNorm's output at every position (for embeddings).
	HiddenStates bool
	// FusedAttention computes each layer's attention with ONNX Runtime's
	// contrib operator com.microsoft.MultiHeadAttention instead of
	// MatMul/Softmax/Where: one kernel appends this step's keys and values
	// to the past and attends over them causally, under the padding mask,
	// without the unfused graph's Concat of the whole past into a new
	// tensor, its Transpose of K, and its [batch, heads, sequence, total]
	// score tensors. The model's inputs, outputs and weights are the same
	// as without it, and its logits agree to float error; it needs ONNX
	// Runtime (the operator is not standard ONNX). It is off by default: ONNX
	// Runtime already folds the unfused graph's K Transpose and scale into
	// one FusedMatMul, and both forms must copy the whole past into present
	// (the contract), so on GPT2Small the fused step was only 0-6% faster at
	// batch 8 and past 192-512, equal at past 128 (TestGPTDecodeStepCost).
	FusedAttention bool
	// SharedKV computes attention with ONNX Runtime's contrib operator
	// com.microsoft.GroupQueryAttention in the mode where each layer's past
	// and present key (and value) are one buffer, updated in place: a step
	// writes only its own tokens' keys and values, instead of copying the
	// whole past into present as the Optimum contract must. The weights are
	// those of the model without it for the same Seed, so logits can be
	// compared. It changes the contract (see [GPT] for Optimum's):
	//
	//   - past_key_values.{i}.key/.value and present.{i}.key/.value are
	//     float [batch_size, Heads, max_sequence_length, Dim/Heads]: a cache
	//     of fixed capacity, the same shape in and out, meant to be bound to
	//     the same memory (ONNX Runtime checks that the pointers are equal;
	//     with distinct buffers it zeroes present and copies the past in);
	//   - rows are left-aligned (right padded): row r's tokens sit in
	//     columns [0, len_r) of the cache, and a step's S tokens are written
	//     at columns [len_r - S, len_r), len_r being the row's length after
	//     the step;
	//   - attention_mask int64 [batch_size, total_sequence_length]: row r is
	//     len_r ones then zeros, total_sequence_length the longest row's
	//     length after this step. The graph derives GroupQueryAttention's
	//     seqlens_k (len_r - 1, int32) and total_sequence_length (int32) from
	//     it, as onnxruntime-genai's builder does; only its row sums and
	//     width matter;
	//   - input_ids and position_ids [batch_size, sequence_length] as before.
	//     A first prompt (no past: sequence_length = total_sequence_length)
	//     may batch rows of different lengths, right padded; a chunk on a
	//     past needs batch 1; a decode step (sequence_length 1) may batch
	//     rows of any lengths;
	//   - with LastLogitsOnly, logits are each row's last real token's:
	//     position min(sequence_length, len_r) - 1 of the step, not the last
	//     column, which is padding in a right-padded prompt.
	//
	// It excludes FusedAttention and needs Dim/Heads to be a multiple of 8
	// (the operator's limit) and ONNX Runtime.
	SharedKV bool
}

// gptOpset is the operator set GPT models import: LayerNormalization is a
// standard operator from opset 17.
const gptOpset = 17

// logitStd is the standard deviation of the logits. The final LayerNorm
// leaves each position's vector with unit variance, so an LM head of
// standard deviation logitStd/sqrt(Dim) gives logits of about this spread:
// wide enough that the top two logits are rarely within float error of each
// other, so greedy decoding picks the same token at batch 1 and batch N.
const logitStd = 3

// TinyGPT is the model for tests and the example repository: 2 layers, 4
// heads, width 128, GPT-2's vocabulary (50257, so the r50k tokenizer drives
// it) and 1024 positions, last-position logits and hidden states, seed 1.
// Its file is about 55 MB.
func TinyGPT() GPTConfig {
	return GPTConfig{Layers: 2, Heads: 4, Dim: 128, Vocab: 50257, MaxPos: 1024,
		LastLogitsOnly: true, HiddenStates: true, Seed: 1}
}

// GPT2Small has GPT-2 small's shape (12 layers, 12 heads, width 768, 50257
// tokens, 1024 positions), for benchmarks: its file is about 650 MB, so
// write it with [WriteGPT].
func GPT2Small() GPTConfig {
	return GPTConfig{Layers: 12, Heads: 12, Dim: 768, Vocab: 50257, MaxPos: 1024,
		LastLogitsOnly: true, HiddenStates: true, Seed: 1}
}

// Validate reports every field that cannot make a model.
func (c GPTConfig) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"Layers", c.Layers}, {"Heads", c.Heads}, {"Dim", c.Dim}, {"Vocab", c.Vocab}, {"MaxPos", c.MaxPos}} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be > 0, got %d", f.name, f.v))
		}
	}
	if c.Heads > 0 && c.Dim%c.Heads != 0 {
		errs = append(errs, fmt.Errorf("Dim: must be a multiple of Heads (%d), got %d", c.Heads, c.Dim))
	}
	errs = append(errs, c.validateSharedKV()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("onnxgen: GPT config: %w", err)
	}
	return nil
}

// GPT returns the model cfg describes, serialized; the same cfg always gives
// the same bytes. It panics if cfg is invalid (see [GPTConfig.Validate]).
//
// The model follows the Hugging Face Optimum decoder contract (GPT-2 with
// position ids), which Ferry's LLM engine relies on:
//
//   - inputs: input_ids int64 [batch_size, sequence_length]; attention_mask
//     int64 [batch_size, past_sequence_length + sequence_length];
//     position_ids int64 [batch_size, sequence_length]; and for each layer i
//     past_key_values.{i}.key and .value, float [batch_size, Heads,
//     past_sequence_length, Dim/Heads] (past_sequence_length may be 0);
//   - outputs: logits float [batch_size, sequence_length or 1, Vocab];
//     present.{i}.key and .value, float [batch_size, Heads,
//     past_sequence_length + sequence_length, Dim/Heads], the past with this
//     step's keys and values appended; hidden_states if asked.
//
// A position attends to the positions at or before it whose attention_mask
// is 1, so a left-padded row (mask 0 on its padding, its own position_ids)
// gets the logits it would get alone. Weights are random: token embeddings,
// attention and MLP weights N(0, 0.02²), position embeddings N(0, 0.01²),
// LayerNorms the identity, biases 0, and an LM head untied from the
// embeddings whose scale spreads the logits (standard deviation about 3).
func GPT(cfg GPTConfig) []byte {
	m, err := gptModel(cfg)
	if err != nil {
		panic(err)
	}
	if cfg.contrib() {
		return append(m.Bytes(), msOpsetImport()...)
	}
	return m.Bytes()
}

// WriteGPT writes the model [GPT] returns to w, generating the weights as it
// writes, so a GPT-2-small-sized model never sits in memory whole.
func WriteGPT(w io.Writer, cfg GPTConfig) error {
	m, err := gptModel(cfg)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := m.Encode(bw); err != nil {
		return err
	}
	if cfg.contrib() {
		if err := writeMSOpsetImport(bw); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// gptBuilder adds a GPT's nodes and weights to a model.
type gptBuilder struct {
	m       *Model
	cfg     GPTConfig
	weights uint64 // random weights added so far: each draws from its own stream
}

// gptModel builds the graph; the weights are generated when it is written.
func gptModel(cfg GPTConfig) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &gptBuilder{m: NewModel("gpt").Opset(gptOpset), cfg: cfg}
	b.m.DocString = fmt.Sprintf("random-weight GPT-2-style decoder: layers=%d heads=%d dim=%d vocab=%d max_pos=%d seed=%d",
		cfg.Layers, cfg.Heads, cfg.Dim, cfg.Vocab, cfg.MaxPos, cfg.Seed)
	if cfg.FusedAttention {
		b.m.DocString += " attention=com.microsoft.MultiHeadAttention"
	}
	if cfg.SharedKV {
		b.m.DocString += " attention=com.microsoft.GroupQueryAttention shared_kv=1"
	}
	b.declareIO()
	b.constants()
	D, V := int64(cfg.Dim), int64(cfg.Vocab)
	tok := b.node("Gather", "tok_emb", b.normal("wte", 0.02, V, D), "input_ids")
	pos := b.node("Gather", "pos_emb", b.normal("wpe", 0.01, int64(cfg.MaxPos), D), "position_ids")
	x := b.node("Add", "h0", tok, pos)
	mask := b.mask()
	for i := range cfg.Layers {
		x = b.block(i, x, mask)
	}
	b.head(x)
	return b.m, nil
}

// declareIO declares the graph's inputs and outputs, with Optimum's names for
// the symbolic dimensions.
func (b *gptBuilder) declareIO() {
	c := b.cfg
	batch, seq, past := Sym("batch_size"), Sym("sequence_length"), Sym("past_sequence_length")
	total := Sym("past_sequence_length + sequence_length")
	present := total
	if c.SharedKV {
		// One cache buffer in and out, whose capacity the caller picks.
		total, past = Sym("total_sequence_length"), Sym("max_sequence_length")
		present = past
	}
	H, Dh := Fixed(int64(c.Heads)), Fixed(int64(c.Dim/c.Heads))
	b.m.Input("input_ids", Int64, batch, seq).
		Input("attention_mask", Int64, batch, total).
		Input("position_ids", Int64, batch, seq)
	logitsSeq := seq
	if c.LastLogitsOnly {
		logitsSeq = Fixed(1)
	}
	b.m.Output("logits", Float, batch, logitsSeq, Fixed(int64(c.Vocab)))
	for i := range c.Layers {
		for _, kv := range []string{"key", "value"} {
			b.m.Input(pastName(i, kv), Float, batch, H, past, Dh)
			b.m.Output(presentName(i, kv), Float, batch, H, present, Dh)
		}
	}
	if c.HiddenStates {
		b.m.Output("hidden_states", Float, batch, seq, Fixed(int64(c.Dim)))
	}
}

func pastName(layer int, kv string) string {
	return "past_key_values." + strconv.Itoa(layer) + "." + kv
}
func presentName(layer int, kv string) string { return "present." + strconv.Itoa(layer) + "." + kv }

// constants adds the small constant tensors the graph's nodes share.
func (b *gptBuilder) constants() {
	D, H := int64(b.cfg.Dim), int64(b.cfg.Heads)
	m := b.m
	m.InitializerInt64("c_heads", []int64{4}, []int64{0, 0, H, D / H}).
		InitializerInt64("c_model", []int64{3}, []int64{0, 0, D}).
		InitializerInt64("c_split", []int64{3}, []int64{D, D, D}).
		InitializerInt64("c_i0", nil, []int64{0}).
		InitializerInt64("c_i1", nil, []int64{1}).
		InitializerInt64("c_ax0", []int64{1}, []int64{0}).
		InitializerInt64("c_ax1", []int64{1}, []int64{1}).
		InitializerInt64("c_ax01", []int64{2}, []int64{0, 1}).
		InitializerInt64("c_ax12", []int64{2}, []int64{1, 2}).
		InitializerFloat32("c_scale", nil, []float32{float32(1 / math.Sqrt(float64(D/H)))}).
		InitializerFloat32("c_neg", nil, []float32{-1e9}).
		InitializerFloat32("c_half", nil, []float32{0.5}).
		InitializerFloat32("c_one", nil, []float32{1}).
		InitializerFloat32("c_isqrt2", nil, []float32{float32(1 / math.Sqrt2)})
}

// mask builds the boolean attention mask [batch, 1, sequence, total]: query
// i (at absolute position past+i) may see key j if j <= past+i (causal) and
// attention_mask[j] is 1 (not padding).
func (b *gptBuilder) mask() string {
	if b.cfg.SharedKV {
		return b.gqaLengths()
	}
	if b.cfg.FusedAttention {
		// MultiHeadAttention applies causality itself (unidirectional) and
		// takes the padding mask as int32 [batch, total].
		b.m.Node("Cast", []string{"attention_mask"}, []string{"am_i32"}, AttrInt("to", int64(Int32)))
		return "am_i32"
	}
	b.node("Shape", "ids_shape", "input_ids")
	S := b.node("Gather", "S", "ids_shape", "c_i1")
	b.node("Shape", "am_shape", "attention_mask")
	T := b.node("Gather", "T", "am_shape", "c_i1")
	P := b.node("Sub", "P", T, S)
	qpos := b.node("Range", "qpos", P, T, "c_i1")
	kpos := b.node("Range", "kpos", "c_i0", T, "c_i1")
	causal := b.node("LessOrEqual", "causal",
		b.node("Unsqueeze", "kpos2", kpos, "c_ax0"), b.node("Unsqueeze", "qpos2", qpos, "c_ax1"))
	causal4 := b.node("Unsqueeze", "causal4", causal, "c_ax01")
	b.m.Node("Cast", []string{"attention_mask"}, []string{"am_bool"}, AttrInt("to", int64(Bool)))
	pad4 := b.node("Unsqueeze", "pad4", "am_bool", "c_ax12")
	return b.node("And", "mask", causal4, pad4)
}

// block adds transformer layer i (pre-LayerNorm attention and MLP, each with
// a residual connection) and returns its output.
func (b *gptBuilder) block(i int, x, mask string) string {
	p := "l" + strconv.Itoa(i) + "_"
	D := int64(b.cfg.Dim)
	x = b.node("Add", p+"res1", x, b.attention(i, b.layerNorm(p+"ln1", x), mask))

	f1 := b.linear(p+"f1", b.layerNorm(p+"ln2", x), D, 4*D)
	// GELU, exactly: x/2 · (1 + erf(x/√2)).
	erf := b.node("Erf", p+"erf", b.node("Mul", p+"f1_s", f1, "c_isqrt2"))
	gelu := b.node("Mul", p+"gelu", b.node("Mul", p+"f1_h", f1, "c_half"), b.node("Add", p+"erf1", erf, "c_one"))
	return b.node("Add", p+"res2", x, b.linear(p+"f2", gelu, 4*D, D))
}

// attention adds layer i's self-attention on x (its QKV projection, the
// attention over the past and x, and the output projection), writes the
// layer's present key and value, and returns the projected output. Both
// forms create the same weights in the same order, so a seed gives the same
// model either way.
func (b *gptBuilder) attention(i int, x, mask string) string {
	p := "l" + strconv.Itoa(i) + "_"
	D := int64(b.cfg.Dim)
	qkv := b.linear(p+"qkv", x, D, 3*D)
	if b.cfg.SharedKV {
		return b.linear(p+"o", b.gqaAttention(i, p, qkv), D, D)
	}
	b.m.Node("Split", []string{qkv, "c_split"}, []string{p + "q", p + "k", p + "v"}, AttrInt("axis", -1))
	var ctx string
	if b.cfg.FusedAttention {
		ctx = p + "ctx_m"
		// Inputs: query, key, value, bias, key_padding_mask,
		// attention_bias, past_key, past_value; "" leaves one out. The
		// scale defaults to 1/sqrt(head size), as the unfused graph's.
		b.m.contribNode("MultiHeadAttention",
			[]string{p + "q", p + "k", p + "v", "", mask, "", pastName(i, "key"), pastName(i, "value")},
			[]string{ctx, presentName(i, "key"), presentName(i, "value")},
			AttrInt("num_heads", int64(b.cfg.Heads)), AttrInt("unidirectional", 1),
			AttrFloat("mask_filter_value", -1e9))
	} else {
		ctx = b.unfusedAttention(i, p, mask)
	}
	return b.linear(p+"o", ctx, D, D)
}

// unfusedAttention attends with standard operators on layer i's split q, k
// and v, and returns the context [batch, sequence, Dim].
func (b *gptBuilder) unfusedAttention(i int, p, mask string) string {
	heads := map[string]string{}
	for _, t := range []string{"q", "k", "v"} {
		r := b.node("Reshape", p+t+"_r", p+t, "c_heads")
		heads[t] = b.transpose(p+t+"_h", r, 0, 2, 1, 3)
	}
	kAll := b.concatPast(presentName(i, "key"), pastName(i, "key"), heads["k"])
	vAll := b.concatPast(presentName(i, "value"), pastName(i, "value"), heads["v"])
	kt := b.transpose(p+"kt", kAll, 0, 1, 3, 2)
	scores := b.node("Mul", p+"scores", b.node("MatMul", p+"qk", heads["q"], kt), "c_scale")
	masked := b.node("Where", p+"masked", mask, scores, "c_neg")
	b.m.Node("Softmax", []string{masked}, []string{p + "probs"}, AttrInt("axis", -1))
	ctx := b.transpose(p+"ctx_t", b.node("MatMul", p+"ctx", p+"probs", vAll), 0, 2, 1, 3)
	return b.node("Reshape", p+"ctx_m", ctx, "c_model")
}

// head adds the final LayerNorm, the optional hidden_states output and the
// LM head.
func (b *gptBuilder) head(x string) {
	c := b.cfg
	lnf := b.layerNorm("lnf", x)
	if c.HiddenStates {
		lnf = b.node("Identity", "hidden_states", lnf)
	}
	if c.LastLogitsOnly && c.SharedKV {
		lnf = b.lastRealTokens(lnf)
	} else if c.LastLogitsOnly {
		b.m.InitializerInt64("c_m1", []int64{1}, []int64{-1}).
			InitializerInt64("c_big", []int64{1}, []int64{math.MaxInt64})
		lnf = b.node("Slice", "lnf_last", lnf, "c_m1", "c_big", "c_ax1")
	}
	w := b.normal("lm_head", logitStd/math.Sqrt(float64(c.Dim)), int64(c.Dim), int64(c.Vocab))
	b.node("MatMul", "logits", lnf, w)
}

// node adds a single-output node and returns the output's name.
func (b *gptBuilder) node(op, out string, inputs ...string) string {
	b.m.Node(op, inputs, []string{out})
	return out
}

func (b *gptBuilder) transpose(out, in string, perm ...int64) string {
	b.m.Node("Transpose", []string{in}, []string{out}, AttrInts("perm", perm...))
	return out
}

func (b *gptBuilder) concatPast(out, past, cur string) string {
	b.m.Node("Concat", []string{past, cur}, []string{out}, AttrInt("axis", 2))
	return out
}

// layerNorm normalises the last axis, with gain 1 and bias 0.
func (b *gptBuilder) layerNorm(name, x string) string {
	D := int64(b.cfg.Dim)
	g := b.constant(name+"_g", 1, D)
	bias := b.constant(name+"_b", 0, D)
	b.m.Node("LayerNormalization", []string{x, g, bias}, []string{name},
		AttrInt("axis", -1), AttrFloat("epsilon", 1e-5))
	return name
}

// linear adds x·W + bias with W [in, out] ~ N(0, 0.02²) and a zero bias.
func (b *gptBuilder) linear(name, x string, in, out int64) string {
	w := b.normal(name+"_w", 0.02, in, out)
	mm := b.node("MatMul", name+"_mm", x, w)
	return b.node("Add", name, mm, b.constant(name+"_b", 0, out))
}

// normal adds a weight of shape dims drawn from N(0, std²), from a PCG stream
// of its own (the seed, and the weight's index), so writing the model twice
// gives the same bytes.
func (b *gptBuilder) normal(name string, std float64, dims ...int64) string {
	seed, stream := b.cfg.Seed, b.weights
	b.weights++
	var rng *rand.Rand
	b.m.InitializerFloat32Func(name, dims, func(chunk []float32, start bool) {
		if start {
			rng = rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15+stream))
		}
		for i := range chunk {
			chunk[i] = float32(rng.NormFloat64() * std)
		}
	})
	return name
}

// constant adds a float tensor of shape dims with every element v.
func (b *gptBuilder) constant(name string, v float32, dims ...int64) string {
	b.m.InitializerFloat32Func(name, dims, func(chunk []float32, _ bool) {
		for i := range chunk {
			chunk[i] = v
		}
	})
	return name
}
