package onnxgen_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// TestGPTDecodeStepCost measures GPT2Small's decode step alone (one new token
// per row over a past of 128, 192 and 256, at batch 1 and 8), unfused and
// fused, through RunBuffers as the LLM engine binds it. The two forms' runs
// alternate, so a machine that gets busier hits both alike. It writes the two
// models to $FERRY_GPT_BENCH_DIR (650 MB each, kept there for the next run)
// and is skipped without it: it takes about a minute on 2 cores.
func TestGPTDecodeStepCost(t *testing.T) {
	dir := os.Getenv("FERRY_GPT_BENCH_DIR")
	if dir == "" {
		t.Skip("set $FERRY_GPT_BENCH_DIR to measure GPT2Small's decode step")
	}
	needORT(t)
	cfg := onnxgen.GPT2Small()
	var sess []*onnx.Session
	for _, f := range attentionForms {
		c := cfg
		c.FusedAttention = f.fused
		sess = append(sess, openBenchGPT(t, filepath.Join(dir, "gpt2small-"+f.name+".onnx"), c))
	}
	for _, past := range []int{128, 192, 256} {
		ms := map[int][]float64{}
		for _, batch := range []int{1, 8} {
			ms[batch] = decodeStepMillis(t, sess, cfg, batch, past)
		}
		for i, f := range attentionForms {
			t.Logf("%-7s past %d: batch 1 %5.1f ms/step, batch 8 %5.1f ms/step; tok/s batch 8 / batch 1 = %.2fx",
				f.name, past, ms[1][i], ms[8][i], 8*ms[1][i]/ms[8][i])
		}
	}
}

// openBenchGPT opens the model cfg describes at path, writing it first if
// the file is not there.
func openBenchGPT(t *testing.T, path string, cfg onnxgen.GPTConfig) *onnx.Session {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		err = onnxgen.WriteGPT(f, cfg)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			t.Fatalf("writing %s: %v", path, err)
		}
	}
	s, err := rt.Open(path, onnx.SessionOptions{IntraOpThreads: 0}) // all cores, as the engine's benchmark
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// decodeStepMillis runs a decode step of batch rows over a past of past
// positions on each session in turn, several times, and returns each
// session's median wall time in milliseconds.
func decodeStepMillis(t *testing.T, sess []*onnx.Session, cfg onnxgen.GPTConfig, batch, past int) []float64 {
	t.Helper()
	in, out := decodeStepBuffers(cfg, batch, past)
	const warm, runs = 2, 15
	ms := make([][]float64, len(sess))
	for r := range warm + runs {
		for i, s := range sess {
			t0 := time.Now()
			if err := s.RunBuffers(context.Background(), in, out); err != nil {
				t.Fatalf("%s, batch %d past %d: %v", attentionForms[i].name, batch, past, err)
			}
			if r >= warm {
				ms[i] = append(ms[i], float64(time.Since(t0).Microseconds())/1000)
			}
		}
	}
	med := make([]float64, len(sess))
	for i := range ms {
		slices.Sort(ms[i])
		med[i] = ms[i][len(ms[i])/2]
	}
	return med
}

// stepTokens is a decode step's token inputs (one token a row, every past position
// real) and its logits output.
func stepTokens(cfg onnxgen.GPTConfig, batch, past int) (in, out []onnx.Buffer) {
	B, P := int64(batch), int64(past)
	ids, pos, mask := make([]int64, B), make([]int64, B), make([]int64, B*(P+1))
	for i := range ids {
		ids[i], pos[i] = int64(100+i), P
	}
	for i := range mask {
		mask[i] = 1
	}
	in = []onnx.Buffer{
		{Name: "input_ids", Shape: []int64{B, 1}, I64: ids},
		{Name: "attention_mask", Shape: []int64{B, P + 1}, I64: mask},
		{Name: "position_ids", Shape: []int64{B, 1}, I64: pos},
	}
	out = []onnx.Buffer{{Name: "logits", Shape: []int64{B, 1, int64(cfg.Vocab)}, F32: make([]float32, B*int64(cfg.Vocab))}}
	return in, out
}

// decodeStepBuffers returns the inputs and outputs of a decode step of batch
// rows over past positions, bound as the engine binds them.
func decodeStepBuffers(cfg onnxgen.GPTConfig, batch, past int) (in, out []onnx.Buffer) {
	B, P := int64(batch), int64(past)
	H, Dh := int64(cfg.Heads), int64(cfg.Dim/cfg.Heads)
	in, out = stepTokens(cfg, batch, past)
	for i := range cfg.Layers {
		for _, kv := range []string{"key", "value"} {
			pastKV := make([]float32, B*H*P*Dh)
			for j := range pastKV {
				pastKV[j] = float32(j%7) * 0.01
			}
			in = append(in, onnx.Buffer{Name: "past_key_values." + strconv.Itoa(i) + "." + kv, Shape: []int64{B, H, P, Dh}, F32: pastKV})
			out = append(out, onnx.Buffer{Name: "present." + strconv.Itoa(i) + "." + kv,
				Shape: []int64{B, H, P + 1, Dh}, F32: make([]float32, B*H*(P+1)*Dh)})
		}
	}
	return in, out
}
