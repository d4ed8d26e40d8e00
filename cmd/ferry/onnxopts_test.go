package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/repository"
	"github.com/ferryml/ferry/tools/onnxgen"
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
		want         onnx.SessionOptions
		wantErr      string
	}{
		{name: "nothing set: the cores shared among instances", config: `instance_group [ { count: 2 } ]`, sharedCores: true},
		{name: "the flag when the model says nothing", flag: 3, want: onnx.SessionOptions{IntraOpThreads: 3}},
		{name: "the model over the flag", flag: 3, config: params("intra_op_thread_count", "1"),
			want: onnx.SessionOptions{IntraOpThreads: 1}},
		{name: "every Triton option", config: params(
			"intra_op_thread_count", "2", "inter_op_thread_count", "4", "execution_mode", "1",
			"enable_mem_arena", "0", "enable_mem_pattern", "false",
			"session.intra_op.spin_duration_us", "100", "other_backend_option", "x",
		) + `optimization { graph { level: 1 } }`,
			want: onnx.SessionOptions{IntraOpThreads: 2, InterOpThreads: 4, Parallel: true,
				NoMemArena: true, NoMemPattern: true, Optimization: onnx.OptimizeExtended,
				Config: map[string]string{"session.intra_op.spin_duration_us": "100"}}},
		{name: "memory options on", config: params("enable_mem_arena", "1", "enable_mem_pattern", "true", "intra_op_thread_count", "1"),
			want: onnx.SessionOptions{IntraOpThreads: 1}},
		{name: "under a memory budget the arena is off by default", budgeted: true, config: params("intra_op_thread_count", "1"),
			want: onnx.SessionOptions{IntraOpThreads: 1, NoMemArena: true}},
		{name: "under a memory budget a model may ask for the arena", budgeted: true, config: params("intra_op_thread_count", "1", "enable_mem_arena", "1"),
			want: onnx.SessionOptions{IntraOpThreads: 1}},
		{name: "basic optimization", config: params("intra_op_thread_count", "1") + `optimization { graph { level: -1 } }`,
			want: onnx.SessionOptions{IntraOpThreads: 1, Optimization: onnx.OptimizeBasic}},
		{name: "no optimization", config: params("intra_op_thread_count", "1") + `optimization { graph { level: 2 } }`,
			want: onnx.SessionOptions{IntraOpThreads: 1, Optimization: onnx.OptimizeNone}},
		{name: "threads not a number", config: params("intra_op_thread_count", "two"), wantErr: `parameters["intra_op_thread_count"]: must be a whole number >= 0, got "two"`},
		{name: "negative threads", config: params("inter_op_thread_count", "-1"), wantErr: `parameters["inter_op_thread_count"]: must be a whole number >= 0, got "-1"`},
		{name: "unknown mode", config: params("execution_mode", "2"), wantErr: `parameters["execution_mode"]: must be 0 (sequential) or 1 (parallel), got "2"`},
		{name: "arena not a flag", config: params("enable_mem_arena", "yes"), wantErr: `parameters["enable_mem_arena"]: must be true or false (or 1 or 0), got "yes"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := modelconfig.Parse([]byte(tc.config))
			if err != nil {
				t.Fatal(err)
			}
			got, err := onnxOptions(cfg, tc.flag, !tc.budgeted)
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

// TestONNXOptionsReachTheSession: a model tuned with every option serves the same
// outputs as the plain one, and a bad option leaves its model UNAVAILABLE, the reason
// naming the parameter, while the others serve.
func TestONNXOptionsReachTheSession(t *testing.T) {
	repo := t.TempDir()
	tuned := strings.Replace(simpleConfig, `name: "simple"`, `name: "tuned"`, 1) + `
parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
parameters { key: "inter_op_thread_count" value: { string_value: "1" } }
parameters { key: "execution_mode" value: { string_value: "1" } }
parameters { key: "enable_mem_arena" value: { string_value: "0" } }
parameters { key: "enable_mem_pattern" value: { string_value: "0" } }
parameters { key: "session.intra_op.allow_spinning" value: { string_value: "1" } }
optimization { graph { level: 2 } }
`
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
	writeModel(t, repo, "tuned", 1, onnxgen.Simple(), tuned)
	writeModel(t, repo, "badmode", 1, onnxgen.Simple(), strings.Replace(simpleConfig, `name: "simple"`, `name: "badmode"`, 1)+
		`parameters { key: "execution_mode" value: { string_value: "fast" } }`)
	// ONNX Runtime itself rejects this session entry's value: proof that entries reach it.
	writeModel(t, repo, "badentry", 1, onnxgen.Simple(), strings.Replace(simpleConfig, `name: "simple"`, `name: "badentry"`, 1)+
		`parameters { key: "session.intra_op_thread_affinities" value: { string_value: "not;affinities" } }`+
		`parameters { key: "intra_op_thread_count" value: { string_value: "2" } }`)
	ts := startServer(t, repo)

	index := repositoryIndex(t, ts.URL)
	want := map[string]string{"simple": "", "tuned": "", "badmode": "execution_mode", "badentry": "Processor id"}
	for _, e := range index {
		reason, ok := want[e.Name]
		if !ok {
			continue
		}
		delete(want, e.Name)
		if reason == "" && e.State != "READY" {
			t.Errorf("%s: %s (%s), want READY", e.Name, e.State, e.Reason)
		}
		if reason != "" && (e.State != "UNAVAILABLE" || !strings.Contains(e.Reason, reason)) {
			t.Errorf("%s: %s (%s), want UNAVAILABLE naming %q", e.Name, e.State, e.Reason, reason)
		}
	}
	if len(want) != 0 {
		t.Errorf("index lacks %v: %+v", want, index)
	}
	_, _, plain := httpDo(t, "POST", ts.URL+"/v2/models/simple/infer", "application/json", strings.NewReader(simpleBody(2)))
	code, _, got := httpDo(t, "POST", ts.URL+"/v2/models/tuned/infer", "application/json", strings.NewReader(simpleBody(2)))
	if code != 200 {
		t.Fatalf("tuned infer: %d %s", code, got)
	}
	if g, p := strings.ReplaceAll(string(got), `"tuned"`, `"simple"`), string(plain); g != p {
		t.Errorf("tuned answered\n%s\nplain answered\n%s", g, p)
	}
}

func TestServeRefusesNegativeIntraOpThreads(t *testing.T) {
	cfg := serveConfig{limits: core.DefaultLimits(), intraOp: -1, mode: string(repository.ModeNone)}
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "--onnx-intra-op-threads: must be >= 0, got -1") {
		t.Errorf("validate() = %v, want the flag named", err)
	}
	cfg.intraOp = 0
	if err := cfg.validate(); err != nil {
		t.Errorf("validate() of the defaults = %v", err)
	}
}
