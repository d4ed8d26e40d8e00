package v2http

import (
	"context"
	"net/http"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/shm"
)

// Explainer is what the explain endpoint calls; *core.Server implements it. It is not
// part of core.API, so a Core without it answers 501 there (the gRPC API has no
// explain RPC: KServe's proto defines none).
type Explainer interface {
	Explain(ctx context.Context, req *core.InferRequest) (*core.ExplainResponse, error)
}

var _ Explainer = (*core.Server)(nil)

// explain serves POST /v2/models/{m}[/versions/{v}]/explain (KServe's explain verb on
// the V2 paths). The body is exactly an infer request's; the answer is an infer
// response whose outputs are the attributions (core.ExplainResponse.InferResponse).
func (h *Handler) explain(w http.ResponseWriter, r *http.Request) {
	ex, ok := h.core.(Explainer)
	if !ok {
		h.writeJSON(w, r, http.StatusNotImplemented, errorBody{Error: "this server does not explain predictions"})
		return
	}
	req, shmInputs, err := h.request(w, r) // infer.go: the same body as /infer
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	resp, err := ex.Explain(r.Context(), req)
	shm.Recycle(shmInputs, nil) // explained: nothing reads the inputs now
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	// The request's outputs name the model's outputs, not the explanation's: only
	// its request-wide binary_data_output carries over.
	view := &core.InferRequest{Parameters: core.Parameters{}}
	if v, ok := req.Parameters[paramBinaryOutput]; ok {
		view.Parameters[paramBinaryOutput] = v
	}
	enc, err := encodeInferResponse(view, resp.InferResponse(), nil)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header()[VersionHeader] = []string{resp.Version}
	h.writeInferResponse(w, r, enc)
}
