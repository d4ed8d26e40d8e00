package v2http

import (
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strconv"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/monitor/reqlog"
	"github.com/ferryml/ferry/internal/shm"
	"github.com/ferryml/ferry/internal/tensor"
)

// VersionHeader names, on every inference response, the model version that answered.
const VersionHeader = "X-Ferry-Model-Version"

// infer serves POST /v2/models/{m}[/versions/{v}]/infer.
func (h *Handler) infer(w http.ResponseWriter, r *http.Request) {
	req, shmInputs, err := h.request(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	// What the log's lines for this request carry (reqlog).
	fields := reqlog.FromContext(r.Context())
	fields.Request(req.ID, req.Model, req.Version)
	resp, err := h.core.Infer(r.Context(), req)
	if err == nil {
		fields.Answered(resp.Version)
	}
	var shared map[string]shm.Ref
	if err == nil {
		shared, err = h.shm.WriteOutputs(resp.Outputs, req.OutputParameters)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	enc, err := encodeInferResponse(req, resp, shared)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	shm.Recycle(shmInputs, resp.Outputs) // answered and encoded: nothing reads them now
	// The version that answered, also in the body's model_version: with a routing
	// policy, a client that named none learns where it went without parsing the body.
	w.Header()[VersionHeader] = []string{resp.Version}
	h.writeInferResponse(w, r, enc)
}

// request decodes the infer body of POST .../infer (or .../explain) into a request
// to the model and version of its path, with its trace context and headers; it also
// returns the buffers of the inputs read from shared memory.
func (h *Handler) request(w http.ResponseWriter, r *http.Request) (*core.InferRequest, [][]byte, error) {
	model, version, err := modelPath(r)
	if err != nil {
		return nil, nil, err
	}
	req, shmInputs, err := h.decodeInfer(w, r, model, version)
	if err != nil {
		return nil, nil, err
	}
	req.Model, req.Version = model, version
	req.TraceParent = core.TraceParent(r.Header.Get("traceparent"))
	req.Header = r.Header // routes may match or hash a header
	return req, shmInputs, nil
}

// decodeInfer also returns the buffers of the inputs read from shared memory.
func (h *Handler) decodeInfer(w http.ResponseWriter, r *http.Request, model, version string) (*core.InferRequest, [][]byte, error) {
	hdrLen, err := headerLength(r)
	if err != nil {
		return nil, nil, err
	}
	body, err := readBody(w, r, h.limits.MaxBodyBytes)
	if err != nil {
		return nil, nil, err
	}
	if hdrLen == 0 {
		return h.rawRequest(model, body), nil, nil
	}
	return decodeInferRequest(body, hdrLen, h.limits, h.shm)
}

// rawRequest builds the request of a raw binary body, whose one input takes its shape
// from the metadata of the version core picks to run it, and asks for every output in
// binary, as Triton does.
func (h *Handler) rawRequest(model string, body []byte) *core.InferRequest {
	req := &core.InferRequest{Parameters: core.Parameters{paramBinaryOutput: true}}
	req.Prepare = func(md *core.ModelMetadata, batching bool) error {
		if len(md.Inputs) != 1 {
			return core.Invalidf("a raw binary request (Inference-Header-Content-Length: 0) needs a model with exactly one input; model %q has %d", model, len(md.Inputs))
		}
		t, err := rawInput(body, md.Inputs[0], batching, h.limits)
		if err != nil {
			return err
		}
		req.Inputs = []*tensor.Tensor{t}
		return nil
	}
	return req
}

// minCompressBytes: smaller responses are sent as they are even to clients that accept
// gzip (Go's client always does): compressing them costs more time than it saves.
const minCompressBytes = 1024

// writeInferResponse writes the JSON header and any binary sections, compressed when
// the client asked for it. Only infer responses are ever compressed: clients that
// decode compressed bodies do so for infer only.
func (h *Handler) writeInferResponse(w http.ResponseWriter, r *http.Request, enc *encodedResponse) {
	hd := w.Header()
	if len(enc.binary) > 0 {
		hd.Set("Content-Type", "application/octet-stream")
		hd.Set("Inference-Header-Content-Length", strconv.Itoa(len(enc.header)))
	} else {
		hd.Set("Content-Type", "application/json")
	}
	hd.Add("Vary", "Accept-Encoding")
	var out io.Writer = w
	var closer io.Closer
	encoding := ""
	if len(enc.header)+enc.binarySize() >= minCompressBytes {
		encoding = responseEncoding(r)
	}
	switch encoding {
	case "gzip":
		hd.Set("Content-Encoding", "gzip")
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		out, closer = zw, zw
	case "deflate":
		hd.Set("Content-Encoding", "deflate")
		zw, _ := zlib.NewWriterLevel(w, zlib.BestSpeed)
		out, closer = zw, zw
	default:
		hd.Set("Content-Length", strconv.Itoa(len(enc.header)+enc.binarySize()))
	}
	w.WriteHeader(http.StatusOK)
	err := writeAll(out, enc)
	if closer != nil && err == nil {
		err = closer.Close()
	}
	if err != nil {
		h.log.DebugContext(r.Context(), "writing infer response", "path", r.URL.Path, "err", err) // the client went away
	}
}

func writeAll(w io.Writer, enc *encodedResponse) error {
	if _, err := w.Write(enc.header); err != nil {
		return err
	}
	for _, b := range enc.binary {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
