package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// cacheStats is the part of /v2/models/{m}/stats the cache tests read.
type cacheStats struct {
	InferenceCount uint64 `json:"inference_count"`
	ExecutionCount uint64 `json:"execution_count"`
	InferenceStats struct {
		Success   struct{ Count uint64 } `json:"success"`
		CacheHit  struct{ Count uint64 } `json:"cache_hit"`
		CacheMiss struct{ Count uint64 } `json:"cache_miss"`
	} `json:"inference_stats"`
}

func cacheModelStats(t *testing.T, ts *testServer, model string) cacheStats {
	t.Helper()
	code, _, b := httpDo(t, "GET", ts.URL+"/v2/models/"+model+"/stats", "", nil)
	var s struct {
		ModelStats []cacheStats `json:"model_stats"`
	}
	if code != 200 || json.Unmarshal(b, &s) != nil || len(s.ModelStats) != 1 {
		t.Fatalf("stats %s: %d %s", model, code, b)
	}
	return s.ModelStats[0]
}

// cacheMetric reads one sample of /metrics; -1 when it is not there.
func cacheMetric(t *testing.T, ts *testServer, series string) float64 {
	t.Helper()
	_, _, b := httpDo(t, "GET", ts.URL+"/metrics", "", nil)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// cachedSimpleConfig is simple's config under another name, with the response cache on or off.
func cachedSimpleConfig(name string, enable bool) string {
	return strings.Replace(simpleConfig, `name: "simple"`, `name: "`+name+`"`, 1) +
		fmt.Sprintf("response_cache { enable: %v }\n", enable)
}

func withCacheSize(n byteSize) serverOption { return func(c *serveConfig) { c.cacheSize = n } }

// restOutputs returns the "outputs" of a REST infer response, for comparing responses.
func restOutputs(t *testing.T, ts *testServer, model, body string) string {
	t.Helper()
	code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/"+model+"/infer", "application/json", strings.NewReader(body))
	if code != 200 {
		t.Fatalf("infer %s: %d %s", model, code, b)
	}
	var r struct {
		Outputs json.RawMessage `json:"outputs"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return string(r.Outputs)
}

// TestResponseCacheHit: a repeated request is answered from the cache, over REST and
// gRPC alike, with the same outputs and without running the model; /stats and /metrics
// count the hit; other inputs miss.
func TestResponseCacheHit(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "cached", 1, onnxgen.Simple(), cachedSimpleConfig("cached", true))
	writeModel(t, repo, "uncached", 1, onnxgen.Simple(), cachedSimpleConfig("uncached", false))
	ts := startServer(t, repo, withCacheSize(64<<20))

	first := restOutputs(t, ts, "cached", simpleBody(2))
	if again := restOutputs(t, ts, "cached", simpleBody(2)); again != first {
		t.Fatalf("cache hit answered\n%s\nthe run answered\n%s", again, first)
	}
	// The same request over gRPC hits the entry REST stored: the key is the tensors, not the wire.
	res, err := ts.GRPC.ModelInfer(context.Background(), cacheSimpleGRPC("cached", 2))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cacheGRPCInt32s(res, "OUTPUT0"), cacheJSONData(t, first, "OUTPUT0"); got != want {
		t.Fatalf("gRPC hit OUTPUT0 %s, want %s", got, want)
	}
	st := cacheModelStats(t, ts, "cached")
	if st.ExecutionCount != 1 || st.InferenceStats.CacheHit.Count != 2 || st.InferenceStats.CacheMiss.Count != 1 ||
		st.InferenceStats.Success.Count != 3 || st.InferenceCount != 6 {
		t.Fatalf("stats after 1 run + 2 hits: executions %d hits %d misses %d successes %d items %d; want 1 2 1 3 6",
			st.ExecutionCount, st.InferenceStats.CacheHit.Count, st.InferenceStats.CacheMiss.Count, st.InferenceStats.Success.Count, st.InferenceCount)
	}
	for series, want := range map[string]float64{
		`ferry_cache_hits_total{model="cached",version="1"}`:      2,
		`ferry_cache_misses_total{model="cached",version="1"}`:    1,
		`ferry_execution_count_total{model="cached",version="1"}`: 1,
		`ferry_request_success_total{model="cached",version="1"}`: 3,
	} {
		if got := cacheMetric(t, ts, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if b := cacheMetric(t, ts, "ferry_cache_bytes"); b <= 0 || b > 64<<20 {
		t.Errorf("ferry_cache_bytes = %v, want within (0, 64MiB]", b)
	}

	// Other inputs (another batch size, then one changed value) miss and run the model.
	restOutputs(t, ts, "cached", simpleBody(1))
	restOutputs(t, ts, "cached", strings.Replace(simpleBody(1), `"data":[0,`, `"data":[5,`, 1))
	if st := cacheModelStats(t, ts, "cached"); st.ExecutionCount != 3 || st.InferenceStats.CacheMiss.Count != 3 {
		t.Fatalf("after two other requests: executions %d misses %d, want 3 and 3", st.ExecutionCount, st.InferenceStats.CacheMiss.Count)
	}

	// A model that does not enable response_cache runs every request.
	for range 3 {
		restOutputs(t, ts, "uncached", simpleBody(2))
	}
	if st := cacheModelStats(t, ts, "uncached"); st.ExecutionCount != 3 || st.InferenceStats.CacheHit.Count != 0 {
		t.Fatalf("uncached model: executions %d hits %d, want 3 and 0", st.ExecutionCount, st.InferenceStats.CacheHit.Count)
	}
}

// TestResponseCacheOffByDefault: without --cache-size a model that enables the cache
// runs every request, and there is no cache gauge.
func TestResponseCacheOffByDefault(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "cached", 1, onnxgen.Simple(), cachedSimpleConfig("cached", true))
	ts := startServer(t, repo)
	for range 3 {
		restOutputs(t, ts, "cached", simpleBody(1))
	}
	if st := cacheModelStats(t, ts, "cached"); st.ExecutionCount != 3 || st.InferenceStats.CacheHit.Count != 0 || st.InferenceStats.CacheMiss.Count != 0 {
		t.Fatalf("no cache: executions %d hits %d misses %d, want 3 0 0", st.ExecutionCount, st.InferenceStats.CacheHit.Count, st.InferenceStats.CacheMiss.Count)
	}
	if b := cacheMetric(t, ts, "ferry_cache_bytes"); b != -1 {
		t.Errorf("ferry_cache_bytes = %v without a cache, want no such series", b)
	}
}

// TestResponseCacheEviction: with room for two 4000-byte responses, the least recently
// used one is evicted and runs again, and the cache never holds more than its budget.
func TestResponseCacheEviction(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "identity_fp32", 1, onnxgen.Identity(onnxgen.Float, "identity_fp32"), "response_cache { enable: true }\n")
	const budget = 10 << 10 // two entries of 1000 floats (about 4.3 KiB each with overhead) fit, three do not
	ts := startServer(t, repo, withCacheSize(budget))
	body := func(v int) string {
		return fmt.Sprintf(`{"inputs":[{"name":"INPUT0","shape":[1,1000],"datatype":"FP32","data":[%s]}]}`,
			strings.TrimSuffix(strings.Repeat(strconv.Itoa(v)+",", 1000), ","))
	}
	for i, step := range []struct {
		value     int
		wantExecs uint64
	}{
		{1, 1}, // miss: {1}
		{2, 2}, // miss: {2, 1}
		{1, 2}, // hit:  {1, 2}
		{3, 3}, // miss, evicts 2: {3, 1}
		{1, 3}, // hit:  {1, 3}
		{2, 4}, // miss, evicts 3: {2, 1}
		{1, 4}, // hit
		{3, 5}, // miss: 3 was evicted
	} {
		restOutputs(t, ts, "identity_fp32", body(step.value))
		if st := cacheModelStats(t, ts, "identity_fp32"); st.ExecutionCount != step.wantExecs {
			t.Fatalf("step %d (value %d): %d executions, want %d", i, step.value, st.ExecutionCount, step.wantExecs)
		}
		if b := cacheMetric(t, ts, "ferry_cache_bytes"); b <= 0 || b > budget {
			t.Fatalf("step %d: ferry_cache_bytes = %v, want within (0, %d]", i, b, budget)
		}
	}
	st := cacheModelStats(t, ts, "identity_fp32")
	if st.InferenceStats.CacheHit.Count != 3 || st.InferenceStats.CacheMiss.Count != 5 {
		t.Fatalf("hits %d misses %d, want 3 and 5", st.InferenceStats.CacheHit.Count, st.InferenceStats.CacheMiss.Count)
	}
}

// cacheSimpleGRPC is simpleBody(batch) as a gRPC request with raw inputs.
func cacheSimpleGRPC(model string, batch int) *inference.ModelInferRequest {
	var in0, in1 []byte
	for i := range batch * 16 {
		in0 = binary.LittleEndian.AppendUint32(in0, uint32(i))
		in1 = binary.LittleEndian.AppendUint32(in1, 1)
	}
	shape := []int64{int64(batch), 16}
	return &inference.ModelInferRequest{ModelName: model,
		Inputs: []*inference.ModelInferRequest_InferInputTensor{
			{Name: "INPUT0", Datatype: "INT32", Shape: shape}, {Name: "INPUT1", Datatype: "INT32", Shape: shape}},
		RawInputContents: [][]byte{in0, in1}}
}

// cacheGRPCInt32s renders an INT32 output of a gRPC response as JSON numbers.
func cacheGRPCInt32s(res *inference.ModelInferResponse, name string) string {
	for i, o := range res.GetOutputs() {
		if o.GetName() != name {
			continue
		}
		raw := res.GetRawOutputContents()[i]
		vals := make([]string, len(raw)/4)
		for j := range vals {
			vals[j] = strconv.Itoa(int(int32(binary.LittleEndian.Uint32(raw[4*j:]))))
		}
		return "[" + strings.Join(vals, ",") + "]"
	}
	return "missing"
}

// cacheJSONData renders the data of a REST output as compact JSON.
func cacheJSONData(t *testing.T, outputs, name string) string {
	t.Helper()
	var outs []struct {
		Name string          `json:"name"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(outputs), &outs); err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Name == name {
			return strings.ReplaceAll(string(o.Data), " ", "")
		}
	}
	return "missing"
}
