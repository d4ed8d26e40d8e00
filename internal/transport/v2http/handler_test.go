package v2http

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/goldentest"
	"github.com/ferryml/ferry/internal/transport/middleware"
	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is a Handler over a fakeCore behind a real socket.
type testServer struct {
	*httptest.Server
	core *fakeCore
}

func newTestServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	return newTestServerWith(t, opts, nil)
}

// newTestServerWith serves the Handler on a root where more mounts routes beside V2.
func newTestServerWith(t *testing.T, opts Options, more func(*http.ServeMux)) *testServer {
	t.Helper()
	fc := newFakeCore()
	srv := httptest.NewServer(serveRoot(New(fc, opts), more))
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, core: fc}
}

// serveRoot mounts h on a root built as cmd/ferry builds the server's (routes.go): one
// mux, with more mounting routes beside V2, wrapped in the layers every route shares.
func serveRoot(h *Handler, more func(*http.ServeMux)) http.Handler {
	mux := http.NewServeMux()
	h.Mount(mux)
	if more != nil {
		more(mux)
	}
	return middleware.Chain(middleware.JSONErrors(mux),
		middleware.LogRequests(h.log), middleware.Recover(h.log), middleware.LimitBody(h.limits.MaxBodyBytes))
}

type result struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request with the server's own client (so Close can reap its
// connections) and reads the whole answer.
func (s *testServer) do(t *testing.T, method, path string, body []byte, header map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	// Go's transport would ask for gzip and decompress behind our back; ask for the
	// identity encoding unless a test sets Accept-Encoding itself.
	req.Header.Set("Accept-Encoding", "identity")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b}
}

// render prints a response for a golden file: status, the headers clients look at,
// the JSON part, and any binary part in hex.
func (r result) render() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP %d\n", r.status)
	for _, k := range []string{"Content-Type", "Content-Encoding", "Inference-Header-Content-Length"} {
		if v := r.header.Get(k); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	body, bin := r.body, []byte(nil)
	if n, err := strconv.Atoi(r.header.Get("Inference-Header-Content-Length")); err == nil && n <= len(body) {
		body, bin = r.body[:n], r.body[n:]
	}
	b.Write(body)
	b.WriteString("\n")
	if len(bin) > 0 {
		fmt.Fprintf(&b, "binary: %s\n", hex.EncodeToString(bin))
	}
	return b.Bytes()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldentest.Compare(t, filepath.Join("testdata", name+".golden"), got, *update)
}

// TestEndpoints checks every endpoint's status, headers and body against golden files.
func TestEndpoints(t *testing.T) {
	s := newTestServerWith(t, Options{}, func(m *http.ServeMux) {
		m.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "# HELP ferry_up 1 when serving\nferry_up 1\n")
		})
	})
	const allTypes = `{"id":"all","inputs":[` +
		`{"name":"bool","datatype":"BOOL","shape":[2],"data":[true,false]},` +
		`{"name":"u8","datatype":"UINT8","shape":[2],"data":[0,255]},` +
		`{"name":"u16","datatype":"UINT16","shape":[2],"data":[0,65535]},` +
		`{"name":"u32","datatype":"UINT32","shape":[2],"data":[0,4294967295]},` +
		`{"name":"u64","datatype":"UINT64","shape":[2],"data":[0,18446744073709551615]},` +
		`{"name":"i8","datatype":"INT8","shape":[2],"data":[-128,127]},` +
		`{"name":"i16","datatype":"INT16","shape":[2],"data":[-32768,32767]},` +
		`{"name":"i32","datatype":"INT32","shape":[2],"data":[-2147483648,2147483647]},` +
		`{"name":"i64","datatype":"INT64","shape":[2],"data":[-9223372036854775808,9223372036854775807]},` +
		`{"name":"f16","datatype":"FP16","shape":[4],"data":[1.5,-2,65504,0.1]},` +
		`{"name":"bf16","datatype":"BF16","shape":[2],"data":[1.5,-3e38]},` +
		`{"name":"f32","datatype":"FP32","shape":[3],"data":[0.1,-1e-30,3.4028234e38]},` +
		`{"name":"f64","datatype":"FP64","shape":[2],"data":[0.1,-1.7976931348623157e308]},` +
		`{"name":"str","datatype":"BYTES","shape":[3],"data":["a","\u00e9\"\n",""]}]}`
	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
	}{
		{"live", "GET", "/v2/health/live", "", nil},
		{"ready", "GET", "/v2/health/ready", "", nil},
		{"server_metadata", "GET", "/v2", "", nil},
		{"model_metadata", "GET", "/v2/models/echo", "", nil},
		{"model_metadata_version", "GET", "/v2/models/echo/versions/2", "", nil},
		{"model_metadata_unknown", "GET", "/v2/models/nope", "", nil},
		{"model_metadata_unknown_version", "GET", "/v2/models/echo/versions/9", "", nil},
		{"model_ready", "GET", "/v2/models/echo/ready", "", nil},
		{"model_ready_version", "GET", "/v2/models/echo/versions/1/ready", "", nil},
		{"model_not_ready", "GET", "/v2/models/idle/ready", "", nil},
		{"model_ready_unknown", "GET", "/v2/models/nope/ready", "", nil},
		{"model_config", "GET", "/v2/models/echo/config", "", nil},
		{"model_config_version", "GET", "/v2/models/echo/versions/1/config", "", nil},
		{"stats_all", "GET", "/v2/models/stats", "", nil},
		{"stats_model", "GET", "/v2/models/echo/stats", "", nil},
		{"stats_version", "GET", "/v2/models/echo/versions/1/stats", "", nil},
		{"stats_unknown", "GET", "/v2/models/nope/stats", "", nil},
		{"index", "POST", "/v2/repository/index", "", nil},
		{"index_ready", "POST", "/v2/repository/index", `{"ready":true}`, nil},
		{"load", "POST", "/v2/repository/models/new/load", "", nil},
		{"load_failed", "POST", "/v2/repository/models/broken/load", "", nil},
		{"load_bad_parameter", "POST", "/v2/repository/models/new/load", `{"parameters":{"colour":"blue"}}`, nil},
		{"load_bad_file_path", "POST", "/v2/repository/models/new/load", `{"parameters":{"config":"{}","file:../x":"AA=="}}`, nil},
		{"unload", "POST", "/v2/repository/models/echo/unload", `{"parameters":{"unload_dependents":false}}`, nil},
		{"unload_unknown", "POST", "/v2/repository/models/nope/unload", "", nil},
		{"infer_nested", "POST", "/v2/models/echo/infer", `{"id":"7","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4.5]]}]}`, nil},
		{"infer_version", "POST", "/v2/models/echo/versions/2/infer", `{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[5]}],"parameters":{"p":1,"q":"s","r":true,"f":0.5}}`, nil},
		{"infer_all_datatypes", "POST", "/v2/models/echo/infer", allTypes, nil},
		{"infer_binary_output", "POST", "/v2/models/echo/infer", `{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2]},{"name":"y","shape":[1],"datatype":"BYTES","data":["hi"]}],"outputs":[{"name":"x","parameters":{"binary_data":true}},{"name":"y"}]}`, nil},
		{"infer_binary_data_output", "POST", "/v2/models/echo/infer", `{"parameters":{"binary_data_output":true},"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2]},{"name":"y","shape":[1],"datatype":"BYTES","data":["hi"]}],"outputs":[{"name":"x"},{"name":"y","parameters":{"binary_data":false}}]}`, nil},
		{"infer_unknown_model", "POST", "/v2/models/nope/infer", `{"inputs":[]}`, nil},
		{"infer_malformed", "POST", "/v2/models/echo/infer", `{"inputs":[{"name":"x",]}`, nil},
		{"bad_model_name_dots", "GET", "/v2/models/a..b", "", nil},
		{"bad_model_name_slash", "POST", "/v2/models/a%2Fb/infer", `{}`, nil},
		{"bad_version_name", "GET", "/v2/models/echo/versions/1..2", "", nil},
		{"no_such_endpoint", "GET", "/v3", "", nil},
		{"method_not_allowed", "DELETE", "/v2/health/live", "", nil},
		{"metrics", "GET", "/metrics", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tc.method, tc.path, []byte(tc.body), tc.header)
			golden(t, tc.name, r.render())
		})
	}
}

func TestHealthNotReady(t *testing.T) {
	s := newTestServer(t, Options{})
	s.core.live, s.core.ready = false, false
	for _, tc := range []struct{ path, want string }{
		{"/v2/health/live", `{"live":false}`},
		{"/v2/health/ready", `{"ready":false}`},
	} {
		r := s.do(t, "GET", tc.path, nil, nil)
		if r.status != http.StatusServiceUnavailable || string(r.body) != tc.want {
			t.Errorf("GET %s = %d %s, want 503 %s", tc.path, r.status, r.body, tc.want)
		}
	}
}

func TestLoadPassesConfigAndFiles(t *testing.T) {
	s := newTestServer(t, Options{})
	body := `{"parameters":{"config":"{\"backend\":\"onnxruntime\"}","file:1/model.onnx":"AAEC/w=="}}`
	r := s.do(t, "POST", "/v2/repository/models/new/load", []byte(body), nil)
	if r.status != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("load = %d %q, want 200 with an empty body", r.status, r.body)
	}
	got := s.core.loads["new"]
	if got.Config != `{"backend":"onnxruntime"}` || !bytes.Equal(got.Files["1/model.onnx"], []byte{0, 1, 2, 255}) || len(got.Files) != 1 {
		t.Errorf("LoadModel got %+v", got)
	}
}

func TestRepositoryCallsReachCore(t *testing.T) {
	s := newTestServer(t, Options{})
	if r := s.do(t, "POST", "/v2/repository/index", []byte(`{"ready":true}`), nil); r.status != 200 || !s.core.lastIndex {
		t.Errorf("index ready=true: status %d, core saw readyOnly=%v", r.status, s.core.lastIndex)
	}
	if r := s.do(t, "POST", "/v2/repository/models/echo/unload", nil, nil); r.status != 200 || len(s.core.unloads) != 1 {
		t.Errorf("unload: status %d, core unloads %v", r.status, s.core.unloads)
	}
	r := s.do(t, "POST", "/v2/repository/models/echo/unload", []byte(`{"parameters":{"unload_dependents":true}}`), nil)
	if r.status != 200 || len(s.core.unloads) != 2 || s.core.unloads[0] != "echo" || s.core.unloads[1] != "echo with dependents" {
		t.Errorf("unload_dependents=true = %d %s, core unloads %q; want 200, echo then echo with dependents", r.status, r.body, s.core.unloads)
	}
	r = s.do(t, "POST", "/v2/repository/models/echo/unload", []byte(`{"parameters":{"unload_everything":true}}`), nil)
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "unload_everything") {
		t.Errorf("unknown unload parameter = %d %s, want 400 naming it", r.status, r.body)
	}
	for path, want := range map[string][2]string{
		"/v2/models/stats":                 {"", ""},
		"/v2/models/echo/stats":            {"echo", ""},
		"/v2/models/echo/versions/1/stats": {"echo", "1"},
	} {
		s.do(t, "GET", path, nil, nil)
		if s.core.lastStats != want {
			t.Errorf("GET %s: core asked for %q, want %q", path, s.core.lastStats, want)
		}
	}
}

func TestPanicBecomes500(t *testing.T) {
	s := newTestServer(t, Options{})
	s.core.setInfer(func(*core.InferRequest) (*core.InferResponse, error) { panic("boom") })
	r := s.do(t, "POST", "/v2/models/echo/infer", []byte(`{"inputs":[]}`), nil)
	if r.status != http.StatusInternalServerError || !strings.Contains(string(r.body), "boom") {
		t.Errorf("panicking core = %d %s, want 500 naming the panic", r.status, r.body)
	}
}
