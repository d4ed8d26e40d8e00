package middleware

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRefuseBrowserWrites: a write with an Origin (another site's, the same host's as
// after DNS rebinding, or "null" from a sandboxed frame) is 403; reads with an Origin
// and writes without one (every non-browser client) go through.
func TestRefuseBrowserWrites(t *testing.T) {
	h := RefuseBrowserWrites()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for _, tc := range []struct {
		method, origin string // origin "-": no Origin header
		code           int
	}{
		{"DELETE", "http://evil.example", http.StatusForbidden},
		{"POST", "http://evil.example", http.StatusForbidden},
		{"PUT", "http://127.0.0.1:8000", http.StatusForbidden}, // DNS rebinding: the Origin names the server itself
		{"PATCH", "null", http.StatusForbidden},
		{"POST", "", http.StatusForbidden}, // present though empty: a browser sent it
		{"POST", "-", http.StatusNoContent},
		{"DELETE", "-", http.StatusNoContent},
		{"GET", "http://evil.example", http.StatusNoContent},
		{"HEAD", "http://evil.example", http.StatusNoContent},
		{"OPTIONS", "http://evil.example", http.StatusNoContent},
	} {
		req, err := http.NewRequest(tc.method, "http://127.0.0.1:8000/api/v1/models/m", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.origin != "-" {
			req.Header["Origin"] = []string{tc.origin}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Errorf("%s with Origin %q: %d %s, want %d", tc.method, tc.origin, rec.Code, rec.Body, tc.code)
		}
		if tc.code == http.StatusForbidden && (!strings.Contains(rec.Body.String(), `"error":`) || !strings.Contains(rec.Body.String(), tc.method)) {
			t.Errorf("%s with Origin %q: body %s, want a JSON error naming the method", tc.method, tc.origin, rec.Body)
		}
	}
}
