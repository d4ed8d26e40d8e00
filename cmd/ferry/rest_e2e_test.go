package main

// End-to-end tests of the V2 REST API: a real Ferry (real ONNX Runtime, real sockets)
// driven over HTTP, every endpoint checked for the field names and JSON types KServe V2
// and Triton specify. Helpers are prefixed rest so they cannot collide with the other
// test files of this package; golden files are testdata/rest_*.golden (-update rewrites
// them).

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/goldentest"
	"github.com/ferryml/ferry/tools/onnxgen"
)

var restUpdate = update

// JSON type descriptions for restCheckTypes. A jType names a JSON type; jArr is an array
// whose elements all match elem; jObj is an object with these fields, where a key ending
// in "?" is optional and the key "*" allows fields not listed.
type (
	jType string
	jArr  struct{ elem any }
	jObj  map[string]any
)

const (
	jString  jType = "string"
	jNumber  jType = "number"
	jInteger jType = "integer" // a number with no fraction (dims, counts): never a string
	jBool    jType = "boolean"
	jAny     jType = "any"
)

var (
	restTensorMeta  = jObj{"name": jString, "datatype": jString, "shape": jArr{jInteger}}
	restServerMeta  = jObj{"name": jString, "version": jString, "extensions": jArr{jString}}
	restModelMeta   = jObj{"name": jString, "versions": jArr{jString}, "platform": jString, "inputs": jArr{restTensorMeta}, "outputs": jArr{restTensorMeta}}
	restErrorSchema = jObj{"error": jString}
	restIndexSchema = jArr{jObj{"name": jString, "version?": jString, "state": jString, "reason?": jString}}
	restParams      = jObj{"*": nil}
	restDuration    = jObj{"count": jInteger, "ns": jInteger}
	restStatsSchema = jObj{"model_stats": jArr{jObj{"*": nil, "name": jString, "version": jString, "last_inference": jInteger,
		"inference_count": jInteger, "execution_count": jInteger,
		"inference_stats": jObj{"*": nil, "success": restDuration, "fail": restDuration, "queue": restDuration,
			"compute_input": restDuration, "compute_infer": restDuration, "compute_output": restDuration},
		"batch_stats": jArr{jObj{"*": nil, "batch_size": jInteger, "compute_input": restDuration, "compute_infer": restDuration, "compute_output": restDuration}}}}}
	restConfigTensor = jObj{"*": nil, "name": jString, "data_type": jString, "dims": jArr{jInteger}}
	restConfigSchema = jObj{"*": nil, "name": jString, "platform": jString, "backend": jString, "max_batch_size": jInteger,
		"version_policy": restParams, "input": jArr{restConfigTensor}, "output": jArr{restConfigTensor},
		"instance_group": jArr{jObj{"*": nil, "name": jString, "kind": jString, "count": jInteger}}}
)

// restInferSchema is an infer response whose JSON output data elements are elem.
func restInferSchema(elem any) jObj {
	return jObj{"model_name": jString, "model_version": jString, "id?": jString, "parameters?": restParams,
		"outputs": jArr{jObj{"name": jString, "datatype": jString, "shape": jArr{jInteger}, "parameters?": restParams, "data?": jArr{elem}}}}
}

// restDecode parses a JSON body keeping numbers as json.Number, so integers, floats and
// numbers sent as strings stay distinguishable.
func restDecode(t *testing.T, what string, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", what, b, err)
	}
	if d.More() {
		t.Fatalf("%s: body %q has data after the JSON value", what, b)
	}
	return v
}

func restTypeOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return "integer"
		}
		if _, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// restCheckTypes reports every place where got (decoded by restDecode) differs from
// the type description schema, naming the JSON path.
func restCheckTypes(t *testing.T, path string, got, schema any) {
	t.Helper()
	typ := restTypeOf(got)
	switch s := schema.(type) {
	case jType:
		if s != jAny && typ != string(s) && (s != jNumber || typ != "integer") {
			t.Errorf("%s = %v is a JSON %s, want %s", path, got, typ, s)
		}
	case jArr:
		a, ok := got.([]any)
		if !ok {
			t.Errorf("%s = %v is a JSON %s, want an array", path, got, typ)
			return
		}
		for i, e := range a {
			restCheckTypes(t, fmt.Sprintf("%s[%d]", path, i), e, s.elem)
		}
	case jObj:
		o, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s = %v is a JSON %s, want an object", path, got, typ)
			return
		}
		for _, k := range slices.Sorted(maps.Keys(s)) {
			name, optional := strings.CutSuffix(k, "?")
			v, present := o[name]
			switch {
			case k == "*":
			case !present && !optional:
				t.Errorf("%s lacks field %q", path, name)
			case present:
				restCheckTypes(t, path+"."+name, v, s[k])
			}
		}
		if _, open := s["*"]; !open {
			for _, k := range slices.Sorted(maps.Keys(o)) {
				_, known := s[k]
				_, optional := s[k+"?"]
				if !known && !optional {
					t.Errorf("%s has field %q, which the protocol does not define", path, k)
				}
			}
		}
	default:
		t.Fatalf("restCheckTypes: bad schema %T", schema)
	}
}

// restCall sends method path (relative to the server) with body and headers (name,
// value pairs) and returns the status, headers and body.
func restCall(t *testing.T, ts *testServer, method, path, body string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	return httpDo(t, method, ts.URL+path, ct, strings.NewReader(body), header...)
}

// restWantError checks a V2 error answer: status code and an {"error": string} body
// holding every part.
func restWantError(t *testing.T, what string, code int, body []byte, wantCode int, parts ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: got %d %s, want %d", what, code, body, wantCode)
		return
	}
	v := restDecode(t, what, body)
	restCheckTypes(t, what, v, restErrorSchema)
	msg, _ := v.(map[string]any)["error"].(string)
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("%s: got error %q, want it to contain %q", what, msg, p)
		}
	}
}

// restGolden compares got (indented when it is JSON) with testdata/rest_<name>.golden.
func restGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if json.Indent(&buf, got, "", "  ") == nil {
		got = append(buf.Bytes(), '\n')
	}
	if *restUpdate {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	goldentest.Compare(t, filepath.Join("testdata", "rest_"+name+".golden"), got, *restUpdate)
}

// restSimpleRows are the INT32 inputs of simple for batch rows; INPUT1 mixes signs.
func restSimpleRows(batch int) (a, b []int32) {
	a, b = make([]int32, 16*batch), make([]int32, 16*batch)
	for i := range a {
		a[i], b[i] = int32(i), int32(3*i%7-3)
	}
	return a, b
}

// restJSONInts writes v as a JSON array, nested in rows of 16 when nested.
func restJSONInts(v []int32, nested bool) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, x := range v {
		switch {
		case nested && i%16 == 0 && i > 0:
			sb.WriteString("],[")
		case i > 0:
			sb.WriteByte(',')
		}
		if nested && i == 0 {
			sb.WriteByte('[')
		}
		sb.WriteString(strconv.Itoa(int(x)))
	}
	if nested {
		sb.WriteByte(']')
	}
	sb.WriteByte(']')
	return sb.String()
}

// restSimpleInfer is a JSON infer request for simple; extra is spliced in as more
// top-level fields (`"id":"x",`).
func restSimpleInfer(batch int, nested bool, extra string) string {
	a, b := restSimpleRows(batch)
	return fmt.Sprintf(`{%s"inputs":[{"name":"INPUT0","shape":[%d,16],"datatype":"INT32","data":%s},`+
		`{"name":"INPUT1","shape":[%d,16],"datatype":"INT32","data":%s}]}`,
		extra, batch, restJSONInts(a, nested), batch, restJSONInts(b, nested))
}

// restInferResponse is the typed view of an infer response.
type restInferResponse struct {
	ModelName    string `json:"model_name"`
	ModelVersion string `json:"model_version"`
	ID           string `json:"id"`
	Outputs      []struct {
		Name       string          `json:"name"`
		Datatype   string          `json:"datatype"`
		Shape      []int64         `json:"shape"`
		Parameters map[string]any  `json:"parameters"`
		Data       json.RawMessage `json:"data"`
	} `json:"outputs"`
}

func restParseInfer(t *testing.T, what string, b []byte, elem any) restInferResponse {
	t.Helper()
	restCheckTypes(t, what, restDecode(t, what, b), restInferSchema(elem))
	var r restInferResponse
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v in %s", what, err, b)
	}
	return r
}

// restCheckSimple checks a JSON response of simple to restSimpleInfer(batch): the
// outputs in want ("OUTPUT0" sum, "OUTPUT1" difference), in that order, and no others.
func restCheckSimple(t *testing.T, what string, b []byte, batch int, want ...string) restInferResponse {
	t.Helper()
	r := restParseInfer(t, what, b, jInteger)
	var names []string
	for _, o := range r.Outputs {
		names = append(names, o.Name)
	}
	if !slices.Equal(names, want) {
		t.Fatalf("%s: outputs %v, want %v", what, names, want)
	}
	a, in1 := restSimpleRows(batch)
	for _, o := range r.Outputs {
		if o.Datatype != "INT32" || !slices.Equal(o.Shape, []int64{int64(batch), 16}) {
			t.Errorf("%s: output %s is %s %v, want INT32 [%d,16]", what, o.Name, o.Datatype, o.Shape, batch)
		}
		var got []int32
		if err := json.Unmarshal(o.Data, &got); err != nil {
			t.Fatalf("%s: output %s data %s: %v", what, o.Name, o.Data, err)
		}
		if len(got) != len(a) {
			t.Fatalf("%s: output %s has %d values, want %d", what, o.Name, len(got), len(a))
		}
		for i := range got {
			w := a[i] + in1[i]
			if o.Name == "OUTPUT1" {
				w = a[i] - in1[i]
			}
			if got[i] != w {
				t.Fatalf("%s: %s[%d] = %d, want %d", what, o.Name, i, got[i], w)
			}
		}
	}
	return r
}

// restStillServes proves the server still answers a good request correctly.
func restStillServes(t *testing.T, ts *testServer) {
	t.Helper()
	code, _, b := restCall(t, ts, "POST", "/v2/models/simple/infer", restSimpleInfer(1, false, ""))
	if code != http.StatusOK {
		t.Fatalf("good simple infer afterwards: %d %s", code, b)
	}
	restCheckSimple(t, "good simple infer afterwards", b, 1, "OUTPUT0", "OUTPUT1")
}

// restBinaryBody joins a JSON header and binary sections and returns the body and its
// Inference-Header-Content-Length.
func restBinaryBody(header string, sections ...[]byte) (string, string) {
	return header + string(bytes.Join(sections, nil)), strconv.Itoa(len(header))
}

// restSplitBinary splits a binary-extension response into its JSON header and, by
// output name, the binary sections the header announces.
func restSplitBinary(t *testing.T, what string, h http.Header, body []byte) ([]byte, map[string][]byte) {
	t.Helper()
	n, err := strconv.Atoi(h.Get("Inference-Header-Content-Length"))
	if err != nil || n < 0 || n > len(body) {
		t.Fatalf("%s: Inference-Header-Content-Length %q for a %d-byte body", what, h.Get("Inference-Header-Content-Length"), len(body))
	}
	var hdr restInferResponse
	if err := json.Unmarshal(body[:n], &hdr); err != nil {
		t.Fatalf("%s: JSON header %q: %v", what, body[:n], err)
	}
	rest, raws := body[n:], map[string][]byte{}
	for _, o := range hdr.Outputs {
		size, ok := o.Parameters["binary_data_size"].(float64)
		if !ok {
			continue
		}
		if int(size) > len(rest) {
			t.Fatalf("%s: output %s announces %v bytes, %d remain", what, o.Name, size, len(rest))
		}
		raws[o.Name], rest = rest[:int(size)], rest[int(size):]
	}
	if len(rest) != 0 {
		t.Errorf("%s: %d bytes follow the announced binary sections", what, len(rest))
	}
	return body[:n], raws
}

// restLE is data (a slice of fixed-size values) in the V2 little-endian layout.
func restLE(data any) []byte {
	b, err := binary.Append(nil, binary.LittleEndian, data)
	if err != nil {
		panic(fmt.Sprintf("restLE(%T): %v", data, err))
	}
	return b
}

// restBytes serializes BYTES elements with their 4-byte little-endian length prefixes.
func restBytes(elems ...string) []byte {
	var b []byte
	for _, e := range elems {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e)))
		b = append(b, e...)
	}
	return b
}

// restTypeCase is four values of one datatype as the JSON data text the server writes
// back and as the binary layout.
type restTypeCase struct {
	dtype string
	json  string
	raw   []byte
}

func restTypeCases() []restTypeCase {
	return []restTypeCase{
		{"BOOL", `true,false,false,true`, []byte{1, 0, 0, 1}},
		{"UINT8", `0,1,128,255`, []byte{0, 1, 128, 255}},
		{"UINT16", `0,1,32768,65535`, restLE([]uint16{0, 1, 1 << 15, math.MaxUint16})},
		{"UINT32", `0,1,2147483648,4294967295`, restLE([]uint32{0, 1, 1 << 31, math.MaxUint32})},
		{"UINT64", `0,1,9223372036854775808,18446744073709551615`, restLE([]uint64{0, 1, 1 << 63, math.MaxUint64})},
		{"INT8", `-128,-1,0,127`, restLE([]int8{math.MinInt8, -1, 0, math.MaxInt8})},
		{"INT16", `-32768,-1,0,32767`, restLE([]int16{math.MinInt16, -1, 0, math.MaxInt16})},
		{"INT32", `-2147483648,-1,0,2147483647`, restLE([]int32{math.MinInt32, -1, 0, math.MaxInt32})},
		{"INT64", `-9223372036854775808,-1,0,9223372036854775807`, restLE([]int64{math.MinInt64, -1, 0, math.MaxInt64})},
		// 0.5, -2, the largest FP16 and the smallest subnormal (2^-24), all exact.
		{"FP16", `0.5,-2,65504,5.9604645e-08`, restLE([]uint16{0x3800, 0xc000, 0x7bff, 0x0001})},
		{"FP32", `-1.5,0.1,3.4028235e+38,1e-45`, restLE([]float32{-1.5, 0.1, math.MaxFloat32, math.SmallestNonzeroFloat32})},
		{"FP64", `-1.5,0.1,1.7976931348623157e+308,5e-324`, restLE([]float64{-1.5, 0.1, math.MaxFloat64, math.SmallestNonzeroFloat64})},
		{"BYTES", `"","a","héllo wörld","tab\tquote\"back\\slash"`, restBytes("", "a", "héllo wörld", "tab\tquote\"back\\slash")},
	}
}

// TestRESTServingAPI runs the checks that read or infer against one server (mode none,
// the example models plus one that fails to load), which keeps the file fast.
func TestRESTServingAPI(t *testing.T) {
	repo := exampleRepo(t)
	writeModel(t, repo, "broken", 1, []byte("not an onnx file"), "")
	ts := startServer(t, repo, func(c *serveConfig) { c.strictReady = false }) // the broken model must not make the server unready here (TestStrictReadiness covers that)
	for _, tc := range []struct {
		name string
		f    func(*testing.T, *testServer)
	}{
		{"health", restHealth},
		{"server metadata", restServerMetadata},
		{"model metadata", restModelMetadata},
		{"model config", restModelConfig},
		{"model ready", restModelReady},
		{"versioned routes", restVersionedRoutes},
		{"repository index", restRepositoryIndex},
		{"load and unload need explicit mode", restLoadNeedsExplicitMode},
		{"statistics", restStatistics},
		{"infer simple", restInferSimple},
		{"identity round trip of every datatype", restIdentityEveryDatatype},
		{"raw binary body", restRawBinaryBody},
		{"classification", restClassification},
		{"bad requests keep serving", restBadRequestsKeepServing},
		// Bugs: these fail until the server is fixed.
		{"model ready answers 503 for a model that is not ready", restModelNotReadyIs4xx},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, ts) })
	}
}

func restHealth(t *testing.T, ts *testServer) {
	for _, tc := range []struct{ path, field string }{{"/v2/health/live", "live"}, {"/v2/health/ready", "ready"}} {
		code, _, b := restCall(t, ts, "GET", tc.path, "")
		if code != http.StatusOK {
			t.Errorf("GET %s: %d %s, want 200", tc.path, code, b)
			continue
		}
		// V2 says the status is the answer; a body, when sent, must be JSON.
		if len(b) > 0 {
			restCheckTypes(t, "GET "+tc.path, restDecode(t, "GET "+tc.path, b), jObj{tc.field: jBool})
		}
	}
}

func restServerMetadata(t *testing.T, ts *testServer) {
	code, h, b := restCall(t, ts, "GET", "/v2", "")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /v2: %d %q %s, want 200 application/json", code, h.Get("Content-Type"), b)
	}
	restCheckTypes(t, "GET /v2", restDecode(t, "GET /v2", b), restServerMeta)
	var md struct {
		Name, Version string
		Extensions    []string
	}
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	if md.Name != "ferry" || md.Version == "" {
		t.Errorf("GET /v2: name %q version %q, want ferry and a version", md.Name, md.Version)
	}
	for _, ext := range []string{"binary_tensor_data", "classification", "model_repository", "model_configuration", "statistics"} {
		if !slices.Contains(md.Extensions, ext) {
			t.Errorf("GET /v2: extensions %v lack %q, which this server implements", md.Extensions, ext)
		}
	}
}

func restModelMetadata(t *testing.T, ts *testServer) {
	for _, model := range []string{"simple", "mlp", "identity_bytes"} {
		path := "/v2/models/" + model
		code, _, b := restCall(t, ts, "GET", path, "")
		if code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, code, b)
			continue
		}
		restCheckTypes(t, "GET "+path, restDecode(t, "GET "+path, b), restModelMeta)
		restGolden(t, "metadata_"+model, b)
	}
	code, _, b := restCall(t, ts, "GET", "/v2/models/nope", "")
	restWantError(t, "GET /v2/models/nope", code, b, http.StatusNotFound, "Request for unknown model: 'nope' is not found")
}

func restModelConfig(t *testing.T, ts *testServer) {
	for _, tc := range []struct {
		model    string
		maxBatch int64
		dtype    string
		dims     []int64
	}{
		{"simple", 8, "TYPE_INT32", []int64{16}},       // from config.pbtxt
		{"identity_fp32", 4, "TYPE_FP32", []int64{-1}}, // auto-completed
		{"mlp", 4, "TYPE_FP32", []int64{256}},          // auto-completed
	} {
		path := "/v2/models/" + tc.model + "/config"
		code, _, b := restCall(t, ts, "GET", path, "")
		if code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, code, b)
			continue
		}
		restCheckTypes(t, "GET "+path, restDecode(t, "GET "+path, b), restConfigSchema)
		var cfg struct {
			Name         string `json:"name"`
			MaxBatchSize int64  `json:"max_batch_size"`
			Input        []struct {
				Name     string  `json:"name"`
				DataType string  `json:"data_type"`
				Dims     []int64 `json:"dims"`
			} `json:"input"`
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if cfg.Name != tc.model || cfg.MaxBatchSize != tc.maxBatch || len(cfg.Input) == 0 ||
			cfg.Input[0].DataType != tc.dtype || !slices.Equal(cfg.Input[0].Dims, tc.dims) {
			t.Errorf("GET %s: name %q max_batch_size %d input %+v, want %q %d and input[0] %s %v",
				path, cfg.Name, cfg.MaxBatchSize, cfg.Input, tc.model, tc.maxBatch, tc.dtype, tc.dims)
		}
		restGolden(t, "config_"+tc.model, b)
	}
	code, _, b := restCall(t, ts, "GET", "/v2/models/nope/config", "")
	restWantError(t, "GET /v2/models/nope/config", code, b, http.StatusNotFound, "Request for unknown model: 'nope' is not found")
}

func restModelReady(t *testing.T, ts *testServer) {
	for _, tc := range []struct {
		name, path string
		code       int
		msg        string
	}{
		{"ready model", "/v2/models/simple/ready", 200, ""},
		{"ready version", "/v2/models/simple/versions/1/ready", 200, ""},
		{"auto-completed model", "/v2/models/identity_bytes/ready", 200, ""},
		{"unknown model", "/v2/models/nope/ready", 404, "Request for unknown model: 'nope' is not found"},
		{"unknown version", "/v2/models/simple/versions/7/ready", 404, "Request for unknown model: 'simple' version 7 is not found"},
		{"name with dot-dot", "/v2/models/%2e%2e/ready", 400, `".."`},
		{"name with a slash", "/v2/models/a%2Fb/ready", 400, "'/'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, b := restCall(t, ts, "GET", tc.path, "")
			if tc.code != http.StatusOK {
				restWantError(t, "GET "+tc.path, code, b, tc.code, tc.msg)
				return
			}
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d %s, want 200", tc.path, code, b)
			}
			restCheckTypes(t, "GET "+tc.path, restDecode(t, "GET "+tc.path, b), jObj{"name": jString, "ready": jBool})
		})
	}
}

// A model that failed to load is in the repository but not ready. Ferry answers 503 like
// its other health endpoints (DESIGN.md); Triton answers 400. Clients test for 200.
func restModelNotReadyIs4xx(t *testing.T, ts *testServer) {
	code, _, b := restCall(t, ts, "GET", "/v2/models/broken/ready", "")
	if code != http.StatusServiceUnavailable || string(b) != `{"name":"broken","ready":false}` {
		t.Errorf("GET /v2/models/broken/ready (failed to load) = %d %s, want 503 {\"name\":\"broken\",\"ready\":false}", code, b)
	}
}

func restVersionedRoutes(t *testing.T, ts *testServer) {
	for _, suffix := range []string{"", "/ready", "/config", "/stats"} {
		code, _, b := restCall(t, ts, "GET", "/v2/models/simple/versions/1"+suffix, "")
		if code != http.StatusOK {
			t.Errorf("GET /v2/models/simple/versions/1%s: %d %s, want 200", suffix, code, b)
		}
		code, _, b = restCall(t, ts, "GET", "/v2/models/simple/versions/7"+suffix, "")
		restWantError(t, "GET /v2/models/simple/versions/7"+suffix, code, b, http.StatusNotFound, "Request for unknown model: 'simple' version 7 is not found")
	}
	code, _, b := restCall(t, ts, "POST", "/v2/models/simple/versions/1/infer", restSimpleInfer(2, false, ""))
	if code != http.StatusOK {
		t.Fatalf("POST /v2/models/simple/versions/1/infer: %d %s", code, b)
	}
	if r := restCheckSimple(t, "versioned infer", b, 2, "OUTPUT0", "OUTPUT1"); r.ModelName != "simple" || r.ModelVersion != "1" {
		t.Errorf("versioned infer: model_name %q model_version %q, want simple 1", r.ModelName, r.ModelVersion)
	}
	code, _, b = restCall(t, ts, "POST", "/v2/models/simple/versions/7/infer", restSimpleInfer(1, false, ""))
	restWantError(t, "POST /v2/models/simple/versions/7/infer", code, b, http.StatusNotFound, "'simple' version 7 is not found")
}

func restRepositoryIndex(t *testing.T, ts *testServer) {
	dirs, err := os.ReadDir(ts.cfg.repository)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"", `{}`, `{"ready":false}`, `{"ready":true}`} {
		code, _, b := restCall(t, ts, "POST", "/v2/repository/index", body)
		if code != http.StatusOK {
			t.Fatalf("POST /v2/repository/index %s: %d %s", body, code, b)
		}
		what := "POST /v2/repository/index " + body
		restCheckTypes(t, what, restDecode(t, what, b), restIndexSchema)
		var index []struct{ Name, Version, State, Reason string }
		if err := json.Unmarshal(b, &index); err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, e := range index {
			got = append(got, e.Name)
			if e.Name == "broken" {
				if e.State != "UNAVAILABLE" || !strings.Contains(e.Reason, "model.onnx") {
					t.Errorf("%s: broken is %s (%q), want UNAVAILABLE with a reason naming model.onnx", what, e.State, e.Reason)
				}
			} else if e.State != "READY" || e.Version != "1" {
				t.Errorf("%s: %s is version %q %s (%s), want version 1 READY", what, e.Name, e.Version, e.State, e.Reason)
			}
		}
		for _, d := range dirs {
			if d.Name() != "broken" || body != `{"ready":true}` {
				want = append(want, d.Name())
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s lists %v, want %v", what, got, want)
		}
	}
	code, _, b := restCall(t, ts, "POST", "/v2/repository/index", `{"ready":`)
	restWantError(t, "index with malformed JSON", code, b, http.StatusBadRequest, "JSON")
}

// Triton refuses load and unload unless models are controlled explicitly.
func restLoadNeedsExplicitMode(t *testing.T, ts *testServer) {
	for _, op := range []string{"load", "unload"} {
		path := "/v2/repository/models/simple/" + op
		code, _, b := restCall(t, ts, "POST", path, "")
		restWantError(t, "POST "+path+" in mode none", code, b, http.StatusServiceUnavailable, "not allowed")
	}
	restStillServes(t, ts)
}

func restStatistics(t *testing.T, ts *testServer) {
	// counts are what two good requests (batch 1 and 3) and one bad one change.
	type counts struct{ success, fail, items, executions, batch1, batch3 uint64 }
	read := func(path string) (map[string]counts, []byte) {
		t.Helper()
		code, _, b := restCall(t, ts, "GET", path, "")
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		restCheckTypes(t, "GET "+path, restDecode(t, "GET "+path, b), restStatsSchema)
		type duration struct{ Count uint64 }
		var st struct {
			ModelStats []struct {
				Name           string `json:"name"`
				Version        string `json:"version"`
				LastInference  int64  `json:"last_inference"`
				InferenceCount uint64 `json:"inference_count"`
				ExecutionCount uint64 `json:"execution_count"`
				InferenceStats struct {
					Success duration `json:"success"`
					Fail    duration `json:"fail"`
				} `json:"inference_stats"`
				BatchStats []struct {
					BatchSize    uint64   `json:"batch_size"`
					ComputeInfer duration `json:"compute_infer"`
				} `json:"batch_stats"`
			} `json:"model_stats"`
		}
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		out := map[string]counts{}
		for _, m := range st.ModelStats {
			c := counts{m.InferenceStats.Success.Count, m.InferenceStats.Fail.Count, m.InferenceCount, m.ExecutionCount, 0, 0}
			for _, bs := range m.BatchStats {
				switch bs.BatchSize {
				case 1:
					c.batch1 = bs.ComputeInfer.Count
				case 3:
					c.batch3 = bs.ComputeInfer.Count
				}
			}
			if c.success > 0 && m.LastInference <= 0 {
				t.Errorf("GET %s: %s/%s has successes but last_inference %d", path, m.Name, m.Version, m.LastInference)
			}
			out[m.Name+"/"+m.Version] = c
		}
		return out, b
	}
	before, _ := read("/v2/models/simple/stats")
	for _, batch := range []int{1, 3} {
		if code, _, b := restCall(t, ts, "POST", "/v2/models/simple/infer", restSimpleInfer(batch, false, "")); code != http.StatusOK {
			t.Fatalf("infer: %d %s", code, b)
		}
	}
	if code, _, b := restCall(t, ts, "POST", "/v2/models/simple/infer", restSimpleInfer(9, false, "")); code != http.StatusBadRequest {
		t.Fatalf("infer of batch 9: %d %s, want 400", code, b)
	}
	for _, path := range []string{"/v2/models/simple/stats", "/v2/models/simple/versions/1/stats", "/v2/models/stats"} {
		after, b := read(path)
		got, old := after["simple/1"], before["simple/1"]
		// simple does not batch dynamically, so each request is one execution.
		want := counts{old.success + 2, old.fail + 1, old.items + 4, old.executions + 2, old.batch1 + 1, old.batch3 + 1}
		if got != want {
			t.Errorf("GET %s: simple/1 {success fail items executions batch-1 batch-3} = %v, want %v; body %s", path, got, want, b)
		}
		if path != "/v2/models/stats" && len(after) != 1 {
			t.Errorf("GET %s lists %d model versions, want only simple/1", path, len(after))
		}
	}
	code, _, b := restCall(t, ts, "GET", "/v2/models/nope/stats", "")
	restWantError(t, "GET /v2/models/nope/stats", code, b, http.StatusNotFound, "Request for unknown model: 'nope' is not found")
}

func restInferSimple(t *testing.T, ts *testServer) {
	for _, tc := range []struct {
		name   string
		batch  int
		nested bool
	}{
		{"flat data, batch 1", 1, false},
		{"flat data, batch 3", 3, false},
		{"nested data, batch 1", 1, true},
		{"nested data, batch 3", 3, true},
		{"batch 8 (max_batch_size)", 8, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, b := restCall(t, ts, "POST", "/v2/models/simple/infer", restSimpleInfer(tc.batch, tc.nested, ""))
			if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
				t.Fatalf("infer: %d %q %s, want 200 application/json", code, h.Get("Content-Type"), b)
			}
			r := restCheckSimple(t, tc.name, b, tc.batch, "OUTPUT0", "OUTPUT1")
			if r.ModelName != "simple" || r.ModelVersion != "1" || r.ID != "" {
				t.Errorf("model_name %q model_version %q id %q, want simple, 1 and no id", r.ModelName, r.ModelVersion, r.ID)
			}
		})
	}
	t.Run("id echoed and parameters accepted", func(t *testing.T) {
		body := restSimpleInfer(2, false, `"id":"req \"7\"","parameters":{"custom":"x","n":3,"flag":true,"f":1.5},`)
		code, _, b := restCall(t, ts, "POST", "/v2/models/simple/infer", body)
		if code != http.StatusOK {
			t.Fatalf("infer: %d %s", code, b)
		}
		if r := restCheckSimple(t, "id and parameters", b, 2, "OUTPUT0", "OUTPUT1"); r.ID != `req "7"` {
			t.Errorf("id = %q, want %q", r.ID, `req "7"`)
		}
	})
	t.Run("requested outputs", func(t *testing.T) {
		for _, want := range [][]string{{"OUTPUT1"}, {"OUTPUT0"}, {"OUTPUT1", "OUTPUT0"}} {
			var outs []string
			for _, n := range want {
				outs = append(outs, fmt.Sprintf(`{"name":%q}`, n))
			}
			code, _, b := restCall(t, ts, "POST", "/v2/models/simple/infer", restSimpleInfer(2, false, `"outputs":[`+strings.Join(outs, ",")+`],`))
			if code != http.StatusOK {
				t.Fatalf("infer asking for %v: %d %s", want, code, b)
			}
			restCheckSimple(t, fmt.Sprintf("infer asking for %v", want), b, 2, want...)
		}
	})
}

// restIdentityEveryDatatype sends the same values of each datatype through
// identity_<type> in JSON and in the binary extension, each direction, and checks they
// come back unchanged.
func restIdentityEveryDatatype(t *testing.T, ts *testServer) {
	const shape = `[2,2]` // restCheckIdentityOutput(..., 2, 2) below
	for _, tc := range restTypeCases() {
		path := "/v2/models/identity_" + strings.ToLower(tc.dtype) + "/infer"
		jsonIn := fmt.Sprintf(`{"name":"INPUT0","shape":%s,"datatype":%q,"data":[%s]}`, shape, tc.dtype, tc.json)
		binIn := fmt.Sprintf(`{"name":"INPUT0","shape":%s,"datatype":%q,"parameters":{"binary_data_size":%d}}`, shape, tc.dtype, len(tc.raw))
		for _, m := range []struct {
			name          string
			header        string // the JSON header (the whole body without binary input)
			binIn, binOut bool
		}{
			{name: "JSON", header: `{"inputs":[` + jsonIn + `]}`},
			{name: "binary in, binary out (outputs[].binary_data)", binIn: true, binOut: true,
				header: `{"inputs":[` + binIn + `],"outputs":[{"name":"OUTPUT0","parameters":{"binary_data":true}}]}`},
			{name: "binary in, binary out (binary_data_output)", binIn: true, binOut: true,
				header: `{"parameters":{"binary_data_output":true},"inputs":[` + binIn + `]}`},
			{name: "JSON in, binary out", binOut: true,
				header: `{"inputs":[` + jsonIn + `],"outputs":[{"name":"OUTPUT0","parameters":{"binary_data":true}}]}`},
			{name: "binary in, JSON out", binIn: true,
				header: `{"parameters":{"binary_data_output":true},"inputs":[` + binIn + `],"outputs":[{"name":"OUTPUT0","parameters":{"binary_data":false}}]}`},
		} {
			t.Run(tc.dtype+" "+m.name, func(t *testing.T) {
				body, hdr := m.header, []string(nil)
				if m.binIn {
					var n string
					body, n = restBinaryBody(m.header, tc.raw)
					hdr = []string{"Inference-Header-Content-Length", n}
				}
				code, h, b := restCall(t, ts, "POST", path, body, hdr...)
				if code != http.StatusOK {
					t.Fatalf("POST %s: %d %s", path, code, b)
				}
				if !m.binOut {
					if h.Get("Inference-Header-Content-Length") != "" {
						t.Errorf("JSON answer has Inference-Header-Content-Length %q", h.Get("Inference-Header-Content-Length"))
					}
					r := restParseInfer(t, "response", b, restElemType(tc.dtype))
					restCheckIdentityOutput(t, r, tc.dtype, 2, 2)
					if got, want := string(r.Outputs[0].Data), "["+tc.json+"]"; got != want {
						t.Errorf("data = %s, want %s", got, want)
					}
					return
				}
				header, raws := restSplitBinary(t, "response", h, b)
				if ct := h.Get("Content-Type"); ct != "application/octet-stream" {
					t.Errorf("binary answer has Content-Type %q, want application/octet-stream", ct)
				}
				r := restParseInfer(t, "JSON header", header, jAny)
				restCheckIdentityOutput(t, r, tc.dtype, 2, 2)
				if r.Outputs[0].Data != nil {
					t.Errorf("binary output also has data %s", r.Outputs[0].Data)
				}
				if got := raws["OUTPUT0"]; !bytes.Equal(got, tc.raw) {
					t.Errorf("binary OUTPUT0 = %x, want %x", got, tc.raw)
				}
			})
		}
	}
}

func restCheckIdentityOutput(t *testing.T, r restInferResponse, dtype string, shape ...int64) {
	t.Helper()
	if len(r.Outputs) != 1 {
		t.Fatalf("%d outputs, want 1", len(r.Outputs))
	}
	if o := r.Outputs[0]; o.Name != "OUTPUT0" || o.Datatype != dtype || !slices.Equal(o.Shape, shape) {
		t.Errorf("output %s %s %v, want OUTPUT0 %s %v", o.Name, o.Datatype, o.Shape, dtype, shape)
	}
}

// restElemType is the JSON type of the data elements of a V2 datatype.
func restElemType(dtype string) jType {
	switch dtype {
	case "BOOL":
		return jBool
	case "BYTES":
		return jString
	case "FP16", "FP32", "FP64":
		return jNumber
	}
	return jInteger
}

// A raw binary body (Inference-Header-Content-Length: 0) is the single input's bytes;
// Triton infers the shape from the size and answers every output in binary.
func restRawBinaryBody(t *testing.T, ts *testServer) {
	raw := restLE([]float32{1.5, -2, 0, 1e10})
	code, h, b := httpDo(t, "POST", ts.URL+"/v2/models/identity_fp32/infer", "application/octet-stream",
		bytes.NewReader(raw), "Inference-Header-Content-Length", "0")
	if code != http.StatusOK {
		t.Fatalf("raw binary infer: %d %s", code, b)
	}
	header, raws := restSplitBinary(t, "raw binary infer", h, b)
	r := restParseInfer(t, "raw binary infer", header, jAny)
	restCheckIdentityOutput(t, r, "FP32", 1, 4)
	if size := r.Outputs[0].Parameters["binary_data_size"]; size != float64(len(raw)) {
		t.Errorf("binary_data_size = %v, want %d", size, len(raw))
	}
	if !bytes.Equal(raws["OUTPUT0"], raw) {
		t.Errorf("OUTPUT0 = %x, want %x", raws["OUTPUT0"], raw)
	}
}

// restMLPInfer is a JSON request for mlp with batch rows; outputs is spliced in.
func restMLPInfer(batch int, outputs string) string {
	vals := make([]string, 256*batch)
	for i := range vals {
		vals[i] = strconv.FormatFloat(math.Sin(float64(i)*0.37), 'g', 6, 64)
	}
	return fmt.Sprintf(`{%s"inputs":[{"name":"input","shape":[%d,256],"datatype":"FP32","data":[%s]}]}`, outputs, batch, strings.Join(vals, ","))
}

// The classification extension: {"classification": k} on a requested output answers
// BYTES [batch, k] of "value:index", highest value first.
func restClassification(t *testing.T, ts *testServer) {
	const batch, k = 2, 3
	code, _, b := restCall(t, ts, "POST", "/v2/models/mlp/infer", restMLPInfer(batch, ""))
	if code != http.StatusOK {
		t.Fatalf("mlp infer: %d %s", code, b)
	}
	full := restParseInfer(t, "mlp", b, jNumber)
	var scores []float64
	if err := json.Unmarshal(full.Outputs[0].Data, &scores); err != nil || len(scores) != batch*10 {
		t.Fatalf("mlp output %s: %v, want %d scores", full.Outputs[0].Data, err, batch*10)
	}

	code, _, b = restCall(t, ts, "POST", "/v2/models/mlp/infer", restMLPInfer(batch, `"outputs":[{"name":"output","parameters":{"classification":3}}],`))
	if code != http.StatusOK {
		t.Fatalf("mlp infer with classification: %d %s", code, b)
	}
	r := restParseInfer(t, "classification", b, jString)
	o := r.Outputs[0]
	if o.Name != "output" || o.Datatype != "BYTES" || !slices.Equal(o.Shape, []int64{batch, k}) {
		t.Fatalf("classification output %s %s %v, want output BYTES [%d,%d]", o.Name, o.Datatype, o.Shape, batch, k)
	}
	var classes []string
	if err := json.Unmarshal(o.Data, &classes); err != nil || len(classes) != batch*k {
		t.Fatalf("classification data %s: %v, want %d strings", o.Data, err, batch*k)
	}
	for row := range batch {
		rowScores := scores[10*row : 10*row+10]
		top := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
		sort.SliceStable(top, func(i, j int) bool { return rowScores[top[i]] > rowScores[top[j]] })
		prev := math.Inf(1)
		for i, c := range classes[k*row : k*row+k] {
			vs, is, ok := strings.Cut(c, ":")
			v, verr := strconv.ParseFloat(vs, 64)
			idx, ierr := strconv.Atoi(is)
			if !ok || verr != nil || ierr != nil {
				t.Fatalf("row %d class %d = %q, want \"value:index\"", row, i, c)
			}
			if idx != top[i] || math.Abs(v-rowScores[idx]) > 1e-6 || v > prev {
				t.Errorf("row %d class %d = %q, want index %d (value %g), values descending; row scores %v", row, i, c, top[i], rowScores[top[i]], rowScores)
			}
			prev = v
		}
	}
}

func restBadRequestsKeepServing(t *testing.T, ts *testServer) {
	const infer = "/v2/models/simple/infer"
	in1 := `{"name":"INPUT1","shape":[1,16],"datatype":"INT32","data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}`
	// simple is a request for simple whose INPUT0 is in0, INPUT1 a good [1,16] tensor.
	simple := func(in0 string) string { return `{"inputs":[` + in0 + `,` + in1 + `]}` }
	ints := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat("1,", n), ",") + "]" }
	good := simple(`{"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":` + ints(16) + `}`)
	binIn := func(dtype, shape string, size int) string {
		return fmt.Sprintf(`{"inputs":[{"name":"INPUT0","shape":%s,"datatype":%q,"parameters":{"binary_data_size":%d}}]}`, shape, dtype, size)
	}
	shortBody, shortLen := restBinaryBody(binIn("FP32", "[1,4]", 16), make([]byte, 12))
	brokenBytes, brokenLen := restBinaryBody(binIn("BYTES", "[1,1]", 7), append(restLE([]uint32{10}), "abc"...))
	truncPrefix, truncLen := restBinaryBody(binIn("BYTES", "[1,2]", 8), append(restBytes("ok"), 1, 0))
	notUTF8, notUTF8Len := restBinaryBody(binIn("BYTES", "[1,1]", 6), restBytes("\xff\xfe"))
	nan, nanLen := restBinaryBody(binIn("FP32", "[1,1]", 4), restLE([]float32{float32(math.NaN())}))
	for _, tc := range []struct {
		name, path, body string
		header           []string
		code             int
		parts            []string
	}{
		{"malformed JSON", infer, `{"inputs":[{"name":"INPUT0",`, nil, 400, []string{"malformed JSON"}},
		{"body that is no JSON object", infer, `[1,2]`, nil, 400, []string{"JSON object"}},
		{"wrong datatype name", infer, simple(`{"name":"INPUT0","shape":[1,16],"datatype":"FLOAT32","data":` + ints(16) + `}`), nil,
			400, []string{`"INPUT0"`, `unknown datatype "FLOAT32"`}},
		{"FP32 sent to an INT32 input", infer, simple(`{"name":"INPUT0","shape":[1,16],"datatype":"FP32","data":` + ints(16) + `}`), nil,
			400, []string{`"INPUT0"`, "FP32", "INT32"}},
		{"wrong dimension", infer, simple(`{"name":"INPUT0","shape":[1,8],"datatype":"INT32","data":` + ints(8) + `}`), nil,
			400, []string{`"INPUT0"`, "[1,8]", "[-1,16]"}},
		{"wrong rank", infer, simple(`{"name":"INPUT0","shape":[1,1,16],"datatype":"INT32","data":` + ints(16) + `}`), nil,
			400, []string{`"INPUT0"`, "[1,1,16]"}},
		{"fewer values than the shape", infer, simple(`{"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":` + ints(15) + `}`), nil,
			400, []string{`"INPUT0"`, "16", "15"}},
		{"more values than the shape", infer, simple(`{"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":` + ints(17) + `}`), nil,
			400, []string{`"INPUT0"`, "16"}},
		{"nesting that disagrees with the shape", infer, simple(`{"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":[[[1]]]}`), nil,
			400, []string{`"INPUT0"`}},
		{"value out of range", "/v2/models/identity_int8/infer", `{"inputs":[{"name":"INPUT0","shape":[1,1],"datatype":"INT8","data":[128]}]}`, nil,
			400, []string{`"INPUT0"`, "128", "INT8"}},
		{"string for a number", infer, simple(`{"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":["1"]}`), nil,
			400, []string{`"INPUT0"`}},
		{"shape product overflows int64", infer, simple(`{"name":"INPUT0","shape":[4294967296,4294967296],"datatype":"INT32","data":[1]}`), nil,
			400, []string{`"INPUT0"`, "overflow"}},
		{"shape product overflows int64 in binary", "/v2/models/identity_fp32/infer", binIn("FP32", "[9223372036854775807,2]", 0),
			[]string{"Inference-Header-Content-Length", strconv.Itoa(len(binIn("FP32", "[9223372036854775807,2]", 0)))},
			400, []string{`"INPUT0"`, "overflow"}},
		{"binary body shorter than binary_data_size", "/v2/models/identity_fp32/infer", shortBody, []string{"Inference-Header-Content-Length", shortLen},
			400, []string{`"INPUT0"`, "binary_data_size", "16", "12"}},
		{"Inference-Header-Content-Length larger than the body", infer, good, []string{"Inference-Header-Content-Length", strconv.Itoa(len(good) + 1)},
			400, []string{"Inference-Header-Content-Length", "larger than the body"}},
		{"Inference-Header-Content-Length that is no number", infer, good, []string{"Inference-Header-Content-Length", "ten"},
			400, []string{"Inference-Header-Content-Length"}},
		{"BYTES length prefix past the end", "/v2/models/identity_bytes/infer", brokenBytes, []string{"Inference-Header-Content-Length", brokenLen},
			400, []string{`"INPUT0"`, "length prefix"}},
		{"BYTES truncated length prefix", "/v2/models/identity_bytes/infer", truncPrefix, []string{"Inference-Header-Content-Length", truncLen},
			400, []string{`"INPUT0"`, "length prefix"}},
		{"BYTES that are not UTF-8 asked for in JSON", "/v2/models/identity_bytes/infer", notUTF8, []string{"Inference-Header-Content-Length", notUTF8Len},
			400, []string{`"OUTPUT0"`, "UTF-8", "binary_data"}},
		{"NaN asked for in JSON", "/v2/models/identity_fp32/infer", nan, []string{"Inference-Header-Content-Length", nanLen},
			400, []string{`"OUTPUT0"`, "NaN", "binary_data"}},
		{"raw binary body for a model with two inputs", infer, string(make([]byte, 64)), []string{"Inference-Header-Content-Length", "0"},
			400, []string{"exactly one input"}},
		{"unknown model", "/v2/models/nope/infer", good, nil, 404, []string{"Request for unknown model: 'nope' is not found"}},
		{"unknown version", "/v2/models/simple/versions/7/infer", good, nil, 404, []string{"Request for unknown model: 'simple' version 7 is not found"}},
		{"model that failed to load", "/v2/models/broken/infer", good, nil, 503, []string{"broken"}},
		{"model name with dot-dot", "/v2/models/%2e%2e/infer", good, nil, 400, []string{`".."`}},
		{"model name with a slash", "/v2/models/simple%2F1/infer", good, nil, 400, []string{"'/'"}},
		{"version with dot-dot", "/v2/models/simple/versions/%2e%2e/infer", good, nil, 400, []string{`".."`}},
		{"batch over max_batch_size", infer, restSimpleInfer(9, false, ""), nil, 400, []string{`"INPUT0"`, "batch size 9", "1..8"}},
		{"batch of zero rows", infer, `{"inputs":[{"name":"INPUT0","shape":[0,16],"datatype":"INT32","data":[]},{"name":"INPUT1","shape":[0,16],"datatype":"INT32","data":[]}]}`, nil,
			400, []string{"batch size 0"}},
		{"missing input", infer, `{"inputs":[` + in1 + `]}`, nil, 400, []string{`"INPUT0"`, "missing"}},
		{"unknown input", infer, `{"inputs":[` + strings.Replace(in1, "INPUT1", "INPUT2", 1) + `,` + in1 + `,` + strings.Replace(in1, "INPUT1", "INPUT0", 1) + `]}`, nil,
			400, []string{`"INPUT2"`, "no such input"}},
		{"input given twice", infer, `{"inputs":[` + in1 + `,` + in1 + `,` + strings.Replace(in1, "INPUT1", "INPUT0", 1) + `]}`, nil,
			400, []string{`"INPUT1"`}},
		{"unknown output", infer, strings.Replace(good, `{"inputs"`, `{"outputs":[{"name":"OUTPUT9"}],"inputs"`, 1), nil, 400, []string{`"OUTPUT9"`}},
		{"shared-memory parameter", infer, simple(`{"name":"INPUT0","shape":[1,16],"datatype":"INT32","parameters":{"shared_memory_region":"r0"},"data":` + ints(16) + `}`), nil,
			400, []string{`"INPUT0"`, "shared_memory_region"}},
		{"binary_data that is no boolean", infer, strings.Replace(good, `{"inputs"`, `{"outputs":[{"name":"OUTPUT0","parameters":{"binary_data":1}}],"inputs"`, 1), nil,
			400, []string{"binary_data"}},
		{"classification of zero classes", "/v2/models/mlp/infer", restMLPInfer(1, `"outputs":[{"name":"output","parameters":{"classification":0}}],`), nil,
			400, []string{"classification"}},
		{"unsupported Content-Encoding", infer, good, []string{"Content-Encoding", "br"}, 400, []string{"Content-Encoding"}},
		{"GET on infer", infer, "", nil, 405, []string{"POST"}},
		{"no such endpoint", "/v2/models/simple/predict", good, nil, 404, []string{"no such endpoint"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "POST"
			if tc.code == http.StatusMethodNotAllowed {
				method = "GET"
			}
			code, _, b := restCall(t, ts, method, tc.path, tc.body, tc.header...)
			restWantError(t, method+" "+tc.path, code, b, tc.code, tc.parts...)
			restStillServes(t, ts)
		})
	}
}

// TestRESTLimits starts a server with small limits: a body over --max-body-bytes is 413,
// a tensor over --max-tensor-elements or --max-tensor-rank is 400, and requests at the
// limits are served.
func TestRESTLimits(t *testing.T) {
	const maxBody, maxElems, maxRank = 64 << 10, 1000, 3
	ts := startServer(t, exampleRepo(t), withLoadFiles, func(c *serveConfig) {
		c.limits.MaxBodyBytes, c.limits.MaxTensorElements, c.limits.MaxRank = maxBody, maxElems, maxRank
	})
	fp32 := func(shape string, n int) string {
		return fmt.Sprintf(`{"inputs":[{"name":"INPUT0","shape":%s,"datatype":"FP32","data":[%s]}]}`, shape, strings.TrimSuffix(strings.Repeat("0.5,", n), ","))
	}
	const identity = "/v2/models/identity_fp32/infer"
	big := fp32("[1,20000]", 20000) // 80 KB of JSON
	bin := `{"inputs":[{"name":"INPUT0","shape":[1,1099511627776],"datatype":"UINT8","parameters":{"binary_data_size":8}}]}`
	for _, tc := range []struct {
		name, path, body string
		chunked          bool // sent without Content-Length: the limit must hold while reading
		header           []string
		code             int
		parts            []string
	}{
		{"body over the limit", identity, big, false, nil, 413, []string{"limit", strconv.Itoa(maxBody)}},
		{"body over the limit, chunked", identity, big, true, nil, 413, []string{"limit", strconv.Itoa(maxBody)}},
		{"index body over the limit", "/v2/repository/index", `{"ready":true,"pad":"` + strings.Repeat("x", maxBody) + `"}`, false, nil,
			413, []string{"limit"}},
		{"tensor over the element limit", identity, fp32("[1,1001]", 1001), false, nil, 400, []string{`"INPUT0"`, "1001", "limit of 1000"}},
		{"tensor over the element limit in binary", "/v2/models/identity_uint8/infer", bin + "12345678", false,
			[]string{"Inference-Header-Content-Length", strconv.Itoa(len(bin))}, 400, []string{`"INPUT0"`, "limit of 1000"}},
		{"rank over the limit", identity, fp32("[1,1,1,1]", 1), false, nil, 400, []string{`"INPUT0"`, "rank", "3"}},
		{"tensor at the element limit", identity, fp32("[1,1000]", 1000), false, nil, 200, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length from http.NewRequest
			}
			code, _, b := httpDo(t, "POST", ts.URL+tc.path, "application/json", body, tc.header...)
			if tc.code == http.StatusOK {
				if code != http.StatusOK {
					t.Fatalf("POST %s: %d %s, want 200", tc.path, code, b)
				}
				return
			}
			restWantError(t, "POST "+tc.path, code, b, tc.code, tc.parts...)
			restStillServes(t, ts)
		})
	}
}

// restIndexState is model's state in the repository index ("" when it is not listed).
func restIndexState(t *testing.T, ts *testServer, model string) string {
	t.Helper()
	code, _, b := restCall(t, ts, "POST", "/v2/repository/index", "")
	if code != http.StatusOK {
		t.Fatalf("POST /v2/repository/index: %d %s", code, b)
	}
	restCheckTypes(t, "index", restDecode(t, "index", b), restIndexSchema)
	var index []struct{ Name, State string }
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	for _, e := range index {
		if e.Name == model {
			return e.State
		}
	}
	return ""
}

// restLoad posts a load (or unload) with the given parameters object ("" for no body)
// and wants 200 with an empty body, as Triton answers.
func restLoad(t *testing.T, ts *testServer, op, model, params string) {
	t.Helper()
	body := ""
	if params != "" {
		body = `{"parameters":` + params + `}`
	}
	code, _, b := restCall(t, ts, "POST", "/v2/repository/models/"+model+"/"+op, body)
	if code != http.StatusOK || len(b) != 0 {
		t.Fatalf("%s %s %s: %d %s, want 200 and no body", op, model, params, code, b)
	}
}

func restJSONString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestRESTRepositoryLoadUnload drives the model repository extension in explicit mode,
// starting with simple only.
func TestRESTRepositoryLoadUnload(t *testing.T) {
	ts := startServer(t, exampleRepo(t), withLoadFiles, func(c *serveConfig) {
		c.mode = "explicit"
		c.loadModels = []string{"simple"}
	})
	mlpInfer := func(batch int) (int, []byte) {
		code, _, b := restCall(t, ts, "POST", "/v2/models/mlp/infer", restMLPInfer(batch, ""))
		return code, b
	}
	if got := restIndexState(t, ts, "simple"); got != "READY" {
		t.Errorf("index state of simple at start = %q, want READY", got)
	}
	if got := restIndexState(t, ts, "mlp"); got != "UNAVAILABLE" {
		t.Errorf("index state of mlp at start = %q, want UNAVAILABLE", got)
	}

	t.Run("load makes a model ready", func(t *testing.T) {
		restLoad(t, ts, "load", "mlp", "")
		if code, _, b := restCall(t, ts, "GET", "/v2/models/mlp/ready", ""); code != http.StatusOK {
			t.Fatalf("mlp ready after load: %d %s", code, b)
		}
		if got := restIndexState(t, ts, "mlp"); got != "READY" {
			t.Errorf("index state of mlp after load = %q, want READY", got)
		}
		code, b := mlpInfer(2)
		if code != http.StatusOK {
			t.Fatalf("mlp infer after load: %d %s", code, b)
		}
		if r := restParseInfer(t, "mlp", b, jNumber); !slices.Equal(r.Outputs[0].Shape, []int64{2, 10}) {
			t.Errorf("mlp output shape %v, want [2,10]", r.Outputs[0].Shape)
		}
	})

	t.Run("unload makes a model unavailable", func(t *testing.T) {
		restLoad(t, ts, "unload", "mlp", "")
		if got := restIndexState(t, ts, "mlp"); got != "UNAVAILABLE" {
			t.Errorf("index state of mlp after unload = %q, want UNAVAILABLE", got)
		}
		if code, b := mlpInfer(1); code == http.StatusOK {
			t.Errorf("mlp infer after unload: %d %s, want an error", code, b)
		}
		if code, _, b := restCall(t, ts, "GET", "/v2/models/simple/ready", ""); code != http.StatusOK {
			t.Errorf("simple ready after unloading mlp: %d %s", code, b)
		}
		restStillServes(t, ts)
	})

	t.Run("load with a config parameter", func(t *testing.T) {
		// The config replaces config.pbtxt (mlp has none): a smaller max_batch_size, the
		// rest auto-completed.
		restLoad(t, ts, "load", "mlp", `{"config":`+restJSONString(`{"name":"mlp","backend":"onnxruntime","max_batch_size":2}`)+`}`)
		code, _, b := restCall(t, ts, "GET", "/v2/models/mlp/config", "")
		if code != http.StatusOK {
			t.Fatalf("mlp config: %d %s", code, b)
		}
		restCheckTypes(t, "mlp config", restDecode(t, "mlp config", b), restConfigSchema)
		var cfg struct {
			MaxBatchSize int `json:"max_batch_size"`
		}
		if err := json.Unmarshal(b, &cfg); err != nil || cfg.MaxBatchSize != 2 {
			t.Errorf("mlp config after the override: max_batch_size %d (%v), want 2", cfg.MaxBatchSize, err)
		}
		if code, b := mlpInfer(2); code != http.StatusOK {
			t.Errorf("mlp infer of batch 2: %d %s", code, b)
		}
		code, b = mlpInfer(3)
		restWantError(t, "mlp infer of batch 3 over the loaded max_batch_size 2", code, b, http.StatusBadRequest, "batch size 3")
	})

	t.Run("load a model from files in the request", func(t *testing.T) {
		cfg := `{"name":"uploaded","backend":"onnxruntime","max_batch_size":4,` +
			`"input":[{"name":"INPUT0","data_type":"TYPE_INT32","dims":[-1]}],"output":[{"name":"OUTPUT0","data_type":"TYPE_INT32","dims":[-1]}]}`
		model := base64.StdEncoding.EncodeToString(onnxgen.Identity(onnxgen.Int32, "uploaded"))
		restLoad(t, ts, "load", "uploaded", `{"config":`+restJSONString(cfg)+`,"file:1/model.onnx":"`+model+`"}`)
		if got := restIndexState(t, ts, "uploaded"); got != "READY" {
			t.Errorf("index state of uploaded = %q, want READY", got)
		}
		code, _, b := restCall(t, ts, "POST", "/v2/models/uploaded/infer", `{"inputs":[{"name":"INPUT0","shape":[1,3],"datatype":"INT32","data":[7,-8,9]}]}`)
		if code != http.StatusOK {
			t.Fatalf("uploaded infer: %d %s", code, b)
		}
		if r := restParseInfer(t, "uploaded", b, jInteger); string(r.Outputs[0].Data) != "[7,-8,9]" || r.ModelVersion != "1" {
			t.Errorf("uploaded answered version %q data %s, want version 1 data [7,-8,9]", r.ModelVersion, r.Outputs[0].Data)
		}
	})

	for _, tc := range []struct {
		name, path, body string
		code             int
		parts            []string
	}{
		{"load of an unknown model", "/v2/repository/models/nope/load", "", 404, []string{"Request for unknown model: 'nope' is not found"}},
		{"unload of an unknown model", "/v2/repository/models/nope/unload", "", 404, []string{"Request for unknown model: 'nope' is not found"}},
		{"load of a name with dot-dot", "/v2/repository/models/%2e%2e/load", "", 400, []string{`".."`}},
		{"unload of a name with a slash", "/v2/repository/models/a%2Fb/unload", "", 400, []string{"'/'"}},
		{"load with malformed JSON", "/v2/repository/models/mlp/load", `{"parameters":`, 400, []string{"JSON"}},
		{"load with an unknown parameter", "/v2/repository/models/mlp/load", `{"parameters":{"colour":"red"}}`, 400, []string{`"colour"`}},
		{"load with a parameter that is no string", "/v2/repository/models/mlp/load", `{"parameters":{"config":1}}`, 400, []string{`"config"`}},
		{"unload with an unknown parameter", "/v2/repository/models/mlp/unload", `{"parameters":{"colour":true}}`, 400, []string{`"colour"`}},
		{"load with a file that is no base64", "/v2/repository/models/mlp/load", `{"parameters":{"file:1/model.onnx":"%%%"}}`, 400, []string{"base64"}},
		{"load with a file path outside the model", "/v2/repository/models/mlp/load", `{"parameters":{"file:../1/model.onnx":"AA=="}}`, 400, []string{"file:../1/model.onnx"}},
		{"load with an absolute file path", "/v2/repository/models/mlp/load", `{"parameters":{"file:/etc/passwd":"AA=="}}`, 400, []string{"file:/etc/passwd"}},
		// Bug: a config the client got wrong is a client error (Triton: 400), not a 500.
		{"load with a config that is no JSON", "/v2/repository/models/mlp/load", `{"parameters":{"config":"{"}}`, 400, []string{"config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, b := restCall(t, ts, "POST", tc.path, tc.body)
			restWantError(t, "POST "+tc.path+" "+tc.body, code, b, tc.code, tc.parts...)
			restStillServes(t, ts)
		})
	}

	t.Run("model ready after unload answers not ready", func(t *testing.T) {
		// An unloaded (or never loaded) model is still in the repository, so ready is false
		// (503, as for any model that is not ready), not "unknown".
		restLoad(t, ts, "unload", "mlp", "")
		for _, model := range []string{"mlp", "identity_fp32"} {
			code, _, b := restCall(t, ts, "GET", "/v2/models/"+model+"/ready", "")
			if want := `{"name":"` + model + `","ready":false}`; code != http.StatusServiceUnavailable || string(b) != want {
				t.Errorf("GET /v2/models/%s/ready (not loaded) = %d %s, want 503 %s", model, code, b, want)
			}
		}
	})
	t.Run("unload_dependents, as the advertised model_repository(unload_dependents) extension allows", func(t *testing.T) {
		restLoad(t, ts, "load", "mlp", "")
		restLoad(t, ts, "unload", "mlp", `{"unload_dependents":true}`)
		if got := restIndexState(t, ts, "mlp"); got != "UNAVAILABLE" {
			t.Errorf("index state of mlp after unload with unload_dependents = %q, want UNAVAILABLE", got)
		}
	})
}
