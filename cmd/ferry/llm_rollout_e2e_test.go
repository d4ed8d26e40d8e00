package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/rollout"
	"github.com/ferryml/ferry/internal/router"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// Rollouts of LLM models (issue 20): the registry's routing, canaries and shadows on
// /v1 traffic alone. Real ONNX Runtime, real sockets, the registry on SQLite.
//
// Model "gpt" has three versions of a small GPT: 1 and 2 differ in their weights' seed,
// so their greedy answers differ; 3 is a decoder exported for one token at a time
// (oneTokenDecoder): it loads, since the engine's probe at open runs one token, and
// every prompt fails in ONNX Runtime when it runs, a 500. "ref1" and "ref2" hold
// versions 1 and 2 alone: what each version answers, asked without any routing.
const gptConfig = `backend: "llm"
parameters { key: "tokenizer" value { string_value: "r50k_base" } }
parameters { key: "context_length" value { string_value: "128" } }
parameters { key: "max_num_seqs" value { string_value: "4" } }
parameters { key: "threads" value { string_value: "1" } }
`

func smallGPT(seed uint64) []byte {
	return onnxgen.GPT(onnxgen.GPTConfig{Layers: 1, Heads: 2, Dim: 32, Vocab: 50257, MaxPos: 128, LastLogitsOnly: true, HiddenStates: true, Seed: seed})
}

// oneTokenDecoder meets the decoder contract (one layer, one head of width 1, GPT-2's
// vocabulary) but reshapes its logits to [1, 1, vocab], as a model exported for
// single-token decoding would: a run of one token works, and a prompt's prefill (more
// than one token) fails in ONNX Runtime.
func oneTokenDecoder() []byte {
	const vocab = 50257
	kv := func(name, seq string) (string, onnxgen.DataType, onnxgen.Dim, onnxgen.Dim, onnxgen.Dim, onnxgen.Dim) {
		return name, onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Fixed(1), onnxgen.Sym(seq), onnxgen.Fixed(1)
	}
	m := onnxgen.NewModel("gpt").
		Input("input_ids", onnxgen.Int64, onnxgen.Sym("batch"), onnxgen.Sym("seq")).
		Input("attention_mask", onnxgen.Int64, onnxgen.Sym("batch"), onnxgen.Sym("total")).
		Input("position_ids", onnxgen.Int64, onnxgen.Sym("batch"), onnxgen.Sym("seq"))
	m.Input(kv("past_key_values.0.key", "past")).Input(kv("past_key_values.0.value", "past"))
	m.InitializerFloat32("E", []int64{vocab, 1, 1}, make([]float32, vocab)).
		InitializerFloat32("BIAS", []int64{vocab}, make([]float32, vocab)).
		InitializerFloat32("ZERO", []int64{}, []float32{0}).
		InitializerInt64("AXIS2", []int64{1}, []int64{2}).
		InitializerInt64("ONE_TOKEN", []int64{3}, []int64{1, 1, vocab}).
		Node("Gather", []string{"E", "input_ids"}, []string{"emb"}).                               // [batch, seq, 1, 1]
		Node("Transpose", []string{"emb"}, []string{"new"}, onnxgen.AttrInts("perm", 0, 2, 1, 3)). // [batch, 1, seq, 1]
		Node("Concat", []string{"past_key_values.0.key", "new"}, []string{"present.0.key"}, onnxgen.AttrInt("axis", 2)).
		Node("Concat", []string{"past_key_values.0.value", "new"}, []string{"present.0.value"}, onnxgen.AttrInt("axis", 2)).
		Node("Cast", []string{"input_ids"}, []string{"ids"}, onnxgen.AttrInt("to", 1)). // FP32
		Node("Unsqueeze", []string{"ids", "AXIS2"}, []string{"ids3"}).                  // [batch, seq, 1]
		Node("Mul", []string{"ids3", "ZERO"}, []string{"zeros"}).
		Node("Add", []string{"zeros", "BIAS"}, []string{"all"}).          // [batch, seq, vocab]
		Node("Reshape", []string{"all", "ONE_TOKEN"}, []string{"logits"}) // fails past one token
	m.Output("logits", onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Sym("seq"), onnxgen.Fixed(vocab))
	return m.Output(kv("present.0.key", "total")).Output(kv("present.0.value", "total")).Bytes()
}

// startLLMPlatform serves the gpt repository with a registry in a fresh data folder.
func startLLMPlatform(t *testing.T) (*testServer, *platform) {
	repo := t.TempDir()
	writeModel(t, repo, "gpt", 1, smallGPT(1), gptConfig)
	writeModel(t, repo, "gpt", 2, smallGPT(2), "")
	writeModel(t, repo, "gpt", 3, oneTokenDecoder(), "")
	writeModel(t, repo, "ref1", 1, smallGPT(1), gptConfig)
	writeModel(t, repo, "ref2", 1, smallGPT(2), gptConfig)
	ts := startServer(t, repo, withDataDir(t.TempDir()))
	if ts.plat == nil {
		t.Fatal("no platform with --data-dir")
	}
	return ts, ts.plat
}

const gptPrompt = "Tell me about ferries"

// chat sends one greedy chat for 6 tokens with the given headers (name, value, ...).
func chat(ctx context.Context, url, model string, header ...string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/chat/completions", strings.NewReader(chatBody(model, gptPrompt, 6, false)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var a chatAnswer
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("chat: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || len(a.Choices) != 1 {
		return "", fmt.Errorf("chat answer: %v", err)
	}
	return a.Choices[0].Message.Content, nil
}

// versionTexts is what versions 1 and 2 answer gptPrompt, by version, asked of ref1 and ref2.
func versionTexts(t *testing.T, ts *testServer) map[string]string {
	t.Helper()
	texts := map[string]string{}
	for v, ref := range map[string]string{"1": "ref1", "2": "ref2"} {
		text, err := chat(t.Context(), ts.URL, ref)
		if err != nil {
			t.Fatal(err)
		}
		texts[v] = text
	}
	if texts["1"] == texts["2"] {
		t.Fatalf("versions 1 and 2 both answer %q: the test cannot tell them apart", texts["1"])
	}
	return texts
}

// embedding is model's vector for gptPrompt, asked with the header x-model-version
// set to header (none when "").
func embedding(t *testing.T, ts *testServer, model, header string) []float64 {
	t.Helper()
	var hdr []string
	if header != "" {
		hdr = []string{"X-Model-Version", header}
	}
	code, _, body := httpDo(t, "POST", ts.URL+"/v1/embeddings", "application/json", strings.NewReader(`{"model":"`+model+`","input":"`+gptPrompt+`"}`), hdr...)
	var e struct {
		Data []struct{ Embedding []float64 }
	}
	if code != http.StatusOK || json.Unmarshal(body, &e) != nil || len(e.Data) != 1 || len(e.Data[0].Embedding) < 4 {
		t.Fatalf("embeddings of %s: %d %s", model, code, body)
	}
	return e.Data[0].Embedding
}

// sendChats has clients chat with gpt until stopped; each answer is attributed to the
// version whose text it is (an answer no version gives is a failure).
func sendChats(ts *testServer, clients int, texts map[string]string) *clientLoad {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &clientLoad{stop: cancel}
	for range clients {
		tr.wg.Go(func() {
			for ctx.Err() == nil {
				a := answer{start: time.Now()}
				text, err := chat(ctx, ts.URL, "gpt")
				a.end = time.Now()
				if ctx.Err() != nil {
					return // stopped mid-request: not the server's doing
				}
				a.err = err
				for v, want := range texts {
					if err == nil && text == want {
						a.version = v
					}
				}
				if err == nil && a.version == "" {
					a.err = fmt.Errorf("answer %q is no version's", text)
				}
				tr.add(a)
				if a.err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	return tr
}

// setPolicy sets gpt's endpoint policy.
func setPolicy(t *testing.T, p *platform, pol *router.Policy) {
	t.Helper()
	if err := p.SetPolicy(context.Background(), "gpt", pol); err != nil {
		t.Fatal(err)
	}
}

// llmOnVersion1 serves the gpt repository with every request on version 1 and four
// clients chatting with gpt, which have had their first answers. (On two shared cores
// under -race an answer takes up to a few hundred milliseconds: analysis intervals
// are seconds long so that each has its minimum samples.)
func llmOnVersion1(t *testing.T) (*testServer, *platform, *clientLoad) {
	ts, p := startLLMPlatform(t)
	texts := versionTexts(t, ts)
	setPolicy(t, p, &router.Policy{Arms: []router.Arm{{Version: "1", Weight: 100}}})
	tr := sendChats(ts, 4, texts)
	tr.waitAnswers(t, 20)
	return ts, p, tr
}

// TestLLMRoutingByPolicy: an endpoint policy sending everything to version 2 makes /v1
// answer with version 2's text and embeddings; a header match sends a request to
// version 1; a policy naming a version with no folder is refused before traffic moves.
func TestLLMRoutingByPolicy(t *testing.T) {
	ts, p := startLLMPlatform(t)
	texts := versionTexts(t, ts)
	setPolicy(t, p, &router.Policy{Arms: []router.Arm{{Version: "2", Weight: 100}},
		Matches: []router.Match{{From: router.SourceHeader, Key: "x-model-version", Value: "one", Version: "1"}}})
	for range 5 {
		if got, err := chat(t.Context(), ts.URL, "gpt"); err != nil || got != texts["2"] {
			t.Fatalf("policy 100%% to 2: %q, %v; want version 2's %q", got, err, texts["2"])
		}
		if got, err := chat(t.Context(), ts.URL, "gpt", "X-Model-Version", "one"); err != nil || got != texts["1"] {
			t.Fatalf("header match to 1: %q, %v; want version 1's %q", got, err, texts["1"])
		}
	}
	if fmt.Sprint(embedding(t, ts, "ref1", "")) == fmt.Sprint(embedding(t, ts, "ref2", "")) {
		t.Fatal("versions 1 and 2 embed alike: the test cannot tell them apart")
	}
	for _, tc := range []struct{ ref, header string }{{"ref2", ""}, {"ref1", "one"}} {
		want, got := embedding(t, ts, tc.ref, ""), embedding(t, ts, "gpt", tc.header)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("embedding of gpt with header %q: %v, want %s's %v", tc.header, got[:4], tc.ref, want[:4])
		}
	}
	err := p.SetPolicy(context.Background(), "gpt", &router.Policy{Arms: []router.Arm{{Version: "9", Weight: 100}}})
	if err == nil || !strings.Contains(err.Error(), "9") {
		t.Errorf("a policy to a version with no folder: %v, want an error naming it", err)
	}
	if got, err := chat(t.Context(), ts.URL, "gpt"); err != nil || got != texts["2"] {
		t.Errorf("after the refused policy: %q, %v; want version 2's %q still", got, err, texts["2"])
	}
}

// TestLLMCanaryPromotes: `ferry rollout start` on an LLM model takes /v1 traffic
// through its steps to promotion with no failed request, and leaves it all on the
// candidate.
func TestLLMCanaryPromotes(t *testing.T) {
	ts, p, tr := llmOnVersion1(t)
	mustCLI(t, ts.URL, "rollout", "start", "gpt", "--candidate", "2", "--steps", "50,100", "--interval", "3s", "--min-samples", "3", "--max-error-rate", "0.01")
	st := waitRollout(t, p, "gpt", 90*time.Second, rollout.Succeeded, rollout.Aborted)
	done := time.Now()
	tr.waitAnswers(t, 20)
	as := tr.end()
	by := wantNoFailures(t, "canary", as)
	if st.State != rollout.Succeeded || st.Weights["2"] != 100 {
		t.Fatalf("rollout ended %s (%s) with %v, want Succeeded with 2 at 100", st.State, st.Reason, st.Weights)
	}
	if by["1"] == 0 || by["2"] == 0 {
		t.Errorf("answers by version %v, want both", by)
	}
	if after, _ := answersBy(startedAfter(as, done)); after["1"] > 0 || after["2"] == 0 {
		t.Errorf("after the promotion %v, want only version 2", after)
	}
}

// TestLLMFailingCandidateRollsBack: a candidate whose requests fail when they run is
// rolled back by the analysis of /v1 traffic, and gets no request after.
func TestLLMFailingCandidateRollsBack(t *testing.T) {
	_, p, tr := llmOnVersion1(t)
	r := rollout.Rollout{Endpoint: "gpt", Candidate: "3",
		Strategy: rollout.Strategy{Canary: &rollout.Canary{Steps: []int{30, 100}, Interval: rollout.Duration(time.Second)}},
		Analysis: rollout.Analysis{Interval: rollout.Duration(time.Second), MinSamples: 3, Metrics: []rollout.Metric{{Name: rollout.ErrorRate, Max: ptr(0.01)}}},
		Limits:   rollout.Limits{ScaleDownDelay: rollout.Duration(time.Second), AbortScaleDownDelay: rollout.Duration(time.Second)}}
	if err := p.StartRollout(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	st := waitRollout(t, p, "gpt", 60*time.Second, rollout.Aborting, rollout.Aborted, rollout.Succeeded)
	stable := time.Now()
	if st.State == rollout.Succeeded || st.Weights["3"] != 0 || st.Weights["1"] != 100 {
		t.Fatalf("failing candidate: rollout %s (%s) with %v, want aborted with 1 at 100", st.State, st.Reason, st.Weights)
	}
	t.Logf("rolled back: %s", st.Reason)
	// Answers are counted from 50 ms after the rollback (requests already routed may
	// still reach the candidate); thirty answers can all come sooner than that.
	time.Sleep(time.Until(stable.Add(50 * time.Millisecond)))
	tr.waitAnswers(t, 30)
	as := tr.end()
	_, failed := answersBy(as)
	if len(failed) == 0 {
		t.Fatal("no request failed on the candidate: the test did not exercise a failing version")
	}
	first := failed[0].end
	for _, a := range failed {
		if a.end.Before(first) {
			first = a.end
		}
		if !strings.Contains(a.err.Error(), "status 500") {
			t.Errorf("a failed request: %v, want the candidate's 500", a.err)
		}
	}
	// The analysis needs one failed measurement (failureLimit 0): one interval, plus
	// the time to apply the abort; a loaded machine gets twice that.
	took, limit := stable.Sub(first), 2*(r.Analysis.Interval.D()+time.Second)
	t.Logf("all traffic back on version 1 %v after the candidate's first failed answer (limit %v); %d requests failed", took.Round(time.Millisecond), limit, len(failed))
	if took > limit {
		t.Errorf("rolled back %v after the first failed answer, want within %v", took, limit)
	}
	after, failed := answersBy(startedAfter(as, stable.Add(50*time.Millisecond)))
	if len(failed) > 0 || after["1"] == 0 {
		t.Errorf("after the rollback %v answered by version, %d failures; want everything on 1", after, len(failed))
	}
}

// TestLLMShadow: with a shadow of every request on version 2, clients see only
// version 1's answers, and the copies reach version 2: the metrics count them by route
// and compare their texts with the primary's (different seeds: a difference of 1).
func TestLLMShadow(t *testing.T) {
	ts, p := startLLMPlatform(t)
	texts := versionTexts(t, ts)
	setPolicy(t, p, &router.Policy{Arms: []router.Arm{{Version: "1", Weight: 100}}, Shadow: &router.Shadow{Version: "2", Percent: 100}})
	tr := sendChats(ts, 2, texts)
	tr.waitAnswers(t, 40)
	by := wantNoFailures(t, "shadow", tr.end())
	if len(by) != 1 || by["1"] == 0 {
		t.Fatalf("clients saw versions %v, want only 1", by)
	}
	var m schedMetrics
	deadline := time.Now().Add(10 * time.Second)
	for {
		m = schedScrape(t, ts)
		ran := m.get("ferry_shadow_requests_total", "model", "gpt", "version", "2", "outcome", "ok")
		dropped := m.get("ferry_llm_shadow_dropped_total")
		if ran > 0 && ran+dropped >= float64(by["1"]) || time.Now().After(deadline) {
			t.Logf("%d requests: %v shadow copies ran on version 2, %v dropped", by["1"], ran, dropped)
			if ran < float64(by["1"])/2 {
				t.Errorf("%v shadow copies ran on version 2, want most of %d", ran, by["1"])
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := m.get("ferry_routed_requests_total", "model", "gpt", "version", "1", "route", "weight"); n < float64(by["1"]) {
		t.Errorf("%v requests routed by weight to version 1, want %d", n, by["1"])
	}
	if c, le1 := m.get("ferry_shadow_output_difference_count", "model", "gpt", "version", "2"), m.get("ferry_shadow_output_difference_bucket", "model", "gpt", "version", "2", "le", "1"); c == 0 || c != le1 || m.get("ferry_shadow_output_difference_bucket", "model", "gpt", "version", "2", "le", "0.1") != 0 {
		t.Errorf("output differences: %v compared, %v at most 1; want all exactly 1", c, le1)
	}
}

// TestLLMShadowThenCanary: `ferry rollout --preset shadow-then-canary` on an LLM model
// first mirrors /v1 traffic to the candidate, judging it by its copies alone (clients
// see only the stable version meanwhile), then canaries it to promotion.
func TestLLMShadowThenCanary(t *testing.T) {
	ts, p, tr := llmOnVersion1(t)
	mustCLI(t, ts.URL, "rollout", "start", "gpt", "--candidate", "2", "--preset", "shadow-then-canary", "--mirror-duration", "3s",
		"--steps", "100", "--interval", "3s", "--min-samples", "3", "--max-error-rate", "0.01")
	waitRollout(t, p, "gpt", 30*time.Second, rollout.Mirroring)
	mirrored := time.Now()
	st := waitRollout(t, p, "gpt", 90*time.Second, rollout.Progressing, rollout.FinalBake, rollout.Succeeded, rollout.Aborted)
	canaried := time.Now()
	if st.State == rollout.Aborted {
		t.Fatalf("rollout aborted while mirroring: %s", st.Reason)
	}
	st = waitRollout(t, p, "gpt", 90*time.Second, rollout.Succeeded, rollout.Aborted)
	as := tr.end()
	wantNoFailures(t, "shadow then canary", as)
	if st.State != rollout.Succeeded || st.Weights["2"] != 100 {
		t.Fatalf("rollout ended %s (%s) with %v, want Succeeded with 2 at 100", st.State, st.Reason, st.Weights)
	}
	var whileMirrored []answer
	for _, a := range startedAfter(as, mirrored) {
		if a.end.Before(canaried.Add(-200 * time.Millisecond)) { // waitRollout sees the change up to a poll late
			whileMirrored = append(whileMirrored, a)
		}
	}
	if by, _ := answersBy(whileMirrored); by["2"] > 0 || by["1"] == 0 {
		t.Errorf("clients while mirroring saw %v, want only version 1", by)
	}
	if n := schedScrape(t, ts).get("ferry_shadow_requests_total", "model", "gpt", "version", "2"); n < 3 {
		t.Errorf("%v shadow copies reached version 2, want the mirror phase's", n)
	}
}

// TestLLMPollMovesTheDefault: in poll mode a newer version folder of a native model
// becomes what requests naming no version get, as for V2 models, while clients keep
// sending: none fails, and once one answer comes from the new version every request
// sent after it does too.
func TestLLMPollMovesTheDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("loads several LLM engines")
	}
	repo := t.TempDir()
	writeModel(t, repo, "gpt", 1, smallGPT(1), gptConfig)
	writeModel(t, repo, "ref1", 1, smallGPT(1), gptConfig)
	writeModel(t, repo, "ref2", 1, smallGPT(2), gptConfig)
	ts := startServer(t, repo, func(c *serveConfig) { c.mode, c.pollInterval = "poll", 50*time.Millisecond })
	texts := versionTexts(t, ts)
	load := sendChats(ts, 3, texts)
	load.waitAnswers(t, 10)
	writeModel(t, repo, "gpt", 2, smallGPT(2), "") // written while polls run: one may see it half-written
	deadline := time.Now().Add(30 * time.Second)
	for {
		if text, err := chat(t.Context(), ts.URL, "gpt"); err == nil && text == texts["2"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("requests still answered by version 1 30s after version 2 was written")
		}
		time.Sleep(20 * time.Millisecond)
	}
	load.waitAnswers(t, 10)
	answers := load.end()
	wantNoFailures(t, "while version 2 arrived", answers)
	var moved time.Time
	for _, a := range answers {
		if a.version == "2" && (moved.IsZero() || a.end.Before(moved)) {
			moved = a.end
		}
	}
	for _, a := range answers {
		if a.version == "1" && !moved.IsZero() && a.start.After(moved) {
			t.Errorf("a request sent %v after version 2 answered got version 1", a.start.Sub(moved))
		}
	}
}

// TestLLMRepositoryLoad: in explicit mode the repository API's load answers for a
// native LLM model as for a V2 one, moving it to its newest version folder, and unload
// is refused naming why; an LLM folder the lane did not open is refused naming the lane.
func TestLLMRepositoryLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("loads several LLM engines")
	}
	repo := t.TempDir()
	writeModel(t, repo, "gpt", 1, smallGPT(1), gptConfig)
	writeModel(t, repo, "ref2", 1, smallGPT(2), gptConfig)
	ts := startServer(t, repo, withExplicit())
	want2, err := chat(t.Context(), ts.URL, "ref2")
	if err != nil {
		t.Fatal(err)
	}
	writeModel(t, repo, "gpt", 2, smallGPT(2), "")
	writeModel(t, repo, "late", 1, smallGPT(1), gptConfig) // after start: the lane never opened it
	if code, _, body := httpDo(t, http.MethodPost, ts.URL+"/v2/repository/models/gpt/load", "", nil); code != http.StatusOK {
		t.Fatalf("load gpt: %d %s", code, body)
	}
	if got, err := chat(t.Context(), ts.URL, "gpt"); err != nil || got != want2 {
		t.Errorf("gpt after load: %q, %v; want version 2's %q", got, err, want2)
	}
	code, _, body := httpDo(t, http.MethodPost, ts.URL+"/v2/repository/models/gpt/unload", "", nil)
	if code != http.StatusBadRequest || !strings.Contains(string(body), "LLM model served at /v1") {
		t.Errorf("unload gpt: %d %s; want a 400 saying it is an LLM model", code, body)
	}
	code, _, body = httpDo(t, http.MethodPost, ts.URL+"/v2/repository/models/late/load", "", nil)
	if code != http.StatusBadRequest || !strings.Contains(string(body), "LLM lane") {
		t.Errorf("load late: %d %s; want a 400 naming the LLM lane", code, body)
	}
}
