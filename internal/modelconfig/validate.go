package modelconfig

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/ferryml/ferry/internal/inference"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Validate checks a complete config (after AutoComplete and SetDefaults) and
// returns every problem it finds, joined, each a *FieldError naming the field:
//
//   - name set, and equal to dirName when dirName is not empty;
//   - platform or backend set, in a pair that goes together; "ensemble" exactly
//     when ensemble_scheduling is set;
//   - max_batch_size >= 0;
//   - input and output non-empty, names set and unique, data types valid,
//     dims non-empty with each dimension >= 1 or -1, reshapes consistent;
//   - file names (default_model_filename, label_filename, warmup files) local
//     to the model directory;
//   - version_policy: latest at least 1, specific versions listed, >= 1, once;
//   - instance_group count >= 0, a known kind, no GPUs on a CPU group;
//   - dynamic_batching preferred sizes in [1, max_batch_size] (so only with
//     max_batch_size > 0), priority levels and queue policies consistent;
//   - sequence_batching controls and states well formed;
//   - ensemble_scheduling steps naming models and their tensors connected
//     from the ensemble inputs to its outputs;
//   - model_warmup samples, batch_input and batch_output well formed.
func Validate(cfg *inference.ModelConfig, dirName string) error {
	if cfg == nil {
		return errors.New("modelconfig: nil config")
	}
	v := &validator{cfg: cfg}
	v.top(dirName)
	v.inputs()
	v.outputs()
	v.versionPolicy()
	v.instanceGroups()
	v.dynamicBatching()
	v.sequenceBatching()
	v.ensemble()
	v.warmup()
	v.batchIO()
	return errors.Join(v.errs...)
}

type validator struct {
	cfg  *inference.ModelConfig
	errs []error
}

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, fieldErr(field, format, args...))
}

func (v *validator) top(dirName string) {
	c := v.cfg
	switch {
	case c.Name == "":
		v.add("name", "must be set")
	case dirName != "" && c.Name != dirName:
		v.add("name", "%q does not match the model directory %q", c.Name, dirName)
	}
	switch {
	case c.Platform == "" && c.Backend == "":
		v.add("backend", "platform or backend must be set")
	case c.Platform == PlatformEnsemble && c.Backend != "":
		v.add("backend", "must be empty for an ensemble, got %q", c.Backend)
	case c.Backend == BackendONNXRuntime && c.Platform != "" && c.Platform != PlatformONNXRuntime:
		v.add("platform", "%q does not go with backend %q (want %q)", c.Platform, c.Backend, PlatformONNXRuntime)
	}
	ensemble := c.GetEnsembleScheduling() != nil
	switch {
	case ensemble && c.Platform != PlatformEnsemble:
		v.add("platform", "must be %q with ensemble_scheduling, got %q", PlatformEnsemble, c.Platform)
	case !ensemble && c.Platform == PlatformEnsemble:
		v.add("ensemble_scheduling", "must be set when platform is %q", PlatformEnsemble)
	}
	if c.MaxBatchSize < 0 {
		v.add("max_batch_size", "must be >= 0, got %d", c.MaxBatchSize)
	}
	if c.DefaultModelFilename != "" {
		if err := CheckFileName(c.DefaultModelFilename); err != nil {
			v.add("default_model_filename", "%q must be a relative path inside the version directory, one file name: %v", c.DefaultModelFilename, err)
		}
	}
	for _, k := range sortedKeys(c.CcModelFilenames) {
		if err := CheckFileName(c.CcModelFilenames[k]); err != nil {
			v.add(fmt.Sprintf("cc_model_filenames[%q]", k), "%q must be a relative path inside the version directory, one file name: %v", c.CcModelFilenames[k], err)
		}
	}
}

func (v *validator) inputs() {
	if len(v.cfg.Input) == 0 {
		v.add("input", "at least one input must be listed")
	}
	seen := map[string]int{}
	for i, in := range v.cfg.Input {
		path := tensorPath("input", i, in.Name)
		v.unique(seen, "input", i, in.Name)
		v.dataType(path+".data_type", in.DataType)
		v.dims(path+".dims", in.Dims)
		v.reshape(path, in.Dims, in.Reshape)
	}
}

func (v *validator) outputs() {
	if len(v.cfg.Output) == 0 {
		v.add("output", "at least one output must be listed")
	}
	seen := map[string]int{}
	for i, out := range v.cfg.Output {
		path := tensorPath("output", i, out.Name)
		v.unique(seen, "output", i, out.Name)
		v.dataType(path+".data_type", out.DataType)
		v.dims(path+".dims", out.Dims)
		v.reshape(path, out.Dims, out.Reshape)
		if out.LabelFilename != "" {
			if err := CheckFileName(out.LabelFilename); err != nil {
				v.add(path+".label_filename", "%q must be a relative path inside the model directory, one file name: %v", out.LabelFilename, err)
			}
		}
	}
}

// unique reports a missing name or one already seen among the same kind.
func (v *validator) unique(seen map[string]int, kind string, i int, name string) {
	if name == "" {
		v.add(fmt.Sprintf("%s[%d].name", kind, i), "must be set")
		return
	}
	if j, dup := seen[name]; dup {
		v.add(tensorPath(kind, i, name), "duplicate name (also %s[%d])", kind, j)
		return
	}
	seen[name] = i
}

func (v *validator) dataType(field string, t inference.DataType) {
	switch {
	case t == inference.DataType_TYPE_INVALID:
		v.add(field, "must be set")
	case !DType(t).Valid():
		v.add(field, "unknown data type %d", int32(t))
	}
}

// dims checks a shape written in the config: not empty, each dimension >= 1
// or -1 (variable).
func (v *validator) dims(field string, dims []int64) {
	if len(dims) == 0 {
		v.add(field, "must be set (use [ 1 ] with an empty reshape for a scalar)")
	}
	v.dimValues(field, dims)
}

func (v *validator) dimValues(field string, dims []int64) {
	for i, d := range dims {
		if d < 1 && d != -1 {
			v.add(fmt.Sprintf("%s[%d]", field, i), "must be >= 1, or -1 for a variable size, got %d", d)
		}
	}
}

func (v *validator) reshape(path string, dims []int64, r *inference.ModelTensorReshape) {
	if r == nil {
		return
	}
	field := path + ".reshape"
	if len(r.Shape) == 0 && v.cfg.MaxBatchSize == 0 {
		v.add(field, "an empty reshape (a scalar) needs max_batch_size > 0")
	}
	v.dimValues(field+".shape", r.Shape)
	// Between variable (-1) dimensions, dims and reshape must hold the same
	// number of elements: [2,4,-1,6] may become [8,-1,1,6].
	a, okA := segments(dims)
	b, okB := segments(r.Shape)
	if okA && okB && !slices.Equal(a, b) {
		v.add(field, "shape %v holds a different number of elements than dims %v", r.Shape, dims)
	}
}

// segments returns the element counts of the runs of fixed dimensions
// between -1 dimensions; false when a count overflows or a dimension is
// invalid (reported elsewhere).
func segments(shape []int64) ([]int64, bool) {
	out := []int64{1}
	for _, d := range shape {
		switch {
		case d == -1:
			out = append(out, 1)
		case d < 1:
			return nil, false
		case out[len(out)-1] > math.MaxInt64/d:
			return nil, false
		default:
			out[len(out)-1] *= d
		}
	}
	return out, true
}

func (v *validator) versionPolicy() {
	switch p := v.cfg.GetVersionPolicy().GetPolicyChoice().(type) {
	case *inference.ModelVersionPolicy_Latest_:
		if p.Latest.GetNumVersions() < 1 {
			v.add("version_policy.latest.num_versions", "must be >= 1")
		}
	case *inference.ModelVersionPolicy_Specific_:
		vs := p.Specific.GetVersions()
		if len(vs) == 0 {
			v.add("version_policy.specific.versions", "must list at least one version")
		}
		seen := map[int64]bool{}
		for i, n := range vs {
			field := fmt.Sprintf("version_policy.specific.versions[%d]", i)
			switch {
			case n < 1:
				v.add(field, "must be >= 1, got %d", n)
			case seen[n]:
				v.add(field, "version %d listed twice", n)
			}
			seen[n] = true
		}
	}
}

func (v *validator) instanceGroups() {
	if v.cfg.GetEnsembleScheduling() != nil {
		if len(v.cfg.InstanceGroup) > 0 {
			v.add("instance_group", "must not be set for an ensemble")
		}
		return
	}
	for i, g := range v.cfg.InstanceGroup {
		field := fmt.Sprintf("instance_group[%d]", i)
		if g.Count < 0 {
			v.add(field+".count", "must be >= 0, got %d", g.Count)
		}
		if !knownEnum(g.Kind) {
			v.add(field+".kind", "unknown kind %d", int32(g.Kind))
		}
		if len(g.Gpus) > 0 && (g.Kind == inference.ModelInstanceGroup_KIND_CPU || g.Kind == inference.ModelInstanceGroup_KIND_MODEL) {
			v.add(field+".gpus", "must be empty for %v", g.Kind)
		}
		for j, id := range g.Gpus {
			if id < 0 {
				v.add(fmt.Sprintf("%s.gpus[%d]", field, j), "must be >= 0, got %d", id)
			}
		}
	}
}

// knownEnum reports whether e is one of its enum's declared values; prototext
// and protojson accept any number for an open enum.
func knownEnum(e interface {
	Descriptor() protoreflect.EnumDescriptor
	Number() protoreflect.EnumNumber
}) bool {
	return e.Descriptor().Values().ByNumber(e.Number()) != nil
}
