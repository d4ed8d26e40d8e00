package onnx

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/modelconfig"
)

func TestONNXOptionsReadTritonParameters(t *testing.T) {
	params := func(kv ...string) string {
		var b strings.Builder
		for i := 0; i < len(kv); i += 2 {
			b.WriteString(`parameters { key: "` + kv[i] + `" value: { string_value: "` + kv[i+1] + `" } }` + "\n")
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, config string
		flag         int
		sharedCores  bool // want IntraOpThreads from modelconfig.CoresPerInstance
		budgeted     bool // the server has a memory budget
		want         SessionOptions
		wantErr      string
	}{
		{name: "nothing set: the cores shared among instances", config: `instance_group [ { count: 2 } ]`, sharedCores: true},
		{name: "the flag when the model says nothing", flag: 3, want: SessionOptions{IntraOpThreads: 3}},
		{name: "the model over the flag", flag: 3, config: params("intra_op_thread_count", "1"),
			want: SessionOptions{IntraOpThreads: 1}},
		{name: "every Triton option", config: params(
			"intra_op_thread_count", "2", "inter_op_thread_count", "4", "execution_mode", "1",
			"enable_mem_arena", "0", "enable_mem_pattern", "false",
			"session.intra_op.spin_duration_us", "100", "other_backend_option", "x",
		) + `optimization { graph { level: 1 } }`,
			want: SessionOptions{IntraOpThreads: 2, InterOpThreads: 4, Parallel: true,
				NoMemArena: true, NoMemPattern: true, Optimization: OptimizeExtended,
				Config: map[string]string{"session.intra_op.spin_duration_us": "100"}}},
		{name: "memory options on", config: params("enable_mem_arena", "1", "enable_mem_pattern", "true", "intra_op_thread_count", "1"),
			want: SessionOptions{IntraOpThreads: 1}},
		{name: "under a memory budget the arena is off by default", budgeted: true, config: params("intra_op_thread_count", "1"),
			want: SessionOptions{IntraOpThreads: 1, NoMemArena: true}},
		{name: "under a memory budget a model may ask for the arena", budgeted: true, config: params("intra_op_thread_count", "1", "enable_mem_arena", "1"),
			want: SessionOptions{IntraOpThreads: 1}},
		{name: "basic optimization", config: params("intra_op_thread_count", "1") + `optimization { graph { level: -1 } }`,
			want: SessionOptions{IntraOpThreads: 1, Optimization: OptimizeBasic}},
		{name: "no optimization", config: params("intra_op_thread_count", "1") + `optimization { graph { level: 2 } }`,
			want: SessionOptions{IntraOpThreads: 1, Optimization: OptimizeNone}},
		{name: "threads not a number", config: params("intra_op_thread_count", "two"), wantErr: `parameters["intra_op_thread_count"]: must be a whole number >= 0, got "two"`},
		{name: "negative threads", config: params("inter_op_thread_count", "-1"), wantErr: `parameters["inter_op_thread_count"]: must be a whole number >= 0, got "-1"`},
		{name: "unknown mode", config: params("execution_mode", "2"), wantErr: `parameters["execution_mode"]: must be 0 (sequential) or 1 (parallel), got "2"`},
		{name: "arena not a flag", config: params("enable_mem_arena", "yes"), wantErr: `parameters["enable_mem_arena"]: must be true or false (or 1 or 0), got "yes"`},
		{name: "spinning as ONNX Runtime reads it", config: params("intra_op_thread_count", "1", "session.intra_op.allow_spinning", "true"),
			want: SessionOptions{IntraOpThreads: 1, Config: map[string]string{"session.intra_op.allow_spinning": "1"}}},
		{name: "spinning not a flag", config: params("session.intra_op.allow_spinning", "on"), wantErr: `parameters["session.intra_op.allow_spinning"]: must be true or false (or 1 or 0), got "on"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := modelconfig.Parse([]byte(tc.config))
			if err != nil {
				t.Fatal(err)
			}
			got, err := OptionsFromConfig(cfg, tc.flag, !tc.budgeted)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.sharedCores {
				tc.want.IntraOpThreads = modelconfig.CoresPerInstance(cfg)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
