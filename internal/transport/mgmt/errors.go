package mgmt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/jobs"
	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/monitor/drift"
	"github.com/ferryml/ferry/internal/monitor/inferlog"
	"github.com/ferryml/ferry/internal/monitor/quality"
	"github.com/ferryml/ferry/internal/registry"
	"github.com/ferryml/ferry/internal/rollout"
)

// errBadRequest marks a request the handler itself refuses (a malformed body, a bad
// path value) before any service sees it.
var errBadRequest = errors.New("bad request")

// tooLargeError is a body over its limit.
type tooLargeError struct {
	what  string
	limit int64
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than the %d-byte limit", e.what, e.limit)
}

// badRequest is an errBadRequest whose message is only what is wrong.
func badRequest(format string, args ...any) error {
	return &namedError{msg: fmt.Sprintf(format, args...), err: errBadRequest}
}

// namedError is a sentinel with a message naming its object.
type namedError struct {
	msg string
	err error
}

func (e *namedError) Error() string { return e.msg }
func (e *namedError) Unwrap() error { return e.err }

// statusClientClosed is nginx's 499 Client Closed Request, as v2http answers: the
// client went away (net/http cancels the request's context when its connection reads
// EOF) before the answer. Nobody reads it; logs and metrics must not count it as a
// server failure.
const statusClientClosed = 499

// statusOf is the one mapping from an error to an HTTP status.
func statusOf(err error) int {
	var tl *tooLargeError
	switch {
	case errors.Is(err, context.Canceled):
		return statusClientClosed
	case errors.As(err, &tl):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, registry.ErrNotFound), errors.Is(err, rollout.ErrNotFound), errors.Is(err, core.ErrNotFound), errors.Is(err, errNotEnabled),
		errors.Is(err, drift.ErrUnknownModel), errors.Is(err, inferlog.ErrNoFiles), errors.Is(err, jobs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, registry.ErrExists), errors.Is(err, rollout.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, errBadRequest), errors.Is(err, registry.ErrInvalid), errors.Is(err, core.ErrInvalid), errors.Is(err, rollout.ErrInvalidAction),
		errors.Is(err, quality.ErrInvalid), errors.Is(err, jobs.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, core.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, registry.ErrUnavailable), errors.Is(err, rollout.ErrStopped), errors.Is(err, core.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code >= 500 {
		h.log.Warn("management request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	writeError(w, code, err.Error())
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, mgmtapi.Error{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		code, b = http.StatusInternalServerError, bytes.Buffer{}
		fmt.Fprintf(&b, "{\"error\":%q}\n", "encoding the answer: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

// readBody reads at most limit bytes of r's body; more is a tooLargeError naming what.
func readBody(w http.ResponseWriter, r *http.Request, what string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return nil, &tooLargeError{what: what, limit: limit}
	}
	if err != nil {
		return nil, badRequest("reading the body: %v", err)
	}
	return b, nil
}

// decodeBody decodes r's JSON body into v strictly: unknown fields and trailing data
// are refused, naming them.
func (h *Handler) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := readBody(w, r, "the request body", h.o.MaxBodyBytes)
	if err != nil {
		return err
	}
	return decodeStrict(b, v)
}

func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return badRequest("the body is empty; want a JSON object")
		}
		return badRequest("malformed JSON body: %v", err)
	}
	if d.More() {
		return badRequest("malformed JSON body: trailing data after the JSON value")
	}
	return nil
}
