package mgmt

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/monitor/inferlog"
	"github.com/ferryml/ferry/internal/monitor/quality"
	"github.com/ferryml/ferry/internal/registry"
	"github.com/ferryml/ferry/internal/rollout"
)

func TestStatusOf(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("model %q: %w", "m", err) }
	for _, tc := range []struct {
		err  error
		want int
	}{
		{wrap(registry.ErrNotFound), 404},
		{wrap(rollout.ErrNotFound), 404},
		{wrap(core.ErrNotFound), 404},
		{notEnabled("the inference log"), 404},
		{wrap(inferlog.ErrNoFiles), 404},
		{wrap(registry.ErrExists), 409},
		{wrap(rollout.ErrConflict), 409},
		{wrap(registry.ErrInvalid), 400},
		{wrap(core.ErrInvalid), 400},
		{badRequest("malformed"), 400},
		{&tooLargeError{what: "the body", limit: 1}, 413},
		{wrap(registry.ErrUnavailable), 503},
		{wrap(rollout.ErrStopped), 503},
		{wrap(core.ErrUnavailable), 503},
		{wrap(quality.ErrInvalid), 400},
		{notEnabled("alerting"), 404},
		{errors.New("disk on fire"), 500},
	} {
		if got := statusOf(tc.err); got != tc.want {
			t.Errorf("statusOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestMountedOnAServeMux: an escaped '/' reaches the handler inside one segment either
// way; a literal ".." is cleaned by a ServeMux into a redirect to another route (307,
// method kept), while Intercept hands it to the handler, which refuses it.
func TestMountedOnAServeMux(t *testing.T) {
	a := newAPI(t, Options{})
	seed(a)
	h := New(a.svc, Options{})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", h)
	intercepted := h.Intercept(http.NotFoundHandler())
	for _, tc := range []struct {
		method, path   string
		mux, intercept int
	}{
		{"GET", "/api/v1/models/a%2Fb", http.StatusBadRequest, http.StatusBadRequest},
		{"DELETE", "/api/v1/models/a%2Fb", http.StatusBadRequest, http.StatusBadRequest},
		{"DELETE", "/api/v1/models/..", http.StatusTemporaryRedirect, http.StatusBadRequest},
		{"DELETE", "/api/v1/models/x/../mlp", http.StatusTemporaryRedirect, http.StatusNotFound},
		{"GET", "/v2/health/live", http.StatusNotFound, http.StatusNotFound},
	} {
		for _, via := range []struct {
			name string
			h    http.Handler
			want int
		}{{"a ServeMux", mux, tc.mux}, {"Intercept", intercepted, tc.intercept}} {
			rec := httptest.NewRecorder()
			via.h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != via.want {
				t.Errorf("%s %s through %s = %d %s, want %d", tc.method, tc.path, via.name, rec.Code, rec.Body, via.want)
			}
		}
	}
	a.json("GET", "/api/v1/models/mlp", nil, http.StatusOK, nil) // still there
}

// FuzzSegments: any escaped path splits into segments or is refused, never panics, and
// the segments never hold an unescaped '/' that was not escaped in the path.
func FuzzSegments(f *testing.F) {
	for _, s := range []string{"/api/v1/models", "/api/v1/models/a%2Fb", "/api/v1/models/..", "/api/v1/models/%zz", "/api/v1/", "/v2/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		segs, ok := segments(p)
		if !ok {
			return
		}
		slashes := 0
		for _, s := range segs {
			slashes += strings.Count(s, "/")
		}
		if escaped := strings.Count(strings.ToLower(p), "%2f"); slashes > escaped {
			t.Errorf("segments(%q) = %q: %d slashes inside segments, only %d escaped", p, segs, slashes, escaped)
		}
	})
}
