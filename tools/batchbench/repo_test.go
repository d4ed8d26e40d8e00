package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryml/ferry/internal/modelconfig"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRepositoryConfigsParseAsIssue14Asks(t *testing.T) {
	dir := t.TempDir()
	onnx := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(onnx, []byte("the generator never reads it"), 0o644); err != nil {
		t.Fatal(err)
	}
	cs := configs(true)
	if err := writeRepository(dir, onnx, cs); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		t.Run(c.Name, func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join(dir, c.Name, "config.pbtxt"))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := modelconfig.Parse(text)
			if err != nil {
				t.Fatalf("modelconfig.Parse:\n%s\nerr = %v", text, err)
			}
			if _, err := os.Stat(filepath.Join(dir, c.Name, "1", "model.onnx")); err != nil {
				t.Errorf("version 1: %v", err)
			}
			if cfg.GetName() != c.Name || cfg.GetMaxBatchSize() != maxBatch || cfg.GetPlatform() != "onnxruntime_onnx" {
				t.Errorf("name %q, max_batch_size %d, platform %q; want %q, %d, onnxruntime_onnx",
					cfg.GetName(), cfg.GetMaxBatchSize(), cfg.GetPlatform(), c.Name, maxBatch)
			}
			if g := cfg.GetInstanceGroup(); len(g) != 1 || g[0].GetCount() != 1 || g[0].GetKind().String() != "KIND_CPU" {
				t.Errorf("instance_group = %v, want one KIND_CPU instance", g)
			}
			in, out := cfg.GetInput(), cfg.GetOutput()
			if len(in) != 1 || in[0].GetName() != "input" || in[0].GetDataType().String() != "TYPE_FP32" || len(in[0].GetDims()) != 1 || in[0].GetDims()[0] != 256 {
				t.Errorf("input = %v, want input FP32 [256]", in)
			}
			if len(out) != 1 || out[0].GetName() != "output" || len(out[0].GetDims()) != 1 || out[0].GetDims()[0] != 10 {
				t.Errorf("output = %v, want output [10]", out)
			}
			db := cfg.GetDynamicBatching()
			if got := db != nil; got != c.Batching {
				t.Errorf("dynamic_batching present = %v, want %v", got, c.Batching)
			}
			if got := db.GetMaxQueueDelayMicroseconds(); got != uint64(c.DelayUS) {
				t.Errorf("max_queue_delay_microseconds = %d, want %d", got, c.DelayUS)
			}
			p, ok := cfg.GetParameters()[modelconfig.ParamAdaptiveBatching]
			if fixed := ok && p.GetStringValue() == "false"; fixed != c.Fixed {
				t.Errorf("adaptive_batching \"false\" = %v, want %v", fixed, c.Fixed)
			}
		})
	}
}

func TestRepositoryWithoutModelFileNamesIt(t *testing.T) {
	err := writeRepository(t.TempDir(), "/nonexistent/model.onnx", configs(false))
	if err == nil {
		t.Fatal("writeRepository with a missing model file: no error")
	}
}
