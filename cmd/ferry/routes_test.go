package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// TestHTTPRootServesEveryMountedRoute: a route mounted on the root beside V2 (a
// test-only /api/v1/ping) is served by the same listener as V2 and /metrics, behind the
// same layers: the body limit, panic recovery and JSON answers for unknown routes.
func TestHTTPRootServesEveryMountedRoute(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
	const limit = 4096
	ping := func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			fmt.Fprintf(w, "limit %d", tooBig.Limit)
			return
		}
		fmt.Fprintf(w, "pong %d", len(b))
	}
	ts := startServer(t, repo, func(c *serveConfig) {
		c.limits.MaxBodyBytes = limit
		c.moreRoutes = map[string]http.Handler{
			"POST /api/v1/ping": http.HandlerFunc(ping),
			"GET /api/v1/panic": http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }),
		}
	})
	// A reader without a length is sent chunked: only the limit layer can stop it.
	chunked := func(n int) io.Reader { return io.MultiReader(strings.NewReader(strings.Repeat("x", n))) }
	for _, tc := range []struct {
		name, method, path string
		body               io.Reader
		code               int
		want               string // the body, or a part of it for /metrics
	}{
		{"V2 beside it", "GET", "/v2/health/live", nil, 200, `{"live":true}`},
		{"metrics beside it", "GET", "/metrics", nil, 200, "ferry_"},
		{"the mounted route", "POST", "/api/v1/ping", strings.NewReader("hello"), 200, "pong 5"},
		{"the body limit on the mounted route", "POST", "/api/v1/ping", chunked(2 * limit), 413, "limit 4096"},
		{"the body limit on V2", "POST", "/v2/models/simple/infer", chunked(2 * limit), 413, `{"error":"request body exceeds the limit of 4096 bytes"}`},
		{"panic recovery on the mounted route", "GET", "/api/v1/panic", nil, 500, `{"error":"internal error: boom"}`},
		{"a JSON 404 beside it", "GET", "/api/v1/nope", nil, 404, `{"error":"no such endpoint"}`},
		{"a JSON 405 on it", "GET", "/api/v1/ping", nil, 405, `{"error":"method not allowed; allowed: POST"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := httpDo(t, tc.method, ts.URL+tc.path, "", tc.body)
			if code != tc.code || !strings.Contains(string(body), tc.want) || tc.path != "/metrics" && string(body) != tc.want {
				t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, code, body, tc.code, tc.want)
			}
		})
	}
}

// TestGRPCServerRegistersEveryService: the one gRPC server carries the V2 inference
// service, health, and server reflection (v1 and v1alpha), as cmd/ferry registers them.
func TestGRPCServerRegistersEveryService(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
	ts := startServer(t, repo)
	stream, err := rpb.NewServerReflectionClient(ts.conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	slices.Sort(names)
	want := []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "inference.GRPCInferenceService"}
	if !slices.Equal(names, want) {
		t.Errorf("ListServices = %v, want %v", names, want)
	}
	_ = stream.CloseSend()
}
