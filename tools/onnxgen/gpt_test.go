package onnxgen_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ferryml/ferry/internal/backend/onnx"
	ft "github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// tinyGPTDir holds TinyGPT's files once a test has written them; TestMain
// removes it.
var tinyGPTDir string

var makeTinyGPTDir = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "onnxgen-gpt-")
	tinyGPTDir = dir
	return dir, err
})

// attentionForms are the two ways a GPT can compute attention; the tests that
// check a GPT's outputs run on both.
var attentionForms = []struct {
	name  string
	fused bool
}{{"unfused", false}, {"fused", true}}

// tinyGPTs writes TinyGPT with each attention form, once per test binary:
// generating its 50 MB takes about a second.
var tinyGPTs = map[bool]func() (string, error){false: tinyGPTWriter(false), true: tinyGPTWriter(true)}

func tinyGPTWriter(fused bool) func() (string, error) {
	return sync.OnceValues(func() (string, error) {
		dir, err := makeTinyGPTDir()
		if err != nil {
			return "", err
		}
		p := filepath.Join(dir, "model-fused-"+strconv.FormatBool(fused)+".onnx")
		return p, os.WriteFile(p, onnxgen.GPT(tinyGPT(fused)), 0o644)
	})
}

func tinyGPT(fused bool) onnxgen.GPTConfig {
	cfg := onnxgen.TinyGPT()
	cfg.FusedAttention = fused
	return cfg
}

// gpt runs a GPT model through Ferry's ONNX backend.
type gpt struct {
	t   *testing.T
	s   *onnx.Session
	cfg onnxgen.GPTConfig
}

func openTinyGPT(t *testing.T, fused bool) *gpt {
	t.Helper()
	needORT(t)
	p, err := tinyGPTs[fused]()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.Open(p, onnx.SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &gpt{t: t, s: s, cfg: tinyGPT(fused)}
}

// eachAttention runs test on TinyGPT with each attention form.
func eachAttention(t *testing.T, test func(t *testing.T, g *gpt)) {
	for _, f := range attentionForms {
		t.Run(f.name, func(t *testing.T) { test(t, openTinyGPT(t, f.fused)) })
	}
}

// step is one forward pass's result.
type step struct {
	logits  [][]float32  // per row: the last position's logits
	present []*ft.Tensor // present.{i}.key/value in layer order, the next step's past
	out     map[string]*ft.Tensor
}

// forward runs ids (rows of equal length) with the given attention mask and
// position ids, on past (nil: a zero-length past).
func (g *gpt) forward(ids, mask, pos [][]int64, past []*ft.Tensor) step {
	g.t.Helper()
	B, S := int64(len(ids)), int64(len(ids[0]))
	in := []*ft.Tensor{
		int64s("input_ids", ids), int64s("attention_mask", mask), int64s("position_ids", pos),
	}
	H, Dh := int64(g.cfg.Heads), int64(g.cfg.Dim/g.cfg.Heads)
	want := []string{"logits", "hidden_states"}
	for i := range g.cfg.Layers {
		for j, kv := range []string{"key", "value"} {
			p := &ft.Tensor{DType: ft.FP32, Shape: ft.Shape{B, H, 0, Dh}, Data: []byte{}}
			if past != nil {
				p = past[2*i+j]
			}
			p.Name = "past_key_values." + strconv.Itoa(i) + "." + kv
			in = append(in, p)
			want = append(want, "present."+strconv.Itoa(i)+"."+kv)
		}
	}
	outs, err := g.s.Execute(context.Background(), in, want)
	if err != nil {
		g.t.Fatalf("Execute(batch %d, sequence %d): %v", B, S, err)
	}
	st := step{out: map[string]*ft.Tensor{}, present: outs[2:]}
	for _, o := range outs {
		st.out[o.Name] = o
	}
	lg := outs[0]
	if !lg.Shape.Equal(ft.Shape{B, 1, int64(g.cfg.Vocab)}) {
		g.t.Fatalf("logits shape %v, want [%d 1 %d]", lg.Shape, B, g.cfg.Vocab)
	}
	all := floats(lg.Data)
	for r := range B {
		st.logits = append(st.logits, all[r*int64(g.cfg.Vocab):(r+1)*int64(g.cfg.Vocab)])
	}
	return st
}

// alone runs one unpadded sequence from position 0 with no past and returns
// its last logits.
func (g *gpt) alone(ids []int64) []float32 {
	return g.forward([][]int64{ids}, [][]int64{ones(len(ids))}, [][]int64{seq(0, len(ids))}, nil).logits[0]
}

func TestGPTIncrementalMatchesFull(t *testing.T) {
	eachAttention(t, func(t *testing.T, g *gpt) {
		ids := []int64{464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13, 50256, 17}
		const prefill = 5
		st := g.forward([][]int64{ids[:prefill]}, [][]int64{ones(prefill)}, [][]int64{seq(0, prefill)}, nil)
		worst := maxDiff(st.logits[0], g.alone(ids[:prefill]))
		for k := prefill; k < len(ids); k++ {
			st = g.forward([][]int64{{ids[k]}}, [][]int64{ones(k + 1)}, [][]int64{{int64(k)}}, st.present)
			for _, p := range st.present {
				if p.Shape[2] != int64(k+1) {
					t.Fatalf("step %d: %s shape %v, want past+1 = %d positions", k, p.Name, p.Shape, k+1)
				}
			}
			d := maxDiff(st.logits[0], g.alone(ids[:k+1]))
			worst = max(worst, d)
			if d >= 1e-4 {
				t.Errorf("decode step at position %d: max |Δlogit| vs a full forward = %g, want < 1e-4", k, d)
			}
		}
		t.Logf("prefill %d + %d decode steps: max |Δlogit| incremental vs full = %.3g", prefill, len(ids)-prefill, worst)
	})
}

// A chunk of several tokens on a past (chunked prefill, a prefix-cache hit) sees the
// past and, causally, itself.
func TestGPTChunkOnPast(t *testing.T) {
	eachAttention(t, func(t *testing.T, g *gpt) {
		ids := []int64{464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290}
		st := g.forward([][]int64{ids[:4]}, [][]int64{ones(4)}, [][]int64{seq(0, 4)}, nil)
		st = g.forward([][]int64{ids[4:]}, [][]int64{ones(len(ids))}, [][]int64{seq(4, len(ids)-4)}, st.present)
		if got := st.out["hidden_states"].Shape; !got.Equal(ft.Shape{1, int64(len(ids) - 4), int64(g.cfg.Dim)}) {
			t.Errorf("hidden_states shape %v, want the chunk's %d positions", got, len(ids)-4)
		}
		if d := maxDiff(st.logits[0], g.alone(ids)); d >= 1e-4 {
			t.Errorf("4 tokens, then 5 on that past: max |Δlogit| vs a full forward = %g, want < 1e-4", d)
		} else {
			t.Logf("chunk of 5 on a past of 4: max |Δlogit| vs full = %.3g", d)
		}
	})
}

func TestGPTLeftPaddedBatch(t *testing.T) {
	eachAttention(t, func(t *testing.T, g *gpt) {
		a := []int64{40, 1842, 262, 1110, 286, 257, 3332, 11, 290, 314, 588, 340}
		b := []int64{15496, 995, 0, 770, 318, 257, 1332}
		pad := len(a) - len(b)
		ids := [][]int64{a, append(make([]int64, pad), b...)}
		mask := [][]int64{ones(len(a)), append(make([]int64, pad), ones(len(b))...)}
		// Padding positions take position 1 as Hugging Face's generate does;
		// the mask hides them, so any valid position would do.
		pos := [][]int64{seq(0, len(a)), append(slices.Repeat([]int64{1}, pad), seq(0, len(b))...)}
		st := g.forward(ids, mask, pos, nil)
		worst := 0.0
		check := func(what string, got, want []float32) {
			d := maxDiff(got, want)
			worst = max(worst, d)
			if d >= 1e-4 {
				t.Errorf("%s: max |Δlogit| batched vs alone = %g, want < 1e-4", what, d)
			}
		}
		check("prefill, long row", st.logits[0], g.alone(a))
		check("prefill, padded row", st.logits[1], g.alone(b))

		// Decode three greedy steps in the batch, each row's mask growing by one.
		for k := range 3 {
			next := []int64{argmax(st.logits[0]), argmax(st.logits[1])}
			a, b = append(a, next[0]), append(b, next[1])
			mask[0], mask[1] = append(mask[0], 1), append(mask[1], 1)
			st = g.forward([][]int64{{next[0]}, {next[1]}}, mask,
				[][]int64{{int64(len(a) - 1)}, {int64(len(b) - 1)}}, st.present)
			check("decode step "+strconv.Itoa(k)+", long row", st.logits[0], g.alone(a))
			check("decode step "+strconv.Itoa(k)+", padded row", st.logits[1], g.alone(b))
		}
		t.Logf("rows of %d and %d tokens, left padded, prefill + 3 decode steps: max |Δlogit| = %.3g", len(a)-3, len(b)-3, worst)
	})
}

// A zero-length past is a valid first step; the outputs have the contract's
// shapes, and the logits are spread wide enough for stable greedy decoding.
func TestGPTZeroLengthPastAndOutputs(t *testing.T) {
	eachAttention(t, func(t *testing.T, g *gpt) {
		ids := []int64{464, 2068, 7586, 21831, 18045, 625}
		st := g.forward([][]int64{ids}, [][]int64{ones(len(ids))}, [][]int64{seq(0, len(ids))}, nil)
		H, Dh, S := int64(g.cfg.Heads), int64(g.cfg.Dim/g.cfg.Heads), int64(len(ids))
		for _, p := range st.present {
			if !p.Shape.Equal(ft.Shape{1, H, S, Dh}) {
				t.Errorf("%s shape %v, want [1 %d %d %d]", p.Name, p.Shape, H, S, Dh)
			}
		}
		if hs := st.out["hidden_states"]; !hs.Shape.Equal(ft.Shape{1, S, int64(g.cfg.Dim)}) {
			t.Errorf("hidden_states shape %v, want [1 %d %d]", hs.Shape, S, g.cfg.Dim)
		}
		l := st.logits[0]
		var sum, sq float64
		for _, v := range l {
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		mean := sum / float64(len(l))
		std := math.Sqrt(sq/float64(len(l)) - mean*mean)
		top := slices.Clone(l)
		slices.Sort(top)
		gap := top[len(top)-1] - top[len(top)-2]
		t.Logf("logits: std %.2f, top-1 minus top-2 %.3f", std, gap)
		if std < 2 || std > 4 {
			t.Errorf("logits std = %.2f, want 2..4", std)
		}
	})
}

func TestGPTDeterministicAndStreamed(t *testing.T) {
	cfg := onnxgen.GPTConfig{Layers: 1, Heads: 2, Dim: 8, Vocab: 50, MaxPos: 16, Seed: 3, LastLogitsOnly: true}
	a, b := onnxgen.GPT(cfg), onnxgen.GPT(cfg)
	if !bytes.Equal(a, b) {
		t.Error("GPT(cfg) differs between calls")
	}
	var w bytes.Buffer
	if err := onnxgen.WriteGPT(&w, cfg); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Bytes(), a) {
		t.Error("WriteGPT writes other bytes than GPT returns")
	}
	cfg.Seed++
	if bytes.Equal(onnxgen.GPT(cfg), a) {
		t.Error("seeds 3 and 4 give the same model")
	}
}

func TestGPTConfigValidate(t *testing.T) {
	bad := onnxgen.GPTConfig{Layers: 0, Heads: 3, Dim: 8, Vocab: -1, MaxPos: 4}
	err := bad.Validate()
	for _, want := range []string{"Layers: must be > 0, got 0", "Vocab: must be > 0, got -1", "Dim: must be a multiple of Heads (3), got 8"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%+v) = %v, want it to say %q", bad, err, want)
		}
	}
	if err := onnxgen.WriteGPT(&bytes.Buffer{}, bad); err == nil {
		t.Error("WriteGPT accepted an invalid config")
	}
	if err := onnxgen.TinyGPT().Validate(); err != nil {
		t.Errorf("TinyGPT: %v", err)
	}
	if err := onnxgen.GPT2Small().Validate(); err != nil {
		t.Errorf("GPT2Small: %v", err)
	}
}

func int64s(name string, rows [][]int64) *ft.Tensor {
	var data []byte
	for _, r := range rows {
		for _, v := range r {
			data = binary.LittleEndian.AppendUint64(data, uint64(v))
		}
	}
	return &ft.Tensor{Name: name, DType: ft.Int64, Shape: ft.Shape{int64(len(rows)), int64(len(rows[0]))}, Data: data}
}

func floats(b []byte) []float32 {
	f := make([]float32, len(b)/4)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return f
}

func ones(n int) []int64 { return slices.Repeat([]int64{1}, n) }

func seq(from, n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = int64(from + i)
	}
	return s
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

func argmax(l []float32) int64 {
	best := 0
	for i, v := range l {
		if v > l[best] {
			best = i
		}
	}
	return int64(best)
}
