package middleware

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve sends one request through h and returns the recorded answer.
func serve(h http.Handler, method, path string, body io.Reader) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, body))
	return rec
}

func TestChainWrapsTheFirstLayerOutermost(t *testing.T) {
	var order []string
	layer := func(name string) Layer {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, name)
				next.ServeHTTP(w, r)
			})
		}
	}
	h := Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { order = append(order, "handler") }), layer("a"), layer("b"))
	serve(h, "GET", "/", nil)
	if got := strings.Join(order, " "); got != "a b handler" {
		t.Errorf("Chain(h, a, b) ran %q, want a b handler", got)
	}
}

func TestLimitBody(t *testing.T) {
	read := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			WriteError(w, http.StatusRequestEntityTooLarge, err.Error())
			return
		}
		_, _ = w.Write(b)
	})
	for _, tc := range []struct {
		name  string
		limit int64
		body  string
		code  int
	}{
		{"a body within the limit is read whole", 4, "abcd", 200},
		{"a body past the limit fails to read", 4, "abcde", 413},
		{"limit 0 bounds nothing", 0, "abcde", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(LimitBody(tc.limit)(read), "POST", "/", strings.NewReader(tc.body))
			if rec.Code != tc.code {
				t.Errorf("LimitBody(%d), body %q = %d %s, want %d", tc.limit, tc.body, rec.Code, rec.Body, tc.code)
			}
		})
	}
	var body io.ReadCloser
	serve(LimitBody(4)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { body = r.Body })), "GET", "/", nil)
	if body != http.NoBody {
		t.Errorf("LimitBody wrapped a request without a body: %T", body)
	}
}

func TestRecover(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	h := Recover(log)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Encoding", "gzip") // announced, never written
		panic("a < b")
	}))
	rec := serve(h, "GET", "/x", nil)
	if rec.Code != 500 || rec.Body.String() != `{"error":"internal error: a < b"}` || rec.Header().Get("Content-Encoding") != "" {
		t.Errorf("panicking handler = %d %v %s, want 500 naming the panic, no Content-Encoding", rec.Code, rec.Header(), rec.Body)
	}
	if !strings.Contains(logs.String(), "request failed") || !strings.Contains(logs.String(), "path=/x") {
		t.Errorf("log = %q, want the failed request with its path", logs.String())
	}
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler to go on up", v)
		}
	}()
	serve(Recover(log)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })), "GET", "/", nil)
}

func TestJSONErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /a/{x}", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.PathValue("x")) })
	h := JSONErrors(mux)
	for _, tc := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/a/1", 200, "1"},
		{"GET", "/b", 404, `{"error":"no such endpoint"}`},
		{"POST", "/a/1", 405, `{"error":"method not allowed; allowed: GET, HEAD"}`},
	} {
		rec := serve(h, tc.method, tc.path, nil)
		if rec.Code != tc.code || rec.Body.String() != tc.body {
			t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, rec.Code, rec.Body, tc.code, tc.body)
		}
		if ct := rec.Header().Get("Content-Type"); tc.code != 200 && ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q, want application/json", tc.method, tc.path, ct)
		}
	}
}

func TestLogRequestsOnlyAtDebug(t *testing.T) {
	var logs bytes.Buffer
	level := new(slog.LevelVar)
	h := LogRequests(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level})))(http.NotFoundHandler())
	serve(h, "GET", "/quiet", nil)
	level.Set(slog.LevelDebug)
	serve(h, "GET", "/loud", nil)
	if got := logs.String(); strings.Contains(got, "/quiet") || !strings.Contains(got, "path=/loud") {
		t.Errorf("log = %q, want only the request made at debug level", got)
	}
}

func TestLogUnaryNamesTheCodeOfAFailure(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fail := func(context.Context, any) (any, error) { return nil, status.Error(codes.NotFound, "no model") }
	if _, err := LogUnary(log)(t.Context(), nil, &grpc.UnaryServerInfo{FullMethod: "/s/M"}, fail); status.Code(err) != codes.NotFound {
		t.Errorf("LogUnary changed the handler's error to %v", err)
	}
	if got := logs.String(); !strings.Contains(got, "method=/s/M") || !strings.Contains(got, "code=NotFound") {
		t.Errorf("log = %q, want the method and the failure's code", got)
	}
}
