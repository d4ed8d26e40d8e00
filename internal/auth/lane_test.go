package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestLaneBearers: on a lane's paths an OpenAI client's own bearer ("sk-...", "EMPTY")
// is the lane's, not refused as a malformed Ferry credential; elsewhere it still is;
// LaneOpen paths pass whatever they carry, even when credentials are required.
func TestLaneBearers(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	for _, tc := range []struct {
		name     string
		cfg      Config
		path     string
		bearer   string
		wantCode int
	}{
		{"lane bearer on /v1", Config{Anonymous: RoleAdmin, LaneBearers: []string{"/v1/"}}, "/v1/chat/completions", "sk-test", 204},
		{"EMPTY on /v1", Config{Anonymous: RoleAdmin, LaneBearers: []string{"/v1/"}}, "/v1/models", "EMPTY", 204},
		{"same bearer on /v2 refused", Config{Anonymous: RoleAdmin, LaneBearers: []string{"/v1/"}}, "/v2/models/mlp/infer", "sk-test", 401},
		{"no lane: refused on /v1", Config{Anonymous: RoleAdmin}, "/v1/chat/completions", "sk-test", 401},
		{"a Ferry key on /v1 is still judged", Config{Anonymous: RoleAdmin, LaneBearers: []string{"/v1/"}}, "/v1/chat/completions", "fk_nosuchkey", 401},
		{"required: lane bearer is no credential", Config{KeysPresent: keysExist, LaneBearers: []string{"/v1/"}}, "/v1/chat/completions", "sk-test", 401},
		{"required: LaneOpen passes", Config{KeysPresent: keysExist, LaneBearers: []string{"/v1/"}, LaneOpen: []string{"/v1/"}}, "/v1/chat/completions", "sk-test", 204},
		{"required: LaneOpen is only its paths", Config{KeysPresent: keysExist, LaneOpen: []string{"/v1/"}}, "/v2/models/mlp/infer", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(context.Background(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("POST", tc.path, nil)
			if tc.bearer != "" {
				r.Header.Set("Authorization", "Bearer "+tc.bearer)
			}
			w := httptest.NewRecorder()
			a.HTTP(ok).ServeHTTP(w, r)
			if w.Code != tc.wantCode {
				t.Errorf("%s %s with bearer %q: %d %s, want %d", r.Method, tc.path, tc.bearer, w.Code, w.Body, tc.wantCode)
			}
		})
	}
}

// keysExist makes credentials required, as a registry holding a key does.
func keysExist(context.Context) (bool, error) { return true, nil }
