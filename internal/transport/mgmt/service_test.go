package mgmt

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ferryml/ferry/internal/transport/mgmt/mgmttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var _ Service = (*mgmttest.Service)(nil)

// api is a real HTTP server of the handler, and the test's client of it.
type api struct {
	t   *testing.T
	svc *mgmttest.Service
	srv *httptest.Server
}

func newAPI(t *testing.T, o Options) *api {
	t.Helper()
	svc := mgmttest.NewService(t)
	srv := httptest.NewServer(New(svc, o))
	t.Cleanup(srv.Close)
	return &api{t: t, svc: svc, srv: srv}
}

// do sends a request; path is taken as written (escapes and ".." kept).
func (a *api) do(method, path string, body io.Reader, header map[string]string) (int, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// json sends a JSON body (a string as written, anything else marshalled) and wants
// status want; it decodes the answer into out when out is not nil.
func (a *api) json(method, path string, body any, want int, out any) []byte {
	a.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	code, got := a.do(method, path, r, map[string]string{"Content-Type": "application/json"})
	if code != want {
		a.t.Fatalf("%s %s = %d %s, want %d", method, path, code, got, want)
	}
	if out != nil {
		if err := json.Unmarshal(got, out); err != nil {
			a.t.Fatalf("%s %s: answer %s: %v", method, path, got, err)
		}
	}
	return got
}

// tarOf is a tar of files (name -> content).
func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// push uploads a version of model with meta in the header form.
func (a *api) push(model, meta string, files map[string]string) (int, []byte) {
	a.t.Helper()
	h := map[string]string{"Content-Type": "application/x-tar", "X-Ferry-Version-Meta": meta}
	return a.do("POST", "/api/v1/models/"+model+"/versions", bytes.NewReader(tarOf(a.t, files)), h)
}
