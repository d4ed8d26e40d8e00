package main

// The bad inputs of the monitoring research's §6.1 and the CVE classes of §4.9 that
// other test files do not already cover (docs/security-tests.md maps every item to its
// test). Each case sends the abuse to a real server over real sockets — a raw net.Conn
// where net/http's client would refuse to send it — checks the refusal, and then checks
// that the server still serves: a good inference answers 200 and /v2/health/ready is
// 200. Helpers are prefixed bad.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/inference"
)

// badHealthy is the check every case ends with: a good inference and a ready server.
func badHealthy(t *testing.T, ts *testServer) {
	t.Helper()
	restStillServes(t, ts)
	if code, _, b := restCall(t, ts, "GET", "/v2/health/ready", ""); code != http.StatusOK {
		t.Fatalf("GET /v2/health/ready afterwards: %d %s", code, b)
	}
}

// badRaw writes raw to a new connection to the HTTP listener (closing the write half
// when halfClose, so the server sees the end of what was sent) and reads one response.
// A connection the server closes without answering gives status 0.
func badRaw(t *testing.T, ts *testServer, raw string, halfClose bool) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// The server may answer (and close) before it has read everything: a write error
	// then is part of the refusal, not a failure of the test.
	go func() {
		if _, err := io.WriteString(conn, raw); err == nil && halfClose {
			conn.(*net.TCPConn).CloseWrite()
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// badPost is a POST request's head for path with the given extra header lines.
func badPost(path string, header ...string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + strings.Join(header, "") + "\r\n"
}

// badChunked is body as chunks of size bytes, then the last chunk.
func badChunked(body string, size int) string {
	var sb strings.Builder
	for len(body) > 0 {
		n := min(size, len(body))
		fmt.Fprintf(&sb, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	sb.WriteString("0\r\n\r\n")
	return sb.String()
}

// TestBadInputWire: Content-Lengths that lie, bodies of many tiny chunks (Triton's
// CVE-2025-23310/23311 crashed on about 3 MB of 6-byte chunks), malformed chunk sizes and
// over 1 MB of headers, sent on raw connections.
func TestBadInputWire(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	good := restSimpleInfer(1, false, "")
	const infer = "/v2/models/simple/infer"
	for _, tc := range []struct {
		name      string
		raw       string
		halfClose bool
		code      int    // 0: the server may also close without answering
		part      string // in the answer's body
	}{
		{"Content-Length larger than the body", badPost(infer, "Content-Length: "+strconv.Itoa(len(good)+100)+"\r\n") + good, true,
			http.StatusBadRequest, "error"},
		{"Content-Length smaller than the body", badPost(infer, "Content-Length: "+strconv.Itoa(len(good)-10)+"\r\n") + good, false,
			http.StatusBadRequest, "end of input"},
		{"Content-Length that is negative", badPost(infer, "Content-Length: -1\r\n") + good, false, http.StatusBadRequest, ""},
		{"two Content-Lengths that disagree", badPost(infer, "Content-Length: 10\r\n", "Content-Length: 20\r\n") + good, false, http.StatusBadRequest, ""},
		// RFC 9112 §6.3: chunked wins over a Content-Length.
		{"Content-Length beside chunked", badPost(infer, "Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n") + badChunked(good, 64), false,
			http.StatusOK, `"OUTPUT0"`},
		// 1-byte chunks are 6 bytes each on the wire: 600k of them are 3.6 MB.
		{"600k one-byte chunks", badPost(infer, "Transfer-Encoding: chunked\r\n") + badChunked(good+strings.Repeat(" ", 600_000-len(good)), 1), false,
			http.StatusOK, `"OUTPUT0"`},
		{"chunk size that is no hex number", badPost(infer, "Transfer-Encoding: chunked\r\n") + "zz\r\nabc\r\n0\r\n\r\n", false, http.StatusBadRequest, ""},
		{"chunk size past int64", badPost(infer, "Transfer-Encoding: chunked\r\n") + "fffffffffffffffffff\r\nabc\r\n0\r\n\r\n", false, http.StatusBadRequest, ""},
		{"chunked body cut short", badPost(infer, "Transfer-Encoding: chunked\r\n") + "1000\r\n" + good, true, http.StatusBadRequest, "error"},
		{"2 MiB of headers", badPost(infer, "X-Pad: "+strings.Repeat("a", 2<<20)+"\r\n", "Content-Length: "+strconv.Itoa(len(good))+"\r\n") + good, false,
			http.StatusRequestHeaderFieldsTooLarge, ""},
		{"20000 small headers", badPost(infer, strings.Repeat("X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 20000)), false,
			http.StatusRequestHeaderFieldsTooLarge, ""},
		{"request line of 2 MiB", "GET /v2/models/" + strings.Repeat("a", 2<<20) + "/ready HTTP/1.1\r\nHost: x\r\n\r\n", false,
			http.StatusRequestHeaderFieldsTooLarge, ""},
		{"not HTTP at all", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", false, http.StatusBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := badRaw(t, ts, tc.raw, tc.halfClose)
			if code != tc.code || !strings.Contains(body, tc.part) {
				t.Errorf("answer %d %.300s, want %d with %q", code, body, tc.code, tc.part)
			}
			badHealthy(t, ts)
		})
	}
}

// TestBadInputTensors: tensor payloads §6.1 item 2 lists that rest_e2e_test.go and
// grpc_e2e_test.go do not: far more requested outputs than the model has (CWE-789,
// CVE-2026-24146), binary-extension sizes that are negative or overflow, BYTES with the
// wrong element count in JSON, NaN/Infinity literals and numbers out of range,
// deeply nested data, and zero dims that make an empty tensor.
func TestBadInputTensors(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	const infer = "/v2/models/simple/infer"
	good := restSimpleInfer(1, false, "")
	withOutputs := func(outs []string) string {
		return strings.Replace(good, `{"inputs"`, `{"outputs":[`+strings.Join(outs, ",")+`],"inputs"`, 1)
	}
	many := func(n int, name func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = `{"name":"` + name(i) + `"}`
		}
		return out
	}
	binIn := func(sizes ...string) string {
		ins := make([]string, len(sizes))
		for i, s := range sizes {
			ins[i] = fmt.Sprintf(`{"name":"INPUT%d","shape":[1,16],"datatype":"INT32","parameters":{"binary_data_size":%s}}`, i, s)
		}
		return `{"inputs":[` + strings.Join(ins, ",") + `]}`
	}
	fp := func(model, dtype, data string) (string, string) {
		return "/v2/models/" + model + "/infer", `{"inputs":[{"name":"INPUT0","shape":[1,1],"datatype":"` + dtype + `","data":` + data + `}]}`
	}
	type tcase struct {
		name, path, body string
		header           []string
		code             int
		parts            []string
	}
	cases := []tcase{
		{"100k requests of one output", infer, withOutputs(many(100_000, func(int) string { return "OUTPUT0" })), nil, 400, []string{`"OUTPUT0"`}},
		{"100k distinct unknown outputs", infer, withOutputs(many(100_000, func(i int) string { return "o" + strconv.Itoa(i) })), nil, 400, []string{`"o0"`}},
		{"binary_data_size negative", infer, binIn("-64", "64"), nil, 400, []string{`"INPUT0"`, "binary_data_size"}},
		{"binary_data_size past int64", infer, binIn("9223372036854775808", "64"), nil, 400, []string{"binary_data_size"}},
		{"binary_data_sizes whose sum overflows", infer, binIn("9223372036854775807", "9223372036854775807"), nil, 400, []string{"binary_data_size"}},
		{"binary_data_size that is a fraction", infer, binIn("6.4e1", "64"), nil, 400, []string{"binary_data_size"}},
		{"BYTES with fewer strings than the shape", "/v2/models/identity_bytes/infer",
			`{"inputs":[{"name":"INPUT0","shape":[1,3],"datatype":"BYTES","data":["a","b"]}]}`, nil, 400, []string{`"INPUT0"`, "3", "2"}},
		{"BYTES with more strings than the shape", "/v2/models/identity_bytes/infer",
			`{"inputs":[{"name":"INPUT0","shape":[1,1],"datatype":"BYTES","data":["a","b"]}]}`, nil, 400, []string{`"INPUT0"`}},
		{"BYTES given as numbers", "/v2/models/identity_bytes/infer",
			`{"inputs":[{"name":"INPUT0","shape":[1,1],"datatype":"BYTES","data":[1]}]}`, nil, 400, []string{`"INPUT0"`}},
		{"zero dimension", "/v2/models/identity_fp32/infer", `{"inputs":[{"name":"INPUT0","shape":[1,0],"datatype":"FP32","data":[]}]}`, nil, 0, nil},
		{"negative dimension", "/v2/models/identity_fp32/infer", `{"inputs":[{"name":"INPUT0","shape":[1,-4],"datatype":"FP32","data":[1,2,3,4]}]}`, nil,
			400, []string{`"INPUT0"`}},
		{"dims past int64", "/v2/models/identity_fp32/infer", `{"inputs":[{"name":"INPUT0","shape":[1,9223372036854775808],"datatype":"FP32","data":[1]}]}`, nil,
			400, []string{`"INPUT0"`}},
		{"data nested 100k deep", "/v2/models/identity_fp32/infer",
			`{"inputs":[{"name":"INPUT0","shape":[1,1],"datatype":"FP32","data":` + strings.Repeat("[", 100_000) + "1" + strings.Repeat("]", 100_000) + `}]}`, nil,
			400, []string{`"INPUT0"`}},
		{"parameters nested 100k deep", infer, strings.Replace(good, `{"inputs"`, `{"parameters":{"x":`+strings.Repeat(`{"a":`, 100_000)+"1"+strings.Repeat("}", 100_000)+`},"inputs"`, 1), nil,
			400, nil},
	}
	for _, lit := range []string{"NaN", "Infinity", "-Infinity", "nan", "inf", "1e999", "-1e999"} {
		for _, dt := range []string{"FP32", "FP64"} {
			path, body := fp("identity_"+strings.ToLower(dt), dt, "["+lit+"]")
			cases = append(cases, tcase{lit + " in " + dt, path, body, nil, 400, nil})
		}
	}
	{ // a denormal is a number like any other
		path, body := fp("identity_fp64", "FP64", "[4.9e-324]")
		cases = append(cases, tcase{"denormal FP64", path, body, nil, 200, nil})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, _, b := restCall(t, ts, "POST", tc.path, tc.body, tc.header...)
			switch {
			case tc.code == 0: // either answer is right; what matters is a clear one
				if code != http.StatusOK && code != http.StatusBadRequest {
					t.Errorf("answer %d %.300s, want 200 or 400", code, b)
				}
			case tc.code == http.StatusOK:
				if code != http.StatusOK {
					t.Errorf("answer %d %.300s, want 200", code, b)
				}
			default:
				restWantError(t, "POST "+tc.path, code, b, tc.code, tc.parts...)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v to answer", d)
			}
			badHealthy(t, ts)
		})
	}

	t.Run("gRPC: 100k requested outputs", func(t *testing.T) {
		req := e2eSimpleRequest("", 1, true)
		for i := range 100_000 {
			req.Outputs = append(req.Outputs, &inference.ModelInferRequest_InferRequestedOutputTensor{Name: "o" + strconv.Itoa(i)})
		}
		_, err := ts.GRPC.ModelInfer(t.Context(), req)
		e2eWantStatus(t, "ModelInfer", err, codes.InvalidArgument, `"o0"`)
		e2eStillServes(t, ts)
		badHealthy(t, ts)
	})
	t.Run("gRPC: BYTES contents with the wrong element count", func(t *testing.T) {
		req := &inference.ModelInferRequest{ModelName: "identity_bytes", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
			Name: "INPUT0", Datatype: "BYTES", Shape: []int64{1, 3}, Contents: &inference.InferTensorContents{BytesContents: [][]byte{[]byte("a")}}}}}
		_, err := ts.GRPC.ModelInfer(t.Context(), req)
		e2eWantStatus(t, "ModelInfer", err, codes.InvalidArgument, `"INPUT0"`)
		e2eStillServes(t, ts)
	})
}

// TestBadInputNames: model and version names §6.1 item 3 and Triton's
// ModelNameValidationTest list (CWE-22, CVE-2026-24208/24209), over every REST route
// that takes a name, the repository extension in explicit mode, gRPC and /api/v1. A name
// that could leave the repository is 400 (gRPC INVALID_ARGUMENT); a harmless name that
// names no model is 404; no answer is a redirect or a 5xx.
func TestBadInputNames(t *testing.T) {
	ts := startServer(t, exampleRepo(t), withDataDir(t.TempDir()), func(c *serveConfig) {
		c.mode, c.loadModels = "explicit", []string{"simple"}
	})
	long := strings.Repeat("m", 10_000)
	for _, tc := range []struct {
		name, escaped string // the name and how it appears in a path
		code          int    // on REST routes
	}{
		{"../x", "..%2Fx", 400},
		{"a/../b", "a%2F..%2Fb", 400},
		{"/etc/passwd", "%2Fetc%2Fpasswd", 400},
		{"..", "%2e%2e", 400},
		{"../", "%2e%2e%2f", 400},
		{"model/..", "model%2F..", 400},
		{"model/subdir", "model%2Fsubdir", 400},
		{` ..`, "%20..", 400},
		{`.. `, "..%20", 400},
		{`\..\x`, "%5C..%5Cx", 400},
		{`..\..\etc`, "..%5C..%5Cetc", 400},
		{"a\x00b", "a%00b", 400},
		{"a\r\nb", "a%0D%0Ab", 400},
		{"a\x1b[31mb", "a%1B%5B31mb", 400},
		{" ", "%20", 404},
		{"\t", "%09", 400},
		{long, long, 404},
	} {
		t.Run(strconv.QuoteToASCII(tc.name[:min(len(tc.name), 20)]), func(t *testing.T) {
			for _, r := range []struct{ method, path string }{
				{"GET", "/v2/models/" + tc.escaped},
				{"GET", "/v2/models/" + tc.escaped + "/ready"},
				{"GET", "/v2/models/" + tc.escaped + "/config"},
				{"GET", "/v2/models/" + tc.escaped + "/stats"},
				{"POST", "/v2/models/" + tc.escaped + "/infer"},
				{"GET", "/v2/models/simple/versions/" + tc.escaped + "/ready"},
				{"POST", "/v2/repository/models/" + tc.escaped + "/load"},
				{"POST", "/v2/repository/models/" + tc.escaped + "/unload"},
				{"GET", "/api/v1/models/" + tc.escaped},
				{"DELETE", "/api/v1/models/" + tc.escaped},
			} {
				body := ""
				if strings.HasSuffix(r.path, "/infer") {
					body = restSimpleInfer(1, false, "")
				}
				code, _, b := restCall(t, ts, r.method, r.path, body)
				if code != tc.code && !(tc.code == 404 && code == 400) {
					t.Errorf("%s %.80s: %d %.200s, want %d", r.method, r.path, code, b, tc.code)
				}
			}
			// ModelReady answers "not ready" for any name it cannot serve, as Triton does.
			if res, err := ts.GRPC.ModelReady(t.Context(), &inference.ModelReadyRequest{Name: tc.name}); err != nil || res.GetReady() {
				t.Errorf("gRPC ModelReady: %v %v, want ready false", res, err)
			}
			_, err := ts.GRPC.ModelMetadata(t.Context(), &inference.ModelMetadataRequest{Name: tc.name})
			if c := status.Code(err); c != codes.InvalidArgument && c != codes.NotFound {
				t.Errorf("gRPC ModelMetadata: %v, want INVALID_ARGUMENT or NOT_FOUND", err)
			}
			_, err = ts.GRPC.RepositoryModelLoad(t.Context(), &inference.RepositoryModelLoadRequest{ModelName: tc.name})
			if c := status.Code(err); c != codes.InvalidArgument && c != codes.NotFound {
				t.Errorf("gRPC RepositoryModelLoad: %v, want INVALID_ARGUMENT or NOT_FOUND", err)
			}
			badHealthy(t, ts)
		})
	}
	// nothing above created a folder or a model: the repository holds what it held.
	dirs, err := os.ReadDir(ts.cfg.repository)
	if got := repositoryIndex(t, ts.URL); err != nil || len(got) != len(dirs) {
		t.Errorf("index lists %d models, the repository folder has %d (%v)", len(got), len(dirs), err)
	}
}

// TestBadInputErrorsLeakNoPaths: the CVE-2025-23319 chain began with an error message
// naming an internal shared memory region. Ferry's error answers to clients name neither
// the repository's folder nor any other absolute path of the server's. Requests that
// make a model load fail are checked apart: their answers carry the backend's error,
// which names the model file by its absolute path (a bug, skipped below until fixed).
func TestBadInputErrorsLeakNoPaths(t *testing.T) {
	repo := exampleRepo(t)
	writeModel(t, repo, "broken", 1, []byte("not an onnx file"), "")
	ts := startServer(t, repo, func(c *serveConfig) {
		c.mode, c.loadModels, c.strictReady = "explicit", []string{"simple", "broken"}, false
	})
	type call struct{ method, path, body string }
	refusals := func(calls []call, rpcs ...error) map[string]string {
		answers := map[string]string{}
		for _, r := range calls {
			code, _, b := restCall(t, ts, r.method, r.path, r.body)
			what := r.method + " " + r.path + " " + r.body
			if code < 400 {
				t.Errorf("%s: %d %s, want a refusal", what, code, b)
			}
			answers[what] = string(b)
		}
		for i, err := range rpcs {
			if err == nil {
				t.Errorf("gRPC call %d succeeded, want a refusal", i)
			}
			answers[fmt.Sprint("gRPC call ", i)] = status.Convert(err).Message()
		}
		return answers
	}
	leaks := func(answers map[string]string) []string {
		var out []string
		for what, b := range answers {
			for _, s := range []string{repo, filepath.Dir(repo), os.TempDir() + "/", "/dev/shm", "/proc/", ".ort/"} {
				if strings.Contains(b, s) {
					out = append(out, fmt.Sprintf("%s answers %.300s (names %q)", what, b, s))
				}
			}
		}
		return out
	}
	t.Run("refusals", func(t *testing.T) {
		for _, l := range leaks(refusals([]call{
			{"GET", "/v2/models/broken/ready", ""},
			{"POST", "/v2/repository/models/nope/load", ""},
			{"POST", "/v2/repository/models/simple/load", `{"parameters":{"file:../../x":"YQ=="}}`},
			{"POST", "/v2/repository/models/simple/load", `{"parameters":{"config":"not json"}}`},
			{"POST", "/v2/models/simple/infer", `{"inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"INT32","parameters":{"shared_memory_region":"x"}}]}`},
			{"POST", "/v2/systemsharedmemory/region/x/register", `{"key":"/ferry-no-such-object","offset":0,"byte_size":8}`},
			{"POST", "/v2/systemsharedmemory/region/x/register", `{"key":"../../etc/passwd","offset":0,"byte_size":8}`},
			{"GET", "/v2/models/simple/versions/9/config", ""},
			{"POST", "/v2/logging", `{"log_file":"/tmp/ferry-evil.log"}`},
			{"POST", "/v2/trace/setting", `{"trace_file":"/tmp/ferry-evil.json"}`},
		}, grpcErr(ts.GRPC.SystemSharedMemoryRegister(t.Context(), &inference.SystemSharedMemoryRegisterRequest{Name: "x", Key: "/ferry-no-such-object", ByteSize: 8})),
			grpcErr(ts.GRPC.ModelConfig(t.Context(), &inference.ModelConfigRequest{Name: "nope"})))) {
			t.Error(l)
		}
		for _, f := range []string{"/tmp/ferry-evil.log", "/tmp/ferry-evil.json"} {
			if _, err := os.Stat(f); err == nil {
				t.Errorf("a settings request made the server write %s, a file the client named", f)
			}
		}
		badHealthy(t, ts)
	})
	t.Run("failed loads", func(t *testing.T) {
		l := leaks(refusals([]call{
			{"POST", "/v2/models/broken/infer", restSimpleInfer(1, false, "")},
			{"GET", "/v2/models/broken/config", ""},
			{"POST", "/v2/repository/models/broken/load", ""},
			{"POST", "/v2/repository/models/simple/load", `{"parameters":{"config":"{\"backend\":\"python\"}"}}`},
		}, grpcErr(ts.GRPC.ModelInfer(t.Context(), &inference.ModelInferRequest{ModelName: "broken", Inputs: e2eSimpleRequest("", 1, true).Inputs})),
			grpcErr(ts.GRPC.RepositoryModelLoad(t.Context(), &inference.RepositoryModelLoadRequest{ModelName: "broken"}))))
		badHealthy(t, ts)
		if len(l) > 0 {
			t.Errorf("a failed load's error answer names a server path:\n%s", strings.Join(l, "\n"))
		}
	})
}

func grpcErr[T any](_ T, err error) error { return err }

// TestBadInputTraceHeaders: §6.1 item 7. Malformed traceparent headers, more than 32
// tracestate members and repeated headers never fail a request (REST or gRPC).
func TestBadInputTraceHeaders(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	members := make([]string, 40)
	for i := range members {
		members[i] = fmt.Sprintf("v%d=x%d", i, i)
	}
	for _, tc := range []struct{ name, traceparent, tracestate string }{
		{"version ff", "ff-" + id + "-00f067aa0ba902b7-01", ""},
		{"all-zero trace id", "00-" + strings.Repeat("0", 32) + "-00f067aa0ba902b7-01", ""},
		{"all-zero parent id", "00-" + id + "-0000000000000000-01", ""},
		{"uppercase hex", "00-" + strings.ToUpper(id) + "-00f067aa0ba902b7-01", ""},
		{"short", "00-" + id[:30] + "-00f067aa0ba902b7-01", ""},
		{"long", "00-" + id + "ab-00f067aa0ba902b7-01", ""},
		{"version 00 with a fifth field", "00-" + id + "-00f067aa0ba902b7-01-xx", ""},
		{"not hex", "00-" + strings.Repeat("z", 32) + "-00f067aa0ba902b7-01", ""},
		{"empty", "", ""},
		{"40 tracestate members", "00-" + id + "-00f067aa0ba902b7-01", strings.Join(members, ",")},
		{"tracestate of 64 KiB", "00-" + id + "-00f067aa0ba902b7-01", "k=" + strings.Repeat("v", 64<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", ts.URL+"/v2/models/simple/infer", strings.NewReader(restSimpleInfer(1, false, "")))
			if err != nil {
				t.Fatal(err)
			}
			req.Header["Traceparent"] = []string{tc.traceparent, "00-" + id + "-00f067aa0ba902b7-01"} // a repeated header too
			req.Header["Tracestate"] = []string{tc.tracestate, tc.tracestate}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("REST infer: %d %s, want 200", resp.StatusCode, b)
			}
			ctx := metadata.AppendToOutgoingContext(t.Context(), "traceparent", tc.traceparent, "traceparent", "00-"+id+"-00f067aa0ba902b7-01",
				"tracestate", tc.tracestate)
			if !strings.ContainsAny(tc.traceparent+tc.tracestate, "\x01\x7f") { // grpc-go refuses to send those itself
				if _, err := ts.GRPC.ModelInfer(ctx, e2eSimpleRequest("", 1, true)); err != nil {
					t.Errorf("gRPC infer: %v", err)
				}
			}
			badHealthy(t, ts)
		})
	}
	t.Run("control characters", func(t *testing.T) { // net/http's client will not send them
		body := restSimpleInfer(1, false, "")
		code, b := badRaw(t, ts, badPost("/v2/models/simple/infer", "Traceparent: 00-\x01\x7f\r\n", "Tracestate: a=\x01\r\n",
			"Content-Length: "+strconv.Itoa(len(body))+"\r\n")+body, false)
		if code != http.StatusOK && code != http.StatusBadRequest {
			t.Errorf("answer %d %.300s, want 200 (header ignored) or 400 (header refused)", code, b)
		}
		badHealthy(t, ts)
	})
}

// TestBadInputLogInjection: §6.1 item 8. CR, LF and ANSI escapes in model names, paths
// and header values reach the JSON log (at debug, where every request is logged) only
// escaped: every line is one JSON object and no line holds a raw control byte.
func TestBadInputLogInjection(t *testing.T) {
	var out lockedLog
	// slog's JSON handler, which newLogger's "json" format is, at debug from the start.
	ts := startServerLogging(t, exampleRepo(t), slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const evil = "x\r\n{\"level\":\"ERROR\",\"msg\":\"forged\"}\x1b[2J\x1b]0;owned\x07"
	escaped := "x%0D%0A%7B%22level%22:%22ERROR%22,%22msg%22:%22forged%22%7D%1B%5B2J%1B%5D0;owned%07"
	restCall(t, ts, "GET", "/v2/models/"+escaped+"/ready", "")
	restCall(t, ts, "POST", "/v2/models/"+escaped+"/infer", restSimpleInfer(1, false, ""))
	restCall(t, ts, "POST", "/v2/repository/models/"+escaped+"/load", "")
	restCall(t, ts, "GET", "/no/such/"+escaped, "")
	body := restSimpleInfer(1, false, "")
	if code, b := badRaw(t, ts, badPost("/v2/models/simple/infer", "X-Ferry-Actor: a\x1b[31mb\r\n", "User-Agent: \x1b[2J\r\n",
		"Content-Length: "+strconv.Itoa(len(body))+"\r\n")+body, false); code != http.StatusOK && code != http.StatusBadRequest {
		t.Errorf("a request with ANSI escapes in headers: %d %.300s, want 200 or 400", code, b)
	}
	_, _ = ts.GRPC.ModelInfer(t.Context(), &inference.ModelInferRequest{ModelName: evil})
	_, _ = ts.GRPC.ModelReady(t.Context(), &inference.ModelReadyRequest{Name: evil})
	badHealthy(t, ts)

	out.mu.Lock()
	logged := out.b.String()
	out.mu.Unlock()
	if !strings.Contains(logged, `"msg":"http request"`) {
		t.Fatalf("no request was logged at debug; log:\n%.2000s", logged)
	}
	lines := strings.Split(strings.TrimSuffix(logged, "\n"), "\n")
	for _, line := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("a log line is not one JSON object (%v): %q", err, line)
		}
		if strings.ContainsAny(line, "\r\x1b\x07") {
			t.Errorf("a log line holds a raw control byte: %q", line)
		}
		if v["msg"] == "forged" {
			t.Errorf("a forged log line: %q", line)
		}
	}
	if !strings.Contains(logged, `\u001b`) {
		t.Errorf("the escaped name is not in the log at all (was the request logged?):\n%.2000s", logged)
	}
}

// TestBadInputForeignOrigin: the Ray CVE-2026-27482 class. A web page (another site's,
// or one that reached the port by DNS rebinding, whose Origin then names the server
// itself) makes a browser send state-changing requests, DELETE included, to the
// management API and the V2 repository, shared memory and settings routes: 403, and
// nothing changes. Reads with an Origin, and the same writes without one, still work.
func TestBadInputForeignOrigin(t *testing.T) {
	ts := startServer(t, exampleRepo(t), withDataDir(t.TempDir()), func(c *serveConfig) {
		c.mode, c.loadModels = "explicit", []string{"simple", "mlp"}
	})
	if code, _, b := restCall(t, ts, "POST", "/api/v1/models", `{"name":"keep"}`); code != http.StatusCreated {
		t.Fatalf("create model keep without Origin: %d %s", code, b)
	}
	writes := []struct{ method, path, body string }{
		{"POST", "/api/v1/models", `{"name":"csrf"}`},
		{"DELETE", "/api/v1/models/keep", ""},
		{"PATCH", "/api/v1/models/keep", `{"description":"x"}`},
		{"POST", "/v2/repository/models/mlp/unload", ""},
		{"POST", "/v2/repository/models/mlp/load", ""},
		{"POST", "/v2/systemsharedmemory/unregister", ""},
		{"POST", "/v2/logging", `{"log_verbose_level":1}`},
		{"POST", "/v2/models/simple/infer", restSimpleInfer(1, false, "")},
	}
	for _, origin := range []string{"http://evil.example", strings.Replace(ts.URL, "127.0.0.1", "rebound.example", 1), "null"} {
		for _, r := range writes {
			code, _, b := restCall(t, ts, r.method, r.path, r.body, "Origin", origin)
			restWantError(t, r.method+" "+r.path+" from Origin "+origin, code, b, http.StatusForbidden, r.method, "web page")
		}
	}
	if code, _, b := restCall(t, ts, "GET", "/api/v1/models/keep", "", "Origin", "http://evil.example"); code != http.StatusOK {
		t.Errorf("model keep after the refused DELETE, read with an Origin: %d %s, want 200", code, b)
	}
	if code, _, b := restCall(t, ts, "GET", "/api/v1/models/csrf", ""); code != http.StatusNotFound {
		t.Errorf("model csrf after the refused POST: %d %s, want 404", code, b)
	}
	if state := restIndexState(t, ts, "mlp"); state != "READY" {
		t.Errorf("mlp after the refused unload is %s, want READY", state)
	}
	if code, _, b := restCall(t, ts, "DELETE", "/api/v1/models/keep", ""); code >= 300 {
		t.Errorf("DELETE without an Origin: %d %s, want it done", code, b)
	}
	badHealthy(t, ts)
}

// TestBadInputRequestLineFuzz: §6.1 item 9, boofuzz-style. Mutated request lines and
// heads (methods, paths of random bytes, versions, missing or doubled parts) against every
// kind of endpoint, from a fixed seed: no answer is a 5xx, the server stays healthy, and
// it ends holding no more goroutines or file descriptors than it started with.
func TestBadInputRequestLineFuzz(t *testing.T) {
	ts := startServer(t, exampleRepo(t), withDataDir(t.TempDir()))
	badHealthy(t, ts)
	goroutines, fds := runtime.NumGoroutine(), badOpenFDs(t)
	paths := []string{"/v2", "/v2/health/ready", "/v2/models/simple", "/v2/models/simple/infer", "/v2/models/simple/versions/1/ready",
		"/v2/models/simple/config", "/v2/models/stats", "/v2/repository/index", "/v2/repository/models/simple/load",
		"/v2/systemsharedmemory/status", "/v2/logging", "/v2/trace/setting", "/metrics", "/api/v1/models", "/api/v1/models/simple"}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "get", "G\x00T", "", strings.Repeat("P", 300)}
	rng := rand.New(rand.NewPCG(17, 61))
	mutate := func(s string) string {
		b := []byte(s)
		for range 1 + rng.IntN(4) {
			switch i := rng.IntN(max(len(b), 1)); rng.IntN(4) {
			case 0: // a random byte
				if len(b) > 0 {
					b[i] = byte(rng.IntN(256))
				}
			case 1: // insert a token that parsers trip on
				tok := []string{"%", "%00", "%zz", "/..", "//", "?", "#", " ", "\t", "\r", "\n", "%2e%2e%2f", "\\", "\xff\xfe", "{", "*"}[rng.IntN(16)]
				b = append(b[:i:i], append([]byte(tok), b[i:]...)...)
			case 2: // cut
				b = b[:i]
			case 3: // repeat a part
				b = append(b, b[i:]...)
			}
		}
		return string(b)
	}
	const n = 1500
	for i := range n {
		method, path, version := methods[rng.IntN(len(methods))], paths[rng.IntN(len(paths))], "HTTP/1.1"
		line := method + " " + path + " " + version
		if rng.IntN(4) > 0 {
			line = mutate(line)
		}
		head := line + "\r\nHost: 127.0.0.1\r\n"
		if rng.IntN(3) == 0 {
			head += mutate("Content-Length: 2") + "\r\n"
		}
		code, body := badRaw(t, ts, head+"\r\n{}", true)
		if code >= 500 {
			t.Errorf("request %d %q: %d %.200s", i, line, code, body)
		}
	}
	badHealthy(t, ts)
	httpClientCloseIdle()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && (runtime.NumGoroutine() > goroutines+5 || badOpenFDs(t) > fds+5) {
		time.Sleep(50 * time.Millisecond)
	}
	if g, f := runtime.NumGoroutine(), badOpenFDs(t); g > goroutines+5 || f > fds+5 {
		t.Errorf("after %d fuzzed requests: %d goroutines (%d before), %d open files (%d before)", n, g, goroutines, f, fds)
	}
}

// badOpenFDs counts this process's open file descriptors.
func badOpenFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files without /proc: %v", err)
	}
	return len(fds)
}
