package modelconfig

import (
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

// treeModel is a model as the trees backend reports it: its own default
// max_batch_size, and FP64 accepted where the model's type is FP32.
var treeModel = IO{
	Inputs:       []TensorInfo{{Name: "input__0", DType: tensor.FP32, Shape: tensor.Shape{-1, 3}}},
	Outputs:      []TensorInfo{{Name: "output__0", DType: tensor.FP32, Shape: tensor.Shape{-1, 1}}},
	MaxBatchSize: 256,
	Accepts:      map[string][]tensor.DType{"input__0": {tensor.FP64}},
}

func TestAutoCompleteWithBackendChoices(t *testing.T) {
	for _, tc := range []struct {
		name, config, want, wantErr string
	}{
		{
			name:   "no config takes the backend's max_batch_size",
			config: ``,
			want: `max_batch_size: 256
				input [ { name: "input__0" data_type: TYPE_FP32 dims: [ 3 ] } ]
				output [ { name: "output__0" data_type: TYPE_FP32 dims: [ 1 ] } ]
				dynamic_batching { }`,
		},
		{
			name:   "an explicit max_batch_size wins",
			config: `max_batch_size: 8`,
			want: `max_batch_size: 8
				input [ { name: "input__0" data_type: TYPE_FP32 dims: [ 3 ] } ]
				output [ { name: "output__0" data_type: TYPE_FP32 dims: [ 1 ] } ]
				dynamic_batching { }`,
		},
		{
			name:   "an accepted datatype is kept",
			config: `input [ { name: "input__0" data_type: TYPE_FP64 } ]`,
			want: `max_batch_size: 256
				input [ { name: "input__0" data_type: TYPE_FP64 dims: [ 3 ] } ]
				output [ { name: "output__0" data_type: TYPE_FP32 dims: [ 1 ] } ]
				dynamic_batching { }`,
		},
		{
			name:    "a datatype not accepted for that tensor is refused",
			config:  `output [ { name: "output__0" data_type: TYPE_FP64 } ]`,
			wantErr: `output["output__0"].data_type: TYPE_FP64 conflicts with the model's TYPE_FP32`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.config))
			if err != nil {
				t.Fatal(err)
			}
			err = AutoComplete(cfg, treeModel, HasMaxBatchSize([]byte(tc.config)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("AutoComplete(%q) err = %v, want %q", tc.config, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("AutoComplete(%q) err = %v", tc.config, err)
			}
			want, err := Parse([]byte(tc.want))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, cfg, protocmp.Transform()); diff != "" {
				t.Errorf("AutoComplete(%q) mismatch (-want +got):\n%s", tc.config, diff)
			}
		})
	}
}

// TestAutoCompleteAsksPickMaxBatchSizeOnlyWhenItGivesOne: a backend that measures to
// choose is asked only when the config leaves max_batch_size to auto-complete, and its
// answer is taken (a non-positive one keeps the default).
func TestAutoCompleteAsksPickMaxBatchSizeOnlyWhenItGivesOne(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		pick         int32
		wantAsked    bool
		wantMax      int32
	}{
		{name: "no config takes the backend's pick", pick: 64, wantAsked: true, wantMax: 64},
		{name: "a pick of 0 keeps the default", pick: 0, wantAsked: true, wantMax: DefaultMaxBatchSize},
		{name: "an explicit max_batch_size is not asked about", config: `max_batch_size: 8`, pick: 64, wantMax: 8},
		{name: "an explicit max_batch_size 0 is not asked about", config: `max_batch_size: 0`, pick: 64, wantMax: 0},
		{name: "dims without max_batch_size mean 0, not asked", config: `input [ { name: "x" dims: [ -1, 3 ] } ]`, pick: 64, wantMax: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.config))
			if err != nil {
				t.Fatal(err)
			}
			asked := false
			io := IO{
				Inputs:  []TensorInfo{{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{-1, 3}}},
				Outputs: []TensorInfo{{Name: "y", DType: tensor.FP32, Shape: tensor.Shape{-1, 1}}},
				PickMaxBatchSize: func() int32 {
					asked = true
					return tc.pick
				},
			}
			if err := AutoComplete(cfg, io, HasMaxBatchSize([]byte(tc.config))); err != nil {
				t.Fatal(err)
			}
			if asked != tc.wantAsked || cfg.MaxBatchSize != tc.wantMax {
				t.Errorf("asked %v, max_batch_size %d; want asked %v, max_batch_size %d", asked, cfg.MaxBatchSize, tc.wantAsked, tc.wantMax)
			}
		})
	}
}
