package modelconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// loadDir reads every file in testdata/<dir> matching the suffix, keyed by the
// file name without it (the model directory name the config is checked
// against).
func loadDir(t *testing.T, dir, suffix string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*"+suffix))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata/%s/*%s files (err %v)", dir, suffix, err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(p), suffix)] = b
	}
	return out
}

func TestGoodConfigsParseAndValidate(t *testing.T) {
	for name, text := range loadDir(t, "good", ".pbtxt") {
		t.Run(name, func(t *testing.T) {
			cfg, err := Parse(text)
			if err != nil {
				t.Fatalf("Parse(%s) err = %v", name, err)
			}
			SetDefaults(cfg, name)
			if err := Validate(cfg, name); err != nil {
				t.Errorf("Validate(%s) err =\n%v", name, err)
			}
		})
	}
}

func TestParseRealisticConfig(t *testing.T) {
	cfg, err := Parse(loadDir(t, "good", ".pbtxt")["resnet50"])
	if err != nil {
		t.Fatal(err)
	}
	db := cfg.GetDynamicBatching()
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"max_batch_size", cfg.MaxBatchSize, int32(8)},
		{"input dims", len(cfg.Input[0].Dims), 3},
		{"label reshape set", cfg.Output[1].Reshape != nil, true},
		{"preferred sizes", len(db.GetPreferredBatchSize()), 2},
		{"queue delay", db.GetMaxQueueDelayMicroseconds(), uint64(100)},
		{"priority policy timeout", db.GetPriorityQueuePolicy()[2].GetDefaultTimeoutMicroseconds(), uint64(10000)},
		{"instance groups", len(cfg.InstanceGroup), 2},
		{"parameters (both syntaxes)", len(cfg.Parameters), 2},
		{"warmup samples", len(cfg.ModelWarmup), 2},
		{"warmup file", cfg.ModelWarmup[1].Inputs["input"].GetInputDataFile(), "raw_input"},
		{"specific versions", len(cfg.GetVersionPolicy().GetSpecific().GetVersions()), 2},
	} {
		if c.got != c.want {
			t.Errorf("resnet50 %s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

// badConfigs maps each testdata/bad/*.bad.pbtxt to a substring of the error
// that Parse, SetDefaults and Validate, run in that order against the model
// directory named by the file, must produce.
var badConfigs = map[string][]string{
	"syntax_error":                    {"config.pbtxt: syntax error (line 4:1)"},
	"unknown_field":                   {"(line 2:1): unknown field: max_batch"},
	"unknown_nested_field":            {"(line 5:3): unknown field: max_queue_delay_ms"},
	"bad_data_type":                   {"(line 2:33): invalid value for enum type: TYPE_FLOAT"},
	"unknown_data_type_number":        {`input["x"].data_type: unknown data type 99`},
	"missing_data_type":               {`input["x"].data_type: must be set`},
	"duplicate_input":                 {`input["x"]: duplicate name (also input[0])`},
	"negative_dims":                   {`input["x"].dims[1]: must be >= 1, or -1 for a variable size, got -2`},
	"zero_dim":                        {`output["y"].dims[0]: must be >= 1, or -1 for a variable size, got 0`},
	"missing_dims":                    {`input["x"].dims: must be set`},
	"no_outputs":                      {"output: at least one output must be listed"},
	"fractional_dim":                  {"(line 2:52): invalid value for int64 type: 4.5"},
	"repeated_name":                   {`(line 2:1): non-repeated field "name" is repeated`},
	"two_schedulers":                  {"oneof inference.ModelConfig.scheduling_choice is already set"},
	"negative_max_batch_size":         {"max_batch_size: must be >= 0, got -1"},
	"preferred_exceeds_max":           {"dynamic_batching.preferred_batch_size[1]: 16 exceeds max_batch_size 8"},
	"preferred_without_batching":      {"dynamic_batching.preferred_batch_size: needs max_batch_size > 0"},
	"negative_instance_count":         {"instance_group[0].count: must be >= 0, got -1"},
	"cpu_group_with_gpus":             {"instance_group[0].gpus: must be empty for KIND_CPU"},
	"name_mismatch":                   {`name: "somebody_else" does not match the model directory "name_mismatch"`},
	"latest_zero":                     {"version_policy.latest.num_versions: must be >= 1"},
	"specific_twice":                  {"version_policy.specific.versions[2]: version 1 listed twice"},
	"reshape_mismatch":                {`input["x"].reshape: shape [9] holds a different number of elements than dims [2 4]`},
	"ensemble_step_without_model":     {"ensemble_scheduling.step[0].model_name: must be set"},
	"ensemble_output_not_written":     {`output["EXTRA"]: not written by any ensemble step`},
	"ensemble_cycle":                  {`ensemble_scheduling.step[0]: never runs: its inputs come from a cycle of steps: step[0] ("a") reads "B" from step[1] ("b"), which reads "A" from step[0] ("a")`, `ensemble_scheduling.step[1]: never runs: its inputs come from a cycle of steps: step[1] ("b") reads "A" from step[0] ("a"), which reads "B" from step[1] ("b")`, `output["OUT"]: written by a step that never runs`},
	"ensemble_response_cache":         {"response_cache.enable: is not supported for an ensemble; enable it on the step models"},
	"ensemble_unknown_tensor":         {`ensemble_scheduling.step[1].input_map["z"]: tensor "TYPO" (input "z" of model "b") is neither an ensemble input nor written by any step`},
	"ensemble_platform_without_steps": {`ensemble_scheduling: must be set when platform is "ensemble"`},
	"sequence_control_pair":           {"sequence_batching.control_input[0].control[0].int32_false_true: must have exactly 2 entries [false, true], got 3"},
	"warmup_path_escape":              {`model_warmup[0].inputs["x"].input_data_file: "../../../etc/passwd" must be a relative path`},
	"model_file_escape":               {`default_model_filename: "/etc/passwd" must be a relative path`},
	"model_file_dotdot":               {`default_model_filename: "../../../../etc/shadow" must be a relative path inside the version directory, one file name: it must not contain '/'`},
	"model_file_subdir":               {`default_model_filename: "sub/model.onnx" must be a relative path inside the version directory, one file name: it must not contain '/'`},
	"invalid_utf8":                    {"syntax error (line 2:7): invalid UTF-8"},
}

func TestBadConfigs(t *testing.T) {
	files := loadDir(t, "bad", ".bad.pbtxt")
	for name := range files {
		if _, ok := badConfigs[name]; !ok {
			t.Errorf("testdata/bad/%s.bad.pbtxt has no expected error in badConfigs", name)
		}
	}
	for name, wants := range badConfigs {
		t.Run(name, func(t *testing.T) {
			text, ok := files[name]
			if !ok {
				t.Fatalf("testdata/bad/%s.bad.pbtxt is missing", name)
			}
			err := parseAndCheck(text, name)
			if err == nil {
				t.Fatalf("%s: no error, want %q", name, wants)
			}
			for _, want := range wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s: err =\n%v\nwant it to contain %q", name, err, want)
				}
			}
		})
	}
}

func parseAndCheck(text []byte, dir string) error {
	cfg, err := Parse(text)
	if err != nil {
		return err
	}
	SetDefaults(cfg, dir)
	return Validate(cfg, dir)
}

func TestParseErrorUnwrapsToProtoError(t *testing.T) {
	_, err := Parse([]byte("bogus: 1"))
	if !errors.Is(err, proto.Error) {
		t.Errorf("Parse(bogus) err = %v, want one wrapping proto.Error", err)
	}
	if strings.Contains(err.Error(), "proto:") {
		t.Errorf("Parse(bogus) err = %q, want the library prefix dropped", err)
	}
}

func TestValidateJoinsEveryError(t *testing.T) {
	cfg, err := Parse([]byte(`
		name: "wrong"
		backend: "onnxruntime"
		max_batch_size: -2
		input [ { name: "a", dims: [ 0 ] }, { name: "a", data_type: TYPE_FP32, dims: [ 1 ] } ]
		instance_group [ { count: -3 } ]`))
	if err != nil {
		t.Fatal(err)
	}
	err = Validate(cfg, "m")
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate err = %v (%T), want errors.Join of field errors", err, err)
	}
	var fields []string
	for _, e := range joined.Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Errorf("error %q is not a *FieldError", e)
			continue
		}
		fields = append(fields, fe.Field)
	}
	want := []string{"name", "max_batch_size", `input["a"].data_type`, `input["a"].dims[0]`, `input["a"]`, "output", "instance_group[0].count"}
	if strings.Join(fields, " | ") != strings.Join(want, " | ") {
		t.Errorf("Validate fields =\n%q\nwant\n%q\nerr:\n%v", fields, want, err)
	}
}

func TestHasMaxBatchSize(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       bool
	}{
		{"set to zero", "max_batch_size: 0", true},
		{"set", "name: \"m\"\nmax_batch_size : 8\n", true},
		{"no space", "max_batch_size:0", true},
		{"absent", `name: "m" backend: "onnxruntime"`, false},
		{"empty", "", false},
		{"only in a comment", "# max_batch_size: 8\nname: \"m\"", false},
		{"only inside a string", `name: "max_batch_size: 8"`, false},
		{"after nested messages", "dynamic_batching { preferred_batch_size: 1 }\nmax_batch_size: 0 # no batching", true},
		{"text that does not parse", "max_batch_size: 0 bogus: 1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HasMaxBatchSize([]byte(tc.text)); got != tc.want {
				t.Errorf("HasMaxBatchSize(%q) = %v, want %v", tc.text, got, tc.want)
			}
		})
	}
}

func TestParseJSON(t *testing.T) {
	for _, tc := range []struct{ name, in, wantErr string }{
		{"int64 as numbers", `{"name":"m","max_batch_size":8,"input":[{"name":"x","data_type":"TYPE_FP32","dims":[3,-1]}]}`, ""},
		{"int64 as strings", `{"input":[{"name":"x","dims":["3","-1"]}],"dynamic_batching":{"max_queue_delay_microseconds":"100"}}`, ""},
		{"enum as number", `{"input":[{"name":"x","data_type":11}]}`, ""},
		{"unknown field", `{"name":"m","max_batch":8}`, `config JSON: (line 1:13): unknown field "max_batch"`},
		{"unknown nested field", `{"input":[{"name":"x","shape":[1]}]}`, `unknown field "shape"`},
		{"bad enum", `{"input":[{"data_type":"TYPE_FLOAT"}]}`, `invalid value for enum field`},
		{"not JSON", `name: "m"`, "config JSON: syntax error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJSON([]byte(tc.in))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("ParseJSON(%s) err = %v, want nil", tc.in, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("ParseJSON(%s) err = %v, want %q", tc.in, err, tc.wantErr)
			}
		})
	}
}

func TestHasMaxBatchSizeJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`{"max_batch_size":0}`, true},
		{`{"max_batch_size":"8"}`, true},
		{`{"maxBatchSize":0}`, true},
		{`{"name":"max_batch_size"}`, false},
		{`{}`, false},
		{`not json`, false},
	} {
		if got := HasMaxBatchSizeJSON([]byte(tc.in)); got != tc.want {
			t.Errorf("HasMaxBatchSizeJSON(%s) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestNilConfig(t *testing.T) {
	if err := Validate(nil, "m"); err == nil {
		t.Error("Validate(nil) err = nil, want an error")
	}
	if err := AutoComplete(nil, IO{}, false); err == nil {
		t.Error("AutoComplete(nil) err = nil, want an error")
	}
	if _, err := MarshalJSON(nil); err == nil {
		t.Error("MarshalJSON(nil) err = nil, want an error")
	}
	SetDefaults(nil, "m") // must not panic
}

func TestAdaptiveBatchingParameter(t *testing.T) {
	base := "name: \"m\"\nbackend: \"onnxruntime\"\nmax_batch_size: 8\n" +
		"input [ { name: \"x\", data_type: TYPE_FP32, dims: [ 1 ] } ]\noutput [ { name: \"y\", data_type: TYPE_FP32, dims: [ 1 ] } ]\n" +
		"dynamic_batching { max_queue_delay_microseconds: 5000 }\n"
	for _, tc := range []struct {
		param    string
		adaptive bool
		err      string
	}{
		{"", true, ""},
		{`parameters { key: "adaptive_batching" value { string_value: "false" } }`, false, ""},
		{`parameters { key: "adaptive_batching" value { string_value: "true" } }`, true, ""},
		{`parameters { key: "adaptive_batching" value { string_value: "off" } }`, true, `parameters["adaptive_batching"]: must be "true" or "false", got "off"`},
	} {
		cfg, err := Parse([]byte(base + tc.param))
		if err != nil {
			t.Fatal(err)
		}
		if got := AdaptiveBatching(cfg); got != tc.adaptive {
			t.Errorf("%q: AdaptiveBatching = %v, want %v", tc.param, got, tc.adaptive)
		}
		err = Validate(cfg, "m")
		if (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("%q: Validate = %v, want %q", tc.param, err, tc.err)
		}
	}
}
