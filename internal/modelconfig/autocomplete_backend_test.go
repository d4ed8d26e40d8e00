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
