package modelconfig

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/ferryml/ferry/internal/inference"
)

// Names Triton gives the ONNX Runtime backend and the ensemble scheduler.
const (
	BackendONNXRuntime  = "onnxruntime"
	PlatformONNXRuntime = "onnxruntime_onnx"
	FilenameONNX        = "model.onnx"
	PlatformEnsemble    = "ensemble"
	// BackendLLM marks a generative model the LLM lane serves (internal/llm/native) at
	// /v1/*: the V2 repository leaves its folder alone, as Triton's vLLM backend's
	// folders hold what only that backend reads.
	BackendLLM = "llm"
)

// DefaultSequenceIdleMicroseconds is how long a sequence may stay idle before
// the sequence batcher drops it, when the config says 0 (Triton's default).
const DefaultSequenceIdleMicroseconds = 1_000_000

// SetDefaults applies Triton's defaults to what the config (after
// AutoComplete) still leaves unset:
//
//   - name: dirName;
//   - platform/backend: each from the other for ONNX Runtime
//     ("onnxruntime_onnx" <-> "onnxruntime"), and ONNX Runtime when neither is
//     set and default_model_filename is empty or ends in ".onnx" — ONNX is the
//     one kind of model Ferry serves without a config.pbtxt (an ensemble, which
//     has no backend, is left without one); default_model_filename
//     "model.onnx" for ONNX Runtime;
//   - version_policy: latest { num_versions: 1 };
//   - instance_group (not for ensembles): one group { kind: KIND_CPU } when there
//     is none; in each group a count of 0 becomes DefaultCPUInstances for ONNX
//     Runtime and 1 for other backends (Triton's rule), KIND_AUTO becomes KIND_CPU
//     (Ferry has no GPU placement) and an empty name becomes "<model>_<index>";
//   - sequence_batching.max_sequence_idle_microseconds: 1 s when 0.
//
// It never overwrites a value the config set, so it is safe to call twice.
func SetDefaults(cfg *inference.ModelConfig, dirName string) {
	if cfg == nil {
		return
	}
	if cfg.Name == "" {
		cfg.Name = dirName
	}
	setBackend(cfg)
	if cfg.GetVersionPolicy().GetPolicyChoice() == nil {
		cfg.VersionPolicy = &inference.ModelVersionPolicy{PolicyChoice: &inference.ModelVersionPolicy_Latest_{
			Latest: &inference.ModelVersionPolicy_Latest{NumVersions: 1},
		}}
	}
	if cfg.GetEnsembleScheduling() == nil {
		setInstanceGroups(cfg)
	}
	if sb := cfg.GetSequenceBatching(); sb != nil && sb.MaxSequenceIdleMicroseconds == 0 {
		sb.MaxSequenceIdleMicroseconds = DefaultSequenceIdleMicroseconds
	}
}

func setBackend(cfg *inference.ModelConfig) {
	if cfg.Platform == "" && cfg.Backend == "" && cfg.GetEnsembleScheduling() == nil &&
		(cfg.DefaultModelFilename == "" || strings.HasSuffix(cfg.DefaultModelFilename, ".onnx")) {
		cfg.Backend = BackendONNXRuntime
	}
	switch {
	case cfg.Backend == "" && cfg.Platform == PlatformONNXRuntime:
		cfg.Backend = BackendONNXRuntime
	case cfg.Platform == "" && cfg.Backend == BackendONNXRuntime:
		cfg.Platform = PlatformONNXRuntime
	}
	if cfg.Backend == BackendONNXRuntime && cfg.DefaultModelFilename == "" {
		cfg.DefaultModelFilename = FilenameONNX
	}
}

// DefaultCPUInstances is the count Triton gives a CPU instance group of an ONNX Runtime
// model that sets none: on CPUs two sessions sharing the cores outrun one using them all,
// because one session's threads wait for each other at every operator (on 2 cores the
// mlp example runs 70k items/s as two 1-thread sessions, 64k as one 2-thread session).
const DefaultCPUInstances = 2

func setInstanceGroups(cfg *inference.ModelConfig) {
	count := int32(1)
	if cfg.Backend == BackendONNXRuntime {
		count = DefaultCPUInstances
	}
	SetInstanceCount(cfg, int(count))
	for i, g := range cfg.InstanceGroup {
		if g.Name == "" {
			g.Name = fmt.Sprintf("%s_%d", cfg.Name, i)
		}
		if g.Kind == inference.ModelInstanceGroup_KIND_AUTO {
			g.Kind = inference.ModelInstanceGroup_KIND_CPU
		}
	}
}

// SetInstanceCount gives n instances to every instance group that sets no count, and to
// the config one such group when it has none: a backend's own default, applied before
// SetDefaults (which then keeps it).
func SetInstanceCount(cfg *inference.ModelConfig, n int) {
	if len(cfg.InstanceGroup) == 0 {
		cfg.InstanceGroup = []*inference.ModelInstanceGroup{{Kind: inference.ModelInstanceGroup_KIND_CPU}}
	}
	for _, g := range cfg.InstanceGroup {
		if g.Count == 0 {
			g.Count = int32(max(n, 1))
		}
	}
}

// Instances is how many execution instances the instance groups ask for: their counts
// added up (a count of 0 is 1), and 1 when there is no group.
func Instances(cfg *inference.ModelConfig) int {
	n := 0
	for _, g := range cfg.GetInstanceGroup() {
		n += int(max(g.GetCount(), 1))
	}
	return max(n, 1)
}

// CoresPerInstance shares the machine's cores among the instances (at least one each),
// so instances × threads stays within the cores: the default thread count of backends
// whose engine parallelises one execution.
func CoresPerInstance(cfg *inference.ModelConfig) int {
	return max(1, runtime.NumCPU()/Instances(cfg))
}

// Versions applies a version policy to the version numbers found on disk.
// latest { n } loads the n highest, all loads every one, specific loads the
// listed ones that exist and reports the listed ones that do not in missing.
// A nil policy, or one with no choice set, is latest 1. Version numbers below
// 1 are ignored (Triton skips such directories); both results are ascending
// and free of duplicates.
func Versions(policy *inference.ModelVersionPolicy, onDisk []int64) (load []int64, missing []int64) {
	disk := positiveSorted(onDisk)
	switch p := policy.GetPolicyChoice().(type) {
	case *inference.ModelVersionPolicy_All_:
		return disk, nil
	case *inference.ModelVersionPolicy_Specific_:
		for _, v := range positiveSorted(p.Specific.GetVersions()) {
			if _, ok := slices.BinarySearch(disk, v); ok {
				load = append(load, v)
			} else {
				missing = append(missing, v)
			}
		}
		return load, missing
	case *inference.ModelVersionPolicy_Latest_:
		return latest(disk, int(p.Latest.GetNumVersions())), nil
	default:
		return latest(disk, 1), nil
	}
}

func latest(sorted []int64, n int) []int64 {
	if n >= len(sorted) {
		return sorted
	}
	return sorted[len(sorted)-n:]
}

func positiveSorted(vs []int64) []int64 {
	var out []int64
	for _, v := range vs {
		if v > 0 {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
