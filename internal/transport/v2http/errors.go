package v2http

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/shm"
	"github.com/ferryml/ferry/internal/transport/middleware"
)

// statusClientClosed is nginx's 499 Client Closed Request: the client went away (its
// request's context was cancelled, while it waited for a model to load, say) before the
// answer. Nobody reads it; it is for logs and metrics, which must not count it as a
// server failure.
const statusClientClosed = 499

// statusOf maps an error to its HTTP status. It is the only place that does: handlers
// return core's error vocabulary and never pick a status themselves.
func statusOf(err error) int {
	var in *core.InputError
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, context.Canceled):
		return statusClientClosed
	case errors.As(err, &in), errors.Is(err, core.ErrInvalid), errors.Is(err, shm.ErrInvalid), errors.Is(err, shm.ErrExists):
		return http.StatusBadRequest
	case errors.Is(err, core.ErrNotFound), errors.Is(err, shm.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, core.ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, context.DeadlineExceeded): // the request's own deadline (Ferry-Timeout)
		return http.StatusGatewayTimeout
	case errors.Is(err, core.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, core.ErrTooLarge), errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}

// errorBody is the V2 error object, {"error": "..."}.
type errorBody struct {
	Error string `json:"error"`
}

// writeError answers with err's status and message. Server-side failures are logged;
// client errors are the client's to read.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	switch {
	case status == statusClientClosed:
		h.log.InfoContext(r.Context(), "request cancelled by the client", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	case status >= http.StatusInternalServerError && status != http.StatusServiceUnavailable:
		h.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	body, _ := middleware.MarshalJSON(errorBody{Error: err.Error()})
	hd := w.Header()
	hd.Del("Content-Encoding")
	hd.Del("Inference-Header-Content-Length")
	hd.Set("Content-Type", "application/json")
	if d := core.RetryAfter(err); d > 0 { // whole seconds, rounded up (RFC 9110 §10.2.3)
		hd.Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
