package v2http

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/google/go-cmp/cmp"
)

// binaryBody joins a JSON header and binary sections, returning the body and the
// Inference-Header-Content-Length value.
func binaryBody(header string, sections ...[]byte) ([]byte, map[string]string) {
	body := []byte(header)
	for _, s := range sections {
		body = append(body, s...)
	}
	return body, map[string]string{
		"Inference-Header-Content-Length": strconv.Itoa(len(header)),
		"Content-Type":                    "application/octet-stream",
	}
}

func TestBinaryRequestAndResponse(t *testing.T) {
	s := newTestServer(t, Options{})
	header := `{"inputs":[` +
		`{"name":"x","shape":[2,2],"datatype":"UINT32","parameters":{"binary_data_size":16}},` +
		`{"name":"j","shape":[1],"datatype":"INT8","data":[-1]},` +
		`{"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":14}},` +
		`{"name":"b","shape":[3],"datatype":"BOOL","parameters":{"binary_data_size":3}}],` +
		`"outputs":[{"name":"x","parameters":{"binary_data":true}},{"name":"s","parameters":{"binary_data":true}},{"name":"j"},{"name":"b"}]}`
	x := le(uint32(1), uint32(2), uint32(3), uint32(4))
	str := bytesData("hello", "a")
	body, hdr := binaryBody(header, x, str, []byte{1, 0, 1})
	r := s.do(t, "POST", "/v2/models/echo/infer", body, hdr)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := s.core.last()
	want := []*tensor.Tensor{
		tensorOf("x", tensor.Uint32, []int64{2, 2}, x),
		tensorOf("j", tensor.Int8, []int64{1}, []byte{0xff}),
		tensorOf("s", tensor.Bytes, []int64{2}, str),
		tensorOf("b", tensor.Bool, []int64{3}, []byte{1, 0, 1}),
	}
	if diff := cmp.Diff(want, got.Inputs); diff != "" {
		t.Errorf("core received (-want +got):\n%s", diff)
	}
	n, err := strconv.Atoi(r.header.Get("Inference-Header-Content-Length"))
	if err != nil || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("binary response headers: %v", r.header)
	}
	wantJSON := `{"model_name":"echo","model_version":"1","outputs":[` +
		`{"name":"x","datatype":"UINT32","shape":[2,2],"parameters":{"binary_data_size":16}},` +
		`{"name":"s","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":14}},` +
		`{"name":"j","datatype":"INT8","shape":[1],"data":[-1]},` +
		`{"name":"b","datatype":"BOOL","shape":[3],"data":[true,false,true]}]}`
	if string(r.body[:n]) != wantJSON {
		t.Errorf("JSON header\n got %s\nwant %s", r.body[:n], wantJSON)
	}
	if wantBin := append(append([]byte{}, x...), str...); !bytes.Equal(r.body[n:], wantBin) {
		t.Errorf("binary section = %x, want %x", r.body[n:], wantBin)
	}
	if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) {
		t.Errorf("Content-Length %s, body %d bytes", cl, len(r.body))
	}
}

func TestRawBinaryRequest(t *testing.T) {
	s := newTestServer(t, Options{})
	raw := map[string]string{"Inference-Header-Content-Length": "0"}
	x := le(float32(1), float32(2), float32(3), float32(4))
	for _, tc := range []struct {
		name, model string
		body        []byte
		wantStatus  int
		wantInput   *tensor.Tensor
		wantErr     string
	}{
		// echo batches (max_batch_size 8) with dims [4]: a batch of one.
		{"fixed shape", "echo", x, 200, tensorOf("x", tensor.FP32, []int64{1, 4}, x), ""},
		{"wrong size", "echo", x[:12], 400, nil, `input "x": raw binary body has 3 FP32 elements, model shape [1,4] needs 4`},
		{"partial element", "echo", x[:7], 400, nil, `input "x": raw binary body of 7 bytes is not a whole number of FP32 elements`},
		// text takes one BYTES element, sent without its length prefix.
		{"bytes without prefix", "text", []byte("hello"), 200, tensorOf("s", tensor.Bytes, []int64{1}, bytesData("hello")), ""},
		{"two inputs", "idle", nil, 400, nil, `a raw binary request (Inference-Header-Content-Length: 0) needs a model with exactly one input; model "idle" has 0`},
		{"unknown model", "nope", nil, 404, nil, `Request for unknown model: 'nope' is not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, "POST", "/v2/models/"+tc.model+"/infer", tc.body, raw)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.body)
			}
			if tc.wantErr != "" {
				if want := `{"error":` + strconv.Quote(tc.wantErr) + `}`; string(r.body) != want {
					t.Errorf("body %s, want %s", r.body, want)
				}
				return
			}
			got := s.core.last()
			if diff := cmp.Diff(tc.wantInput, got.Inputs[0]); diff != "" {
				t.Errorf("core received (-want +got):\n%s", diff)
			}
			n, _ := strconv.Atoi(r.header.Get("Inference-Header-Content-Length"))
			if !bytes.Equal(r.body[n:], tc.wantInput.Data) {
				t.Errorf("raw requests return outputs in binary: got %q after a %d-byte header", r.body[n:], n)
			}
		})
	}
}

func TestRawShape(t *testing.T) {
	for _, tc := range []struct {
		name      string
		shape     []int64
		size      int
		want      []int64
		wantError string
	}{
		{"variable dimension deduced", []int64{-1, 3}, 24, []int64{2, 3}, ""},
		{"two variable dimensions", []int64{-1, -1}, 24, nil, "more than one variable dimension"},
		{"not divisible", []int64{-1, 5}, 24, nil, "does not fit model shape"},
		{"zero known", []int64{0, -1}, 0, nil, "does not fit model shape"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rawShape(tc.size, "x", tensor.FP32, tensor.Shape(tc.shape).Clone())
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("rawShape(%v, %d) err = %v, want %q", tc.shape, tc.size, err, tc.wantError)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Errorf("rawShape(%v, %d) = %v, %v; want %v", tc.shape, tc.size, got, err, tc.want)
			}
		})
	}
}

// TestInferBadRequests covers each malformed request over a real socket: status and
// message.
func TestInferBadRequests(t *testing.T) {
	s := newTestServer(t, Options{Limits: core.Limits{MaxBodyBytes: 4096, MaxTensorElements: 1 << 20, MaxRank: 8}})
	x := `{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`
	bytesIn := `{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":9}}]}`
	bigJSON := oneInput("FP32", "[3000]", "["+strings.Repeat("0,", 2999)+"0]")
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return buf.Bytes()
	}
	for _, tc := range []struct {
		name       string
		body       []byte
		header     map[string]string
		wantStatus int
		wantErr    string
	}{
		{"binary shorter than declared", []byte(x + "1234"), map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(x))}, 400,
			`input "x": binary_data_size is 8 but only 4 bytes of binary data remain`},
		{"binary longer than declared", []byte(x + "123456789"), map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(x))}, 400,
			`the binary section has 1 bytes after the last input's data (check Inference-Header-Content-Length and each binary_data_size)`},
		{"binary size not matching shape", []byte(`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":4}}]}1234`),
			map[string]string{"Inference-Header-Content-Length": "91"}, 400,
			`input "x": binary_data_size 4 does not match shape [2] of FP32 (2 elements of 4 bytes)`},
		{"header length larger than body", []byte(x), map[string]string{"Inference-Header-Content-Length": "1000"}, 400,
			`Inference-Header-Content-Length 1000 is larger than the body (91 bytes)`},
		{"header length not a number", []byte(x), map[string]string{"Inference-Header-Content-Length": "-5"}, 400,
			`Inference-Header-Content-Length "-5" is not a non-negative integer`},
		{"broken BYTES prefix", append([]byte(bytesIn), 9, 0, 0, 0, 'a', 'b', 'c', 'd', 'e'), map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(bytesIn))}, 400,
			`input "s": binary data: BYTES element length prefix runs past the end of the data`},
		{"wrong datatype name", []byte(oneInput("FLOAT", "[1]", "[1]")), nil, 400, `input "x": unknown datatype "FLOAT"`},
		{"count not matching shape", []byte(oneInput("FP32", "[3]", "[1,2]")), nil, 400, `input "x": shape [3] needs 3 values, got 2`},
		{"shape product overflow", []byte(oneInput("FP32", "[9223372036854775807,2]", "[1]")), nil, 400,
			`input "x": shape [9223372036854775807,2]: element count overflows`},
		{"body over limit", []byte(bigJSON), nil, 413, `request body of 6067 bytes exceeds the limit of 4096 bytes`},
		{"gzip body over limit after decompression", gz([]byte(bigJSON + strings.Repeat(" ", 10000))), map[string]string{"Content-Encoding": "gzip"}, 413,
			`decompressed request body exceeds the limit of 4096 bytes`},
		{"corrupt gzip", []byte("not gzip"), map[string]string{"Content-Encoding": "gzip"}, 400, `reading gzip request body: unexpected EOF`},
		{"unknown encoding", []byte("{}"), map[string]string{"Content-Encoding": "br"}, 400, `unsupported Content-Encoding "br" (gzip and deflate are supported)`},
		{"malformed JSON", []byte(`{"inputs":[}`), nil, 400, `malformed JSON at offset 11: expected '{', found character '}'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, "POST", "/v2/models/echo/infer", tc.body, tc.header)
			want := `{"error":` + strconv.Quote(tc.wantErr) + `}`
			if r.status != tc.wantStatus || string(r.body) != want {
				t.Errorf("status %d body %s\nwant %d %s", r.status, r.body, tc.wantStatus, want)
			}
		})
	}
}

func TestBodyOverLimitWithoutContentLength(t *testing.T) {
	s := newTestServer(t, Options{Limits: core.Limits{MaxBodyBytes: 1024}})
	body := oneInput("UINT8", "[2000]", "["+strings.Repeat("1,", 1999)+"1]")
	req, err := http.NewRequest("POST", s.URL+"/v2/models/echo/infer", io.MultiReader(strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked: only the reader can notice
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "exceeds the limit of 1024 bytes") {
		t.Errorf("chunked body over limit = %d %s, want 413", resp.StatusCode, b)
	}
}

func TestCompression(t *testing.T) {
	s := newTestServer(t, Options{})
	// Over minCompressBytes: smaller responses are never compressed.
	body := []byte(oneInput("FP32", "[600]", "["+strings.Repeat("1,", 598)+"1,2]"))
	var gzBody bytes.Buffer
	zw := gzip.NewWriter(&gzBody)
	_, _ = zw.Write(body)
	_ = zw.Close()
	// Go's client transparently decompresses only when it set Accept-Encoding itself;
	// setting it by hand keeps the raw bytes for checking.
	r := s.do(t, "POST", "/v2/models/echo/infer", gzBody.Bytes(), map[string]string{"Content-Encoding": "gzip", "Accept-Encoding": "gzip"})
	if r.status != 200 || r.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip infer = %d %v %s", r.status, r.header, r.body)
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if want := `{"model_name":"echo","model_version":"1","outputs":[{"name":"x","datatype":"FP32","shape":[600],"data":[1,1,`; err != nil || !strings.HasPrefix(string(plain), want) || !strings.HasSuffix(string(plain), ",1,2]}]}") {
		t.Errorf("decompressed response %s (%v), want %s...", plain, err, want)
	}

	r = s.do(t, "POST", "/v2/models/echo/infer", body, map[string]string{"Accept-Encoding": "deflate;q=1, gzip;q=0"})
	zl, err := zlib.NewReader(bytes.NewReader(r.body))
	if err != nil || r.header.Get("Content-Encoding") != "deflate" {
		t.Fatalf("deflate response: %v, headers %v", err, r.header)
	}
	if plain, _ := io.ReadAll(zl); !bytes.Contains(plain, []byte(`,1,2]`)) {
		t.Errorf("deflate response decompressed to %s", plain)
	}

	// Only infer responses are compressed.
	r = s.do(t, "GET", "/v2/models/echo", nil, map[string]string{"Accept-Encoding": "gzip"})
	if r.header.Get("Content-Encoding") != "" || !bytes.HasPrefix(r.body, []byte(`{"name":"echo"`)) {
		t.Errorf("metadata with Accept-Encoding gzip: encoding %q body %s", r.header.Get("Content-Encoding"), r.body)
	}
}

func TestOutputsJSONCannotCarry(t *testing.T) {
	s := newTestServer(t, Options{})
	nan := le(float32(math.NaN()))
	s.core.setInfer(func(req *core.InferRequest) (*core.InferResponse, error) {
		req.Inputs = []*tensor.Tensor{
			tensorOf("nan", tensor.FP32, []int64{1}, nan),
			tensorOf("raw", tensor.Bytes, []int64{1}, bytesData("\xff\xfe")),
		}
		return echo(req)
	})
	for _, tc := range []struct {
		name, body, want string
		status           int
	}{
		{"NaN as JSON", `{"outputs":[{"name":"nan"}]}`, `{"error":"output \"nan\": element 0 is NaN, which JSON cannot represent; request the output with binary_data"}`, 400},
		{"invalid UTF-8 as JSON", `{"outputs":[{"name":"raw"}]}`, `{"error":"output \"raw\": element 0 is not valid UTF-8, which a JSON string cannot carry; request the output with binary_data"}`, 400},
	} {
		r := s.do(t, "POST", "/v2/models/echo/infer", []byte(tc.body), nil)
		if r.status != tc.status || string(r.body) != tc.want {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.want)
		}
	}
	r := s.do(t, "POST", "/v2/models/echo/infer", []byte(`{"parameters":{"binary_data_output":true}}`), nil)
	n, _ := strconv.Atoi(r.header.Get("Inference-Header-Content-Length"))
	if r.status != 200 || !bytes.Equal(r.body[n:], append(append([]byte{}, nan...), bytesData("\xff\xfe")...)) {
		t.Errorf("binary outputs carry NaN and raw bytes: %d %q", r.status, r.body)
	}
}

func TestMalformedOutputFromCore(t *testing.T) {
	s := newTestServer(t, Options{})
	s.core.setInfer(func(*core.InferRequest) (*core.InferResponse, error) {
		return &core.InferResponse{Model: "echo", Outputs: []*tensor.Tensor{tensorOf("y", tensor.FP32, []int64{2}, []byte{1, 2, 3})}}, nil
	})
	r := s.do(t, "POST", "/v2/models/echo/infer", []byte(`{}`), nil)
	if r.status != 500 || !strings.Contains(string(r.body), `model returned a malformed output \"y\"`) {
		t.Errorf("malformed output = %d %s, want 500", r.status, r.body)
	}
}

// The client's W3C trace context (the traceparent header) reaches core with the request;
// a malformed one does not.
func TestTraceParentReachesCore(t *testing.T) {
	s := newTestServer(t, Options{})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	body := []byte(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}`)
	for _, tc := range []struct{ sent, want string }{{tp, tp}, {"00-zz", ""}} {
		if r := s.do(t, "POST", "/v2/models/echo/infer", body, map[string]string{"traceparent": tc.sent}); r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if got := s.core.last().TraceParent; got != tc.want {
			t.Errorf("sent traceparent %q: core got %q, want %q", tc.sent, got, tc.want)
		}
	}
}
