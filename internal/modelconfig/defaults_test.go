package modelconfig

import (
	"slices"
	"testing"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

func TestSetInstanceCount(t *testing.T) {
	cfg, err := Parse([]byte(`backend: "trees" instance_group [ { kind: KIND_CPU }, { count: 3 } ]`))
	if err != nil {
		t.Fatal(err)
	}
	SetInstanceCount(cfg, 8)
	SetDefaults(cfg, "m")
	if got := []int32{cfg.InstanceGroup[0].Count, cfg.InstanceGroup[1].Count}; got[0] != 8 || got[1] != 3 {
		t.Errorf("counts %v, want [8 3]: the backend's default where none is set, the config's elsewhere", got)
	}
	empty := &inference.ModelConfig{}
	SetInstanceCount(empty, 0)
	if len(empty.InstanceGroup) != 1 || empty.InstanceGroup[0].Count != 1 {
		t.Errorf("groups %v, want one with count 1", empty.InstanceGroup)
	}
	if Instances(empty) != 1 || Instances(cfg) != 11 {
		t.Errorf("Instances = %d and %d, want 1 and 11", Instances(empty), Instances(cfg))
	}
}

func TestSetDefaults(t *testing.T) {
	for _, tc := range []struct{ name, config, want string }{
		{
			name:   "an empty config becomes an ONNX model with Triton's defaults",
			config: ``,
			want: `name: "m" platform: "onnxruntime_onnx" backend: "onnxruntime" default_model_filename: "model.onnx"
				version_policy { latest { num_versions: 1 } }
				instance_group [ { name: "m_0" count: 2 kind: KIND_CPU } ]`,
		},
		{
			name:   "platform gives the backend, and set values stay",
			config: `name: "m" platform: "onnxruntime_onnx" default_model_filename: "resnet.onnx" version_policy { all { } }`,
			want: `name: "m" platform: "onnxruntime_onnx" backend: "onnxruntime" default_model_filename: "resnet.onnx"
				version_policy { all { } }
				instance_group [ { name: "m_0" count: 2 kind: KIND_CPU } ]`,
		},
		{
			name:   "groups get names, count 1 and CPU placement",
			config: `backend: "trees" instance_group [ { count: 0 kind: KIND_AUTO }, { name: "big" count: 4 kind: KIND_CPU } ]`,
			want: `name: "m" backend: "trees" version_policy { latest { num_versions: 1 } }
				instance_group [ { name: "m_0" count: 1 kind: KIND_CPU }, { name: "big" count: 4 kind: KIND_CPU } ]`,
		},
		{
			name:   "a non-ONNX model file is not guessed at",
			config: `default_model_filename: "model.py"`,
			want: `name: "m" default_model_filename: "model.py" version_policy { latest { num_versions: 1 } }
				instance_group [ { name: "m_0" count: 1 kind: KIND_CPU } ]`,
		},
		{
			name:   "an ONNX group that sets no count gets Triton's 2, one that does keeps it",
			config: `backend: "onnxruntime" instance_group [ { kind: KIND_CPU }, { count: 1 } ]`,
			want: `name: "m" backend: "onnxruntime" platform: "onnxruntime_onnx" default_model_filename: "model.onnx"
				version_policy { latest { num_versions: 1 } }
				instance_group [ { name: "m_0" count: 2 kind: KIND_CPU }, { name: "m_1" count: 1 kind: KIND_CPU } ]`,
		},
		{
			name:   "ensembles get no instance group",
			config: `name: "e" platform: "ensemble" ensemble_scheduling { }`,
			want:   `name: "e" platform: "ensemble" ensemble_scheduling { } version_policy { latest { num_versions: 1 } }`,
		},
		{
			name:   "sequence idle timeout defaults to 1 s",
			config: `backend: "onnxruntime" platform: "onnxruntime_onnx" default_model_filename: "model.onnx" sequence_batching { }`,
			want: `name: "m" backend: "onnxruntime" platform: "onnxruntime_onnx" default_model_filename: "model.onnx"
				sequence_batching { max_sequence_idle_microseconds: 1000000 }
				version_policy { latest { num_versions: 1 } }
				instance_group [ { name: "m_0" count: 2 kind: KIND_CPU } ]`,
		},
		{
			name:   "a version policy with no choice becomes latest 1",
			config: `backend: "x" version_policy { } instance_group { name: "g" count: 2 kind: KIND_GPU }`,
			want: `name: "m" backend: "x" version_policy { latest { num_versions: 1 } }
				instance_group { name: "g" count: 2 kind: KIND_GPU }`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.config))
			if err != nil {
				t.Fatal(err)
			}
			SetDefaults(cfg, "m")
			want, err := Parse([]byte(tc.want))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, cfg, protocmp.Transform()); diff != "" {
				t.Errorf("SetDefaults(%q) mismatch (-want +got):\n%s", tc.config, diff)
			}
			again := proto.Clone(cfg).(*inference.ModelConfig)
			SetDefaults(again, "m")
			if !proto.Equal(cfg, again) {
				t.Errorf("SetDefaults(%q) applied twice changed the config", tc.config)
			}
		})
	}
}

func TestVersions(t *testing.T) {
	latest := func(n uint32) *inference.ModelVersionPolicy {
		return &inference.ModelVersionPolicy{PolicyChoice: &inference.ModelVersionPolicy_Latest_{Latest: &inference.ModelVersionPolicy_Latest{NumVersions: n}}}
	}
	all := &inference.ModelVersionPolicy{PolicyChoice: &inference.ModelVersionPolicy_All_{All: &inference.ModelVersionPolicy_All{}}}
	specific := func(vs ...int64) *inference.ModelVersionPolicy {
		return &inference.ModelVersionPolicy{PolicyChoice: &inference.ModelVersionPolicy_Specific_{Specific: &inference.ModelVersionPolicy_Specific{Versions: vs}}}
	}
	for _, tc := range []struct {
		name                  string
		policy                *inference.ModelVersionPolicy
		onDisk                []int64
		wantLoad, wantMissing []int64
	}{
		{"nil policy is latest 1", nil, []int64{1, 3, 2}, []int64{3}, nil},
		{"policy without a choice is latest 1", &inference.ModelVersionPolicy{}, []int64{5, 7}, []int64{7}, nil},
		{"latest 2 of 3", latest(2), []int64{10, 2, 7}, []int64{7, 10}, nil},
		{"latest more than on disk", latest(5), []int64{2, 1}, []int64{1, 2}, nil},
		{"latest 0 loads nothing", latest(0), []int64{1, 2}, nil, nil},
		{"all", all, []int64{3, 1, 2, 2}, []int64{1, 2, 3}, nil},
		{"specific, all present", specific(3, 1), []int64{1, 2, 3}, []int64{1, 3}, nil},
		{"specific, one missing", specific(1, 4), []int64{1, 2, 3}, []int64{1}, []int64{4}},
		{"specific, none on disk", specific(2), nil, nil, []int64{2}},
		{"nothing on disk", latest(1), nil, nil, nil},
		{"version 0 and negatives are ignored", all, []int64{0, -1, 4}, []int64{4}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			load, missing := Versions(tc.policy, tc.onDisk)
			if !slices.Equal(load, tc.wantLoad) || !slices.Equal(missing, tc.wantMissing) {
				t.Errorf("Versions(%v, %v) = %v, %v; want %v, %v", tc.policy, tc.onDisk, load, missing, tc.wantLoad, tc.wantMissing)
			}
		})
	}
}

func TestDTypeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		config inference.DataType
		v2     tensor.DType
	}{
		{inference.DataType_TYPE_BOOL, tensor.Bool},
		{inference.DataType_TYPE_UINT8, tensor.Uint8},
		{inference.DataType_TYPE_UINT16, tensor.Uint16},
		{inference.DataType_TYPE_UINT32, tensor.Uint32},
		{inference.DataType_TYPE_UINT64, tensor.Uint64},
		{inference.DataType_TYPE_INT8, tensor.Int8},
		{inference.DataType_TYPE_INT16, tensor.Int16},
		{inference.DataType_TYPE_INT32, tensor.Int32},
		{inference.DataType_TYPE_INT64, tensor.Int64},
		{inference.DataType_TYPE_FP16, tensor.FP16},
		{inference.DataType_TYPE_FP32, tensor.FP32},
		{inference.DataType_TYPE_FP64, tensor.FP64},
		{inference.DataType_TYPE_STRING, tensor.Bytes},
		{inference.DataType_TYPE_BF16, tensor.BF16},
		{inference.DataType_TYPE_INVALID, tensor.Invalid},
	} {
		if got := DType(tc.config); got != tc.v2 {
			t.Errorf("DType(%v) = %v, want %v", tc.config, got, tc.v2)
		}
		if got := ConfigType(tc.v2); got != tc.config {
			t.Errorf("ConfigType(%v) = %v, want %v", tc.v2, got, tc.config)
		}
	}
	if got := DType(inference.DataType(99)); got != tensor.Invalid {
		t.Errorf("DType(99) = %v, want INVALID", got)
	}
	if got := DType(inference.DataType(-1)); got != tensor.Invalid {
		t.Errorf("DType(-1) = %v, want INVALID", got)
	}
	if got := ConfigType(tensor.DType(200)); got != inference.DataType_TYPE_INVALID {
		t.Errorf("ConfigType(200) = %v, want TYPE_INVALID", got)
	}
}
