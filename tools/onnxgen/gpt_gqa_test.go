package onnxgen_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// smallGPT is the model the SharedKV tests compare: small enough to write in
// a few milliseconds, with a head size (16) GroupQueryAttention accepts.
func smallGPT(shared bool) onnxgen.GPTConfig {
	return onnxgen.GPTConfig{Layers: 2, Heads: 2, Dim: 32, Vocab: 1000, MaxPos: 64, Seed: 5,
		LastLogitsOnly: true, HiddenStates: true, SharedKV: shared}
}

// sentinel fills the caches before the first step. GroupQueryAttention reads
// only each row's first len columns, so it never sees it; a column still
// holding it after a step was not written by that step, which only the
// shared-buffer path can leave so: with distinct buffers ONNX Runtime zeroes
// present before copying the past in.
const sentinel = 12345

// openGPT writes cfg's model to a test directory and opens it.
func openGPT(t *testing.T, cfg onnxgen.GPTConfig) *onnx.Session {
	t.Helper()
	needORT(t)
	p := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(p, onnxgen.GPT(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := rt.Open(p, onnx.SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatalf("opening the model of %+v: %v", cfg, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sharedGPT runs a SharedKV model through RunBuffers, binding each layer's
// key and value cache as both the past input and the present output.
type sharedGPT struct {
	t        *testing.T
	s        *onnx.Session
	cfg      onnxgen.GPTConfig
	capacity int64       // the caches' max_sequence_length
	cache    [][]float32 // per layer key then value, [batch, Heads, capacity, Dim/Heads]
	lens     []int       // each row's tokens in the cache
}

func newSharedGPT(t *testing.T, s *onnx.Session, cfg onnxgen.GPTConfig, batch, capacity int) *sharedGPT {
	g := &sharedGPT{t: t, s: s, cfg: cfg, capacity: int64(capacity), lens: make([]int, batch)}
	for range 2 * cfg.Layers {
		g.cache = append(g.cache, slices.Repeat([]float32{sentinel}, batch*cfg.Dim*capacity))
	}
	return g
}

// step runs ids (rows of equal length, right padded) at positions pos; grow
// says how many of each row's tokens are real. It returns each row's last
// real token's logits.
func (g *sharedGPT) step(ids, pos [][]int64, grow []int) [][]float32 {
	g.t.Helper()
	B, S := int64(len(ids)), int64(len(ids[0]))
	before := g.snapshot()
	next := make([]int, B)
	for r := range next {
		next[r] = g.lens[r] + grow[r]
	}
	in := []onnx.Buffer{
		{Name: "input_ids", Shape: []int64{B, S}, I64: slices.Concat(ids...)},
		{Name: "attention_mask", Shape: []int64{B, int64(slices.Max(next))}, I64: rightPaddedMask(next)},
		{Name: "position_ids", Shape: []int64{B, S}, I64: slices.Concat(pos...)},
	}
	V := int64(g.cfg.Vocab)
	logits := make([]float32, B*V)
	out := []onnx.Buffer{{Name: "logits", Shape: []int64{B, 1, V}, F32: logits}}
	kv := []int64{B, int64(g.cfg.Heads), g.capacity, int64(g.cfg.Dim / g.cfg.Heads)}
	for i, c := range g.cache {
		layer, name := strconv.Itoa(i/2), [2]string{"key", "value"}[i%2]
		in = append(in, onnx.Buffer{Name: "past_key_values." + layer + "." + name, Shape: kv, F32: c})
		out = append(out, onnx.Buffer{Name: "present." + layer + "." + name, Shape: kv, F32: c})
	}
	if err := g.s.RunBuffers(context.Background(), in, out); err != nil {
		g.t.Fatalf("RunBuffers(batch %d, sequence %d, lengths %v): %v", B, S, next, err)
	}
	g.checkInPlace(before, int(S), next)
	g.lens = next
	rows := make([][]float32, B)
	for r := range rows {
		rows[r] = logits[int64(r)*V : int64(r+1)*V]
	}
	return rows
}

func (g *sharedGPT) snapshot() [][]float32 {
	s := make([][]float32, len(g.cache))
	for i, c := range g.cache {
		s[i] = slices.Clone(c)
	}
	return s
}

// checkInPlace fails the test unless the step wrote only its own columns:
// row r's cache before its old length is unchanged (nothing was copied over
// it), the step's S columns from the old length changed, and the columns
// after them still hold what they held (the sentinel, or an older step's
// padding), which ONNX Runtime's copying path would have zeroed.
func (g *sharedGPT) checkInPlace(before [][]float32, S int, next []int) {
	g.t.Helper()
	Dh, L := g.cfg.Dim/g.cfg.Heads, int(g.capacity)
	for i, c := range g.cache {
		for r := range next {
			for h := range g.cfg.Heads {
				base := ((r*g.cfg.Heads + h) * L) * Dh
				old, end := g.lens[r]*Dh, (g.lens[r]+S)*Dh
				got, was := c[base:base+L*Dh], before[i][base:base+L*Dh]
				switch {
				case !slices.Equal(got[:old], was[:old]):
					g.t.Fatalf("cache %d row %d head %d: the past (columns < %d) changed", i, r, h, g.lens[r])
				case slices.Equal(got[old:end], was[old:end]):
					g.t.Fatalf("cache %d row %d head %d: columns [%d, %d) were not written", i, r, h, g.lens[r], end/Dh)
				case !slices.Equal(got[end:], was[end:]):
					g.t.Fatalf("cache %d row %d head %d: columns from %d changed: not updated in place", i, r, h, end/Dh)
				}
			}
		}
	}
}

// rightPaddedMask is attention_mask for rows of the given lengths: each
// row's ones, then zeros to the longest.
func rightPaddedMask(lens []int) []int64 {
	T := slices.Max(lens)
	m := make([]int64, 0, len(lens)*T)
	for _, n := range lens {
		m = append(append(m, ones(n)...), make([]int64, T-n)...)
	}
	return m
}

// sharedAndReference opens smallGPT both ways: the reference runs with the
// Optimum contract.
func sharedAndReference(t *testing.T) (shared *onnx.Session, ref *gpt) {
	cfg := smallGPT(false)
	return openGPT(t, smallGPT(true)), &gpt{t: t, s: openGPT(t, cfg), cfg: cfg}
}

// compareRows fails t if a row's logits differ from the reference model's
// full forward over that row's tokens by 1e-4 or more; it returns the
// largest difference.
func compareRows(t *testing.T, what string, ref *gpt, got [][]float32, rows [][]int64) float64 {
	t.Helper()
	worst := 0.0
	for r, ids := range rows {
		d := maxDiff(got[r], ref.alone(ids))
		worst = max(worst, d)
		if d >= 1e-4 {
			t.Errorf("%s, row %d (%d tokens): max |Δlogit| shared KV vs the Optimum graph = %g, want < 1e-4", what, r, len(ids), d)
		}
	}
	return worst
}

// Batch 1: a prompt, a chunk on that past (GroupQueryAttention's
// interactive path), then decode steps, each writing its keys and values
// into the one cache in place.
func TestGPTSharedKVBatch1(t *testing.T) {
	s, ref := sharedAndReference(t)
	g := newSharedGPT(t, s, smallGPT(true), 1, 32)
	ids := []int64{464, 207, 758, 218, 180, 625, 262, 169}
	got := g.step([][]int64{ids[:5]}, [][]int64{seq(0, 5)}, []int{5})
	worst := compareRows(t, "prompt of 5", ref, got, [][]int64{ids[:5]})
	got = g.step([][]int64{ids[5:]}, [][]int64{seq(5, 3)}, []int{3})
	worst = max(worst, compareRows(t, "chunk of 3 on a past of 5", ref, got, [][]int64{ids}))
	for k := range 6 {
		ids = append(ids, argmax(got[0]))
		got = g.step([][]int64{{ids[len(ids)-1]}}, [][]int64{{int64(len(ids) - 1)}}, []int{1})
		worst = max(worst, compareRows(t, "decode step "+strconv.Itoa(k), ref, got, [][]int64{ids}))
	}
	t.Logf("batch 1, prompt 5 + chunk 3 + 6 decode steps in place: max |Δlogit| vs Optimum graph = %.3g", worst)
}

// Batch 2, rows of 7 and 4 tokens: one right-padded prompt, then decode
// steps in which the rows' new tokens go to different columns.
func TestGPTSharedKVRowsOfDifferentLengths(t *testing.T) {
	s, ref := sharedAndReference(t)
	g := newSharedGPT(t, s, smallGPT(true), 2, 24)
	rows := [][]int64{{40, 842, 262, 110, 286, 257, 332}, {154, 995, 770, 318}}
	pad := len(rows[0]) - len(rows[1])
	// Padding tokens and positions are arbitrary: no real token attends to
	// them, and the decode steps overwrite their cache columns.
	ids := [][]int64{rows[0], append(slices.Clone(rows[1]), make([]int64, pad)...)}
	pos := [][]int64{seq(0, 7), append(seq(0, 4), make([]int64, pad)...)}
	got := g.step(ids, pos, []int{7, 4})
	worst := compareRows(t, "right-padded prompt", ref, got, rows)
	worst = max(worst, decodeRows(t, g, ref, rows, got, 5))
	t.Logf("rows of 7 and 4 tokens, one right-padded prompt + 5 decode steps in place: max |Δlogit| = %.3g", worst)
}

// Rows prefilled one at a time, each into its own row of the batch's cache
// (a batch-1 view of it), then decoded together: how an engine would admit
// a new request into a running batch without copying anyone's cache.
func TestGPTSharedKVPrefillIntoRowThenDecode(t *testing.T) {
	s, ref := sharedAndReference(t)
	cfg := smallGPT(true)
	const capacity = 24
	g := newSharedGPT(t, s, cfg, 2, capacity)
	rows := [][]int64{{15, 99, 120, 7, 300}, {640, 12, 8}}
	var got [][]float32
	for r, ids := range rows {
		one := newSharedGPT(t, s, cfg, 1, capacity)
		rowLen := cfg.Dim * capacity // one row of a [batch, Heads, capacity, Dh] cache
		for i := range one.cache {
			one.cache[i] = g.cache[i][r*rowLen : (r+1)*rowLen : (r+1)*rowLen]
		}
		got = append(got, one.step([][]int64{ids}, [][]int64{seq(0, len(ids))}, []int{len(ids)})[0])
		g.lens[r] = len(ids)
	}
	worst := compareRows(t, "prompts prefilled one row at a time", ref, got, rows)
	worst = max(worst, decodeRows(t, g, ref, rows, got, 4))
	t.Logf("rows of 5 and 3 tokens prefilled alone into the batch cache + 4 decode steps together: max |Δlogit| = %.3g", worst)
}

// decodeRows runs n greedy decode steps of every row of g together, from
// the logits last, comparing each row with the reference; it returns the
// largest difference.
func decodeRows(t *testing.T, g *sharedGPT, ref *gpt, rows [][]int64, last [][]float32, n int) float64 {
	t.Helper()
	worst := 0.0
	for k := range n {
		ids, pos := make([][]int64, len(rows)), make([][]int64, len(rows))
		for r := range rows {
			rows[r] = append(rows[r], argmax(last[r]))
			ids[r], pos[r] = []int64{rows[r][len(rows[r])-1]}, []int64{int64(len(rows[r]) - 1)}
		}
		last = g.step(ids, pos, slices.Repeat([]int{1}, len(rows)))
		worst = max(worst, compareRows(t, "decode step "+strconv.Itoa(k), ref, last, rows))
	}
	return worst
}

// With distinct past and present buffers the model still computes the same
// logits, through ONNX Runtime's copying path, which zeroes present first:
// what shows that the sentinel check above tells the two paths apart.
func TestGPTSharedKVDistinctBuffersCopy(t *testing.T) {
	s, ref := sharedAndReference(t)
	cfg := smallGPT(true)
	const capacity = 16
	ids := []int64{464, 207, 758, 218}
	Dh := int64(cfg.Dim / cfg.Heads)
	kv := []int64{1, int64(cfg.Heads), capacity, Dh}
	in := []onnx.Buffer{
		{Name: "input_ids", Shape: []int64{1, 4}, I64: ids},
		{Name: "attention_mask", Shape: []int64{1, 4}, I64: ones(4)},
		{Name: "position_ids", Shape: []int64{1, 4}, I64: seq(0, 4)},
	}
	logits := make([]float32, cfg.Vocab)
	out := []onnx.Buffer{{Name: "logits", Shape: []int64{1, 1, int64(cfg.Vocab)}, F32: logits}}
	var presents [][]float32
	for i := range 2 * cfg.Layers {
		layer, name := strconv.Itoa(i/2), [2]string{"key", "value"}[i%2]
		present := slices.Repeat([]float32{sentinel}, cfg.Dim*capacity)
		presents = append(presents, present)
		in = append(in, onnx.Buffer{Name: "past_key_values." + layer + "." + name, Shape: kv,
			F32: slices.Repeat([]float32{sentinel}, cfg.Dim*capacity)})
		out = append(out, onnx.Buffer{Name: "present." + layer + "." + name, Shape: kv, F32: present})
	}
	if err := s.RunBuffers(context.Background(), in, out); err != nil {
		t.Fatal(err)
	}
	compareRows(t, "prompt with distinct buffers", ref, [][]float32{logits}, [][]int64{ids})
	tail := presents[0][4*Dh : capacity*Dh] // head 0, columns after the prompt
	if slices.Contains(tail, sentinel) {
		t.Errorf("distinct present buffer kept the sentinel after the prompt's columns: %s", head(tail))
	}
	t.Logf("distinct buffers: present columns after the prompt = %s (zeroed: the copying path)", head(tail))
}

func head(f []float32) string {
	return strings.Trim(fmt.Sprint(f[:min(4, len(f))]), "[]") + " ..."
}

func TestGPTSharedKVValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  onnxgen.GPTConfig
		want string
	}{
		{onnxgen.GPTConfig{Layers: 1, Heads: 2, Dim: 8, Vocab: 5, MaxPos: 4, SharedKV: true},
			"SharedKV: GroupQueryAttention needs Dim/Heads to be a multiple of 8, got 4"},
		{onnxgen.GPTConfig{Layers: 1, Heads: 1, Dim: 8, Vocab: 5, MaxPos: 4, SharedKV: true, FusedAttention: true},
			"SharedKV: excludes FusedAttention"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want it to say %q", c.cfg, err, c.want)
		}
	}
	if err := smallGPT(true).Validate(); err != nil {
		t.Errorf("smallGPT(true): %v", err)
	}
}
