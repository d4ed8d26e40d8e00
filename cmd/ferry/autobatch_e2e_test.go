package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// withMeasuredMaxBatch sets --onnx-default-max-batch-size (0: measure each model).
func withMeasuredMaxBatch(n int) serverOption {
	return func(c *serveConfig) { c.onnxMaxBatch = n }
}

// autobatchRepo holds the simple model four ways: without config (auto-complete gives
// max_batch_size), with max_batch_size 8, with max_batch_size 0, and with a config that
// only sets its instances; plus an identity model whose second dimension is variable.
func autobatchRepo(t *testing.T) string {
	repo := t.TempDir()
	writeModel(t, repo, "auto", 1, onnxgen.Simple(), "")
	writeModel(t, repo, "eight", 1, onnxgen.Simple(), "max_batch_size: 8\n")
	writeModel(t, repo, "zero", 1, onnxgen.Simple(), "max_batch_size: 0\n")
	writeModel(t, repo, "one_instance", 1, onnxgen.Simple(), "instance_group [ { count: 1 kind: KIND_CPU } ]\n")
	writeModel(t, repo, "ragged", 1, onnxgen.Identity(onnxgen.Float, "ragged"), "")
	return repo
}

// TestDefaultMaxBatchSize: a model whose config leaves max_batch_size to auto-complete
// gets a measured one (simple: each doubling nearly doubles its rows/s, so more than
// 4), unless the flag sets it; a max_batch_size in the config, 0 included, is never
// changed; a model no synthetic batch fits keeps Triton's 4.
func TestDefaultMaxBatchSize(t *testing.T) {
	repo := autobatchRepo(t)
	for _, tc := range []struct {
		name string
		flag int
		want map[string]func(int32) bool
	}{
		{"measured", 0, map[string]func(int32) bool{
			"auto": above(4), "one_instance": above(4), "eight": equal(8), "zero": equal(0), "ragged": equal(4)}},
		{"Triton's fixed 4", 4, map[string]func(int32) bool{
			"auto": equal(4), "one_instance": equal(4), "eight": equal(8), "zero": equal(0), "ragged": equal(4)}},
		{"another fixed size", 16, map[string]func(int32) bool{
			"auto": equal(16), "eight": equal(8), "zero": equal(0), "ragged": equal(16)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, repo, withMeasuredMaxBatch(tc.flag))
			for model, ok := range tc.want {
				if got := maxBatchSize(t, ts, model); !ok(got) {
					t.Errorf("--onnx-default-max-batch-size %d: %s has max_batch_size %d", tc.flag, model, got)
				}
			}
		})
	}
}

func above(n int32) func(int32) bool { return func(m int32) bool { return m > n } }
func equal(n int32) func(int32) bool { return func(m int32) bool { return m == n } }

func maxBatchSize(t *testing.T, ts *testServer, model string) int32 {
	t.Helper()
	code, _, b := httpDo(t, "GET", ts.URL+"/v2/models/"+model+"/config", "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s config: %d %s", model, code, b)
	}
	var cfg struct {
		MaxBatchSize int32 `json:"max_batch_size"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s config: %v", model, err)
	}
	return cfg.MaxBatchSize
}

func TestServeRefusesANegativeDefaultMaxBatchSize(t *testing.T) {
	cfg := serveConfig{limits: defaultTestLimits(), mode: "none", onnxMaxBatch: -1}
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "--onnx-default-max-batch-size: must be 0 (measure)") {
		t.Errorf("validate() = %v, want the flag named", err)
	}
}
