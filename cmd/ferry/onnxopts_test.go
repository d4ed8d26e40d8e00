package main

import (
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/repository"
	"github.com/ferryml/ferry/tools/onnxgen"
)

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
