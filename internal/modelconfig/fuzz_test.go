package modelconfig

import (
	"bytes"
	"testing"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
	"google.golang.org/protobuf/proto"
)

// FuzzParse feeds arbitrary text through the whole pipeline. None of it may
// panic, and whatever parses must survive a JSON round trip unchanged. The
// seed corpus in testdata/fuzz/FuzzParse holds real configs.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`max_batch_size: 0`))
	f.Fuzz(func(t *testing.T, text []byte) {
		cfg, err := Parse(text)
		has := HasMaxBatchSize(text)
		if err != nil {
			if has {
				t.Fatalf("HasMaxBatchSize = true for text Parse rejects (%v)", err)
			}
			return
		}
		if !has && cfg.MaxBatchSize != 0 {
			t.Fatalf("HasMaxBatchSize = false but max_batch_size = %d", cfg.MaxBatchSize)
		}
		_ = Validate(cfg, "m")

		completed := proto.Clone(cfg).(*inference.ModelConfig)
		_ = AutoComplete(completed, IO{
			Inputs:  []TensorInfo{{"x", tensor.FP32, tensor.Shape{-1, 3}}, {"INPUT", tensor.Int32, tensor.Shape{-1, 1}}},
			Outputs: []TensorInfo{{"y", tensor.Bytes, tensor.Shape{-1}}},
		}, has)

		SetDefaults(cfg, "m")
		_ = Validate(cfg, "m")
		Versions(cfg.VersionPolicy, []int64{1, 2, 3})

		js, err := MarshalJSON(cfg)
		if err != nil {
			t.Fatalf("MarshalJSON err = %v", err)
		}
		back, err := ParseJSON(js)
		if err != nil {
			t.Fatalf("ParseJSON(MarshalJSON(cfg)) err = %v\nJSON: %s", err, js)
		}
		// Compared as printed, since NaN in a float field is never proto.Equal to itself.
		js2, err := MarshalJSON(back)
		if err != nil {
			t.Fatalf("MarshalJSON(round trip) err = %v", err)
		}
		if !bytes.Equal(js, js2) {
			t.Fatalf("JSON round trip changed the config:\n%s\n%s", js, js2)
		}
	})
}
