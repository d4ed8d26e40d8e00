package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// nulElements are BYTES elements holding NUL bytes where a C string would cut
// them: alone, first, last, repeated, beside empty and non-UTF-8 elements, and
// inside elements long enough to leave any small-string buffer.
func nulElements() []string {
	long := strings.Repeat("ferry\x00", 20000) // 120 kB, a NUL every 6 bytes
	return []string{"a\x00b", "\x00", "", "\x00\x00x", "end\x00", "\xff\x00\xfe", long, "plain"}
}

// BYTES elements with NUL bytes go through a real server and ONNX Runtime
// string tensors and come back intact over every wire form that carries bytes:
// HTTP binary extension, HTTP JSON ("\u0000" escapes, as Triton reads and
// writes them), an HTTP raw binary body, gRPC bytes_contents and gRPC
// raw_input_contents.
func TestBytesWithNULRoundTrip(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "identity_bytes", 1, onnxgen.Identity(onnxgen.String, "identity_bytes"), "")
	ts := startServer(t, repo)
	t.Run("HTTP binary extension", func(t *testing.T) { nulHTTPBinary(t, ts, nulElements()) })
	t.Run("HTTP JSON", func(t *testing.T) { nulHTTPJSON(t, ts, utf8Only(nulElements())) })
	t.Run("HTTP raw binary body", func(t *testing.T) { nulHTTPRaw(t, ts, "a\x00b\x00") })
	t.Run("gRPC bytes_contents", func(t *testing.T) { nulGRPC(t, ts, nulElements(), false) })
	t.Run("gRPC raw_input_contents", func(t *testing.T) { nulGRPC(t, ts, nulElements(), true) })
	// Non-UTF-8 output asked for in JSON stays a clear 400, NULs or not.
	t.Run("HTTP JSON output of non-UTF-8", func(t *testing.T) {
		raw := restBytes("\xff\x00\xfe")
		body, hlen := restBinaryBody(nulBinaryHeader(1, len(raw), false), raw)
		code, _, b := restCall(t, ts, "POST", "/v2/models/identity_bytes/infer", body, "Inference-Header-Content-Length", hlen)
		restWantError(t, "non-UTF-8 output in JSON", code, b, http.StatusBadRequest, `"OUTPUT0"`, "UTF-8")
	})
}

func utf8Only(elems []string) []string {
	return slices.DeleteFunc(slices.Clone(elems), func(e string) bool { return !utf8.ValidString(e) })
}

// nulBinaryHeader is the JSON header of a [1, n] BYTES input of size bytes in
// binary, asking for OUTPUT0 in binary or JSON.
func nulBinaryHeader(n, size int, binOut bool) string {
	return fmt.Sprintf(`{"inputs":[{"name":"INPUT0","shape":[1,%d],"datatype":"BYTES","parameters":{"binary_data_size":%d}}],`+
		`"outputs":[{"name":"OUTPUT0","parameters":{"binary_data":%t}}]}`, n, size, binOut)
}

func nulHTTPBinary(t *testing.T, ts *testServer, elems []string) {
	raw := restBytes(elems...)
	body, hlen := restBinaryBody(nulBinaryHeader(len(elems), len(raw), true), raw)
	code, h, b := restCall(t, ts, "POST", "/v2/models/identity_bytes/infer", body, "Inference-Header-Content-Length", hlen)
	if code != http.StatusOK {
		t.Fatalf("binary infer: %d %.300s", code, b)
	}
	header, raws := restSplitBinary(t, "binary infer", h, b)
	r := restParseInfer(t, "binary infer", header, jAny)
	restCheckIdentityOutput(t, r, "BYTES", 1, int64(len(elems)))
	nulCheck(t, "OUTPUT0", raws["OUTPUT0"], raw)
}

func nulHTTPJSON(t *testing.T, ts *testServer, elems []string) {
	data, err := json.Marshal(elems) // NUL becomes \u0000
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`\u0000`)) {
		t.Fatalf("request data %.100s has no \\u0000: the test would prove nothing", data)
	}
	body := fmt.Sprintf(`{"inputs":[{"name":"INPUT0","shape":[1,%d],"datatype":"BYTES","data":%s}]}`, len(elems), data)
	code, _, b := restCall(t, ts, "POST", "/v2/models/identity_bytes/infer", body)
	if code != http.StatusOK {
		t.Fatalf("JSON infer: %d %.300s", code, b)
	}
	r := restParseInfer(t, "JSON infer", b, jString)
	restCheckIdentityOutput(t, r, "BYTES", 1, int64(len(elems)))
	var got []string
	if err := json.Unmarshal(r.Outputs[0].Data, &got); err != nil {
		t.Fatalf("OUTPUT0 data: %v", err)
	}
	nulCheck(t, "OUTPUT0", restBytes(got...), restBytes(elems...))
}

// nulHTTPRaw sends one BYTES element as the whole body (Inference-Header-Content-Length: 0).
func nulHTTPRaw(t *testing.T, ts *testServer, elem string) {
	code, h, b := httpDo(t, "POST", ts.URL+"/v2/models/identity_bytes/infer", "application/octet-stream",
		strings.NewReader(elem), "Inference-Header-Content-Length", "0")
	if code != http.StatusOK {
		t.Fatalf("raw binary infer: %d %.300s", code, b)
	}
	_, raws := restSplitBinary(t, "raw binary infer", h, b)
	nulCheck(t, "OUTPUT0", raws["OUTPUT0"], restBytes(elem))
}

func nulGRPC(t *testing.T, ts *testServer, elems []string, raw bool) {
	req := &inference.ModelInferRequest{ModelName: "identity_bytes", Inputs: []*inference.ModelInferRequest_InferInputTensor{
		{Name: "INPUT0", Datatype: "BYTES", Shape: []int64{1, int64(len(elems))}},
	}}
	if raw {
		req.RawInputContents = [][]byte{e2eBytes(elems...)}
	} else {
		contents := make([][]byte, len(elems))
		for i, e := range elems {
			contents[i] = []byte(e)
		}
		req.Inputs[0].Contents = &inference.InferTensorContents{BytesContents: contents}
	}
	res, err := ts.GRPC.ModelInfer(t.Context(), req)
	if err != nil {
		t.Fatalf("ModelInfer: %v", err)
	}
	if len(res.GetOutputs()) != 1 || len(res.GetRawOutputContents()) != 1 {
		t.Fatalf("%d outputs, %d raw_output_contents; want 1 and 1", len(res.GetOutputs()), len(res.GetRawOutputContents()))
	}
	if o := res.GetOutputs()[0]; o.GetDatatype() != "BYTES" || !slices.Equal(o.GetShape(), []int64{1, int64(len(elems))}) {
		t.Errorf("output %s %v, want BYTES [1,%d]", o.GetDatatype(), o.GetShape(), len(elems))
	}
	nulCheck(t, "raw_output_contents[0]", res.GetRawOutputContents()[0], e2eBytes(elems...))
}

// nulCheck compares serialized BYTES, naming the first element that differs.
func nulCheck(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	at := 0
	for at < len(got) && at < len(want) && got[at] == want[at] {
		at++
	}
	t.Errorf("%s: %d bytes, want %d; first difference at byte %d: got %q, want %q",
		what, len(got), len(want), at, clipBytes(got[at:]), clipBytes(want[at:]))
}

func clipBytes(b []byte) []byte { return b[:min(len(b), 24)] }
