package onnxgen_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// BenchmarkGPTSharedKVDecodeStep times one decode step of GPT2Small (ONNX
// Runtime's Run alone, through RunBuffers) with the Optimum contract, which
// copies the past into present, and with SharedKV, whose cache of
// GPT2Small.MaxPos columns is updated in place, at batch 1 and 8 over a past
// of 16 and 192. Each iteration runs both graphs, so a machine that gets
// busier slows both alike. The models are written to $FERRY_GPT_BENCH_DIR
// (650 MB each, kept for the next run; the Optimum one is the file
// TestGPTDecodeStepCost uses) and it is skipped without it:
//
//	FERRY_GPT_BENCH_DIR=/tmp/gptbench go test -run XXX -bench SharedKVDecodeStep -benchtime=10x ./tools/onnxgen
func BenchmarkGPTSharedKVDecodeStep(b *testing.B) {
	dir := os.Getenv("FERRY_GPT_BENCH_DIR")
	if dir == "" || rt == nil {
		b.Skip("set $FERRY_GPT_BENCH_DIR (and the ONNX Runtime library) to measure GPT2Small's decode step")
	}
	cfg := onnxgen.GPT2Small()
	shared := cfg
	shared.SharedKV = true
	sess := []*onnx.Session{
		openBenchModel(b, filepath.Join(dir, "gpt2small-unfused.onnx"), cfg),
		openBenchModel(b, filepath.Join(dir, "gpt2small-sharedkv.onnx"), shared),
	}
	for _, c := range [][2]int{{1, 16}, {1, 192}, {8, 16}, {8, 192}} {
		B, past := c[0], c[1]
		b.Run(fmt.Sprintf("batch=%d/past=%d", B, past), func(b *testing.B) {
			in0, out0 := decodeStepBuffers(cfg, B, past)
			in1, out1 := sharedDecodeStepBuffers(cfg, B, past, cfg.MaxPos)
			bufs := [][2][]onnx.Buffer{{in0, out0}, {in1, out1}}
			run := func(i int) time.Duration {
				t0 := time.Now()
				if err := sess[i].RunBuffers(context.Background(), bufs[i][0], bufs[i][1]); err != nil {
					b.Fatalf("%s graph, batch %d past %d: %v", [2]string{"Optimum", "SharedKV"}[i], B, past, err)
				}
				return time.Since(t0)
			}
			for range 2 { // warm up: the first runs allocate ORT's arenas
				run(0)
				run(1)
			}
			var spent [2]time.Duration
			n := 0
			for b.Loop() {
				spent[0] += run(0)
				spent[1] += run(1)
				n++
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
			b.ReportMetric(ms(spent[0]), "optimum-ms/step")
			b.ReportMetric(ms(spent[1]), "sharedkv-ms/step")
			b.ReportMetric(ms(spent[0])/ms(spent[1]), "x-speedup")
		})
	}
}

// openBenchModel opens the model cfg describes at path, writing it first if
// the file is not there.
func openBenchModel(b *testing.B, path string, cfg onnxgen.GPTConfig) *onnx.Session {
	b.Helper()
	if _, err := os.Stat(path); err != nil {
		if err := writeModelFile(path, cfg); err != nil {
			b.Fatal(err)
		}
	}
	// All cores by default, as the engine's benchmark; on a machine shared
	// with other work, $FERRY_GPT_BENCH_THREADS=1 gives steadier numbers.
	threads, _ := strconv.Atoi(os.Getenv("FERRY_GPT_BENCH_THREADS"))
	s, err := rt.Open(path, onnx.SessionOptions{IntraOpThreads: threads})
	if err != nil {
		b.Fatalf("opening %s: %v", path, err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// writeModelFile writes cfg's model to path, removing the file if that
// fails part way.
func writeModelFile(path string, cfg onnxgen.GPTConfig) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = onnxgen.WriteGPT(f, cfg)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// sharedDecodeStepBuffers returns the inputs and outputs of a SharedKV
// decode step of batch rows over past positions, each layer's cache of
// capacity columns bound as both its past and its present.
func sharedDecodeStepBuffers(cfg onnxgen.GPTConfig, batch, past, capacity int) (in, out []onnx.Buffer) {
	B, L := int64(batch), int64(capacity)
	H, Dh := int64(cfg.Heads), int64(cfg.Dim/cfg.Heads)
	in, out = stepTokens(cfg, batch, past)
	kv := []int64{B, H, L, Dh}
	for i := range cfg.Layers {
		for _, name := range []string{"key", "value"} {
			cache := make([]float32, B*H*L*Dh)
			for j := range cache {
				cache[j] = float32(j%7) * 0.01
			}
			layer := strconv.Itoa(i)
			in = append(in, onnx.Buffer{Name: "past_key_values." + layer + "." + name, Shape: kv, F32: cache})
			out = append(out, onnx.Buffer{Name: "present." + layer + "." + name, Shape: kv, F32: cache})
		}
	}
	return in, out
}
