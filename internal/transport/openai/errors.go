package openai

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/internal/transport/middleware"
)

// statusClientClosed is nginx's 499: the client left before the answer. Nobody reads
// it; it keeps logs and metrics from counting a departure as a server failure.
const statusClientClosed = 499

// errorObject is OpenAI's error, the value of {"error": ...}. Param and Code are null
// when empty, as OpenAI sends them.
type errorObject struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type errorBody struct {
	Error errorObject `json:"error"`
}

// apiError is what the client sees of err. It is the one place that maps errors: an
// *llm.Error is shown as it is; the edge's own failures (a body past the limit, a
// departed client, a deadline) get their status here; anything else is a 500 that
// tells nothing of the server's internals.
func apiError(err error) *llm.Error {
	if e := llm.AsError(err); e != nil {
		return e
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &llm.Error{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
			Message: "the request body is larger than the server's limit of " + strconv.FormatInt(tooBig.Limit, 10) + " bytes"}
	case errors.Is(err, context.Canceled):
		return &llm.Error{Status: statusClientClosed, Type: "invalid_request_error", Message: "the client closed the request"}
	case errors.Is(err, context.DeadlineExceeded):
		return &llm.Error{Status: http.StatusGatewayTimeout, Type: "timeout", Message: "the request's deadline passed before the answer was complete"}
	}
	return &llm.Error{Status: http.StatusInternalServerError, Type: "server_error",
		Message: "The server had an error while processing your request. Sorry about that!"}
}

// errorJSON is e's JSON body.
func errorJSON(e *llm.Error) []byte {
	body := errorBody{Error: errorObject{Message: e.Message, Type: e.Type}}
	if e.Param != "" {
		body.Error.Param = &e.Param
	}
	if e.Code != "" {
		body.Error.Code = &e.Code
	}
	b, _ := middleware.MarshalJSON(body) // strings and pointers to strings always encode
	return b
}

// writeError answers with err's status and OpenAI error body, before any byte of an
// answer was written. Server-side failures are logged with the real error; the
// client's own mistakes are the client's to read.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := h.logged(r, err)
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	if e.RetryAfter > 0 {
		hd.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(errorJSON(e))
}

// logged maps err for the client and logs what the server must know of it.
func (h *Handler) logged(r *http.Request, err error) *llm.Error {
	e := apiError(err)
	switch {
	case e.Status == statusClientClosed:
		h.log.InfoContext(r.Context(), "request cancelled by the client", "path", r.URL.Path, "err", err)
	case e.Status >= http.StatusInternalServerError && e.Status != http.StatusServiceUnavailable:
		h.log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "status", e.Status, "err", err)
	}
	return e
}
