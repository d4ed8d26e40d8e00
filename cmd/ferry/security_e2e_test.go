package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/auth/authtest"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/registry"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
)

// security_e2e_test.go: authentication and authorization over both transports, with
// credentials passed as tritonclient passes headers (plain HTTP headers, gRPC
// metadata); the safe default on a non-loopback address; mTLS identities.

func withExplicit(models ...string) serverOption {
	return func(c *serveConfig) { c.mode, c.loadModels = "explicit", models }
}

func withSecurity(f func(*securityConfig)) serverOption {
	return func(c *serveConfig) { f(&c.security) }
}

// createKeys stores keys in dir's registry, by name.
func createKeys(t *testing.T, dir string, keys map[string]registry.Key) map[string]string {
	t.Helper()
	ctx := context.Background()
	st, err := registry.OpenDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := map[string]string{}
	for name, k := range keys {
		_, full, err := st.CreateKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = full
	}
	return out
}

// call is one request of the table: the same action over REST and over gRPC.
type call struct {
	name   string
	method string // REST
	path   string
	body   string
	rpc    func(ctx context.Context, c inference.GRPCInferenceServiceClient) error
}

const simpleJSON = `{"inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]},` +
	`{"name":"INPUT1","shape":[1,16],"datatype":"INT32","data":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}]}`

var authCalls = []call{
	{"health", "GET", "/v2/health/ready", "", func(ctx context.Context, c inference.GRPCInferenceServiceClient) error {
		_, err := c.ServerReady(ctx, &inference.ServerReadyRequest{})
		return err
	}},
	{"server metadata", "GET", "/v2", "", func(ctx context.Context, c inference.GRPCInferenceServiceClient) error {
		_, err := c.ServerMetadata(ctx, &inference.ServerMetadataRequest{})
		return err
	}},
	{"metadata simple", "GET", "/v2/models/simple", "", func(ctx context.Context, c inference.GRPCInferenceServiceClient) error {
		_, err := c.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: "simple"})
		return err
	}},
	{"metadata mlp", "GET", "/v2/models/mlp/config", "", func(ctx context.Context, c inference.GRPCInferenceServiceClient) error {
		_, err := c.ModelConfig(ctx, &inference.ModelConfigRequest{Name: "mlp"})
		return err
	}},
	{"infer simple", "POST", "/v2/models/simple/infer", simpleJSON, func(ctx context.Context, c inference.GRPCInferenceServiceClient) error {
		_, err := c.ModelInfer(ctx, e2eSimpleRequest("1", 1, true))
		return err
	}},
	{"index", "POST", "/v2/repository/index", "{}", func(ctx context.Context, c inference.GRPCInferenceServiceClient) error {
		_, err := c.RepositoryIndex(ctx, &inference.RepositoryIndexRequest{})
		return err
	}},
	{"load mlp", "POST", "/v2/repository/models/mlp/load", "{}", func(ctx context.Context, c inference.GRPCInferenceServiceClient) error {
		_, err := c.RepositoryModelLoad(ctx, &inference.RepositoryModelLoadRequest{ModelName: "mlp"})
		return err
	}},
}

// outcome: o ok, u unauthenticated, f forbidden; one letter per call of authCalls.
var authTable = map[string]string{
	"none":         "ouuuuuu",
	"bad":          "ouuuuuu",
	"infer-simple": "ooofoff", // limited to simple: mlp's config, every model's index and load are refused
	"infer":        "oooooof",
	"manage":       "ooooooo",
	"admin":        "ooooooo",
}

func TestAuthEveryRoleOverBothTransports(t *testing.T) {
	dir := t.TempDir()
	keys := createKeys(t, dir, map[string]registry.Key{
		"infer-simple": {Tenant: "acme", Role: "infer", Models: []string{"simp*"}},
		"infer":        {Tenant: "acme", Role: "infer"},
		"manage":       {Tenant: "ops", Role: "manage"},
		"admin":        {Tenant: "root", Role: "admin"},
	})
	keys["bad"] = "fk_0123456789abcdef_" + strings.Repeat("x", 43)
	keys["none"] = ""
	ts := startServer(t, exampleRepo(t), withDataDir(dir), withExplicit("simple", "mlp"), withSecurity(func(s *securityConfig) { s.keyTTL = 300 * time.Millisecond }))
	for who, want := range authTable {
		for i, c := range authCalls {
			var header []string
			if keys[who] != "" {
				header = []string{"Authorization", "Bearer " + keys[who]}
			}
			code, h, body := httpDo(t, c.method, ts.URL+c.path, "application/json", strings.NewReader(c.body), header...)
			wantCode := map[byte]int{'o': 200, 'u': 401, 'f': 403}[want[i]]
			if code != wantCode {
				t.Errorf("REST %s by %s: %d %s, want %d", c.name, who, code, body, wantCode)
			}
			if code == 401 && h.Get("WWW-Authenticate") == "" {
				t.Errorf("REST %s by %s: 401 without WWW-Authenticate", c.name, who)
			}
			if code >= 400 && (!strings.HasPrefix(string(body), `{"error":`) || (keys[who] != "" && strings.Contains(string(body), keys[who][20:]))) {
				t.Errorf("REST %s by %s: body %s: want {\"error\": ...} without the secret", c.name, who, body)
			}
			ctx := context.Background()
			if keys[who] != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+keys[who])
			}
			wantGRPC := map[byte]codes.Code{'o': codes.OK, 'u': codes.Unauthenticated, 'f': codes.PermissionDenied}[want[i]]
			if got := status.Code(c.rpc(ctx, ts.GRPC)); got != wantGRPC {
				t.Errorf("gRPC %s by %s: %v, want %v", c.name, who, c.rpc(ctx, ts.GRPC), wantGRPC)
			}
		}
	}

	// The typed client, as tritonclient passes headers: per request over both.
	for _, proto := range []string{"rest", "grpc"} {
		m := ts.v2(proto, "simple", "")
		r := simpleTypedRequest()
		if _, err := m.Infer(context.Background(), r); err == nil {
			t.Errorf("%s: typed infer without a key succeeded", proto)
		}
		r.Header = map[string]string{"authorization": "Bearer " + keys["infer-simple"]}
		if _, err := m.Infer(context.Background(), r); err != nil {
			t.Errorf("%s: typed infer with Request.Header: %v", proto, err)
		}
	}
	// The streaming RPC authorizes each message's model.
	sctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+keys["infer-simple"])
	stream, err := ts.GRPC.ModelStreamInfer(sctx)
	if err != nil {
		t.Fatal(err)
	}
	other := e2eSimpleRequest("2", 1, true)
	other.ModelName = "mlp"
	stream.Send(other)
	if _, err := stream.Recv(); status.Code(err) != codes.PermissionDenied {
		t.Errorf("stream infer of mlp by a key limited to simp*: %v, want PermissionDenied", err)
	}

	// /api/v1: reads need infer without patterns, writes manage; the audit row names the
	// key that made the change, whatever actor header the client claims.
	for who, want := range map[string]int{"none": 401, "infer": 403, "manage": 201} {
		var header []string
		if keys[who] != "" {
			header = []string{"Authorization", "Bearer " + keys[who], "X-Ferry-Actor", "cli:mallory"}
		}
		code, _, body := httpDo(t, "POST", ts.URL+"/api/v1/models", "application/json", strings.NewReader(`{"name":"made_by_`+who+`"}`), header...)
		if code != want {
			t.Errorf("POST /api/v1/models by %s: %d %s, want %d", who, code, body, want)
		}
	}
	code, _, body := httpDo(t, "GET", ts.URL+"/api/v1/audit?object=model/made_by_manage", "", nil, "Authorization", "Bearer "+keys["admin"])
	manageID, _, _ := registry.ParseKey(keys["manage"])
	if code != 200 || !strings.Contains(string(body), "key:ops/"+manageID+" (cli:mallory)") {
		t.Errorf("audit of a model made with the manage key: %d %s; want the actor key:ops/%s", code, body, manageID)
	}

	// Revocation reaches the server within its key TTL, without a restart.
	st, err := registry.OpenDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id, _, _ := registry.ParseKey(keys["infer"])
	if err := st.RevokeKey(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		code, _, _ := httpDo(t, "GET", ts.URL+"/v2/models/simple", "", nil, "Authorization", "Bearer "+keys["infer"])
		if code == 401 {
			t.Logf("revoked key refused after %v (--auth-key-ttl 300ms)", time.Since(revoked).Round(time.Millisecond))
			break
		}
		if time.Since(revoked) > 2*time.Second {
			t.Fatalf("revoked key still answered %d after %v", code, time.Since(revoked))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func simpleTypedRequest() *v2client.Request {
	a, b := e2eSimpleInputs(1)
	return &v2client.Request{Inputs: []*tensor.Tensor{
		{Name: "INPUT0", DType: tensor.Int32, Shape: tensor.Shape{1, 16}, Data: e2eLE(a)},
		{Name: "INPUT1", DType: tensor.Int32, Shape: tensor.Shape{1, 16}, Data: e2eLE(b)},
	}}
}

// TestSafeDefaultBeyondLoopback starts on 0.0.0.0 with no authentication: inference
// works, management refuses with a 403 that says why, on both transports, until
// --insecure-management.
func TestSafeDefaultBeyondLoopback(t *testing.T) {
	repo := exampleRepo(t)
	for _, insecureMgmt := range []bool{false, true} {
		ts := startServer(t, repo, withExplicit("simple", "mlp"), func(c *serveConfig) {
			c.host, c.httpPort, c.grpcPort = "0.0.0.0", 0, 0
			c.security.insecureManagement = insecureMgmt
		})
		code, _, body := httpDo(t, "POST", ts.URL+"/v2/models/simple/infer", "application/json", strings.NewReader(simpleJSON))
		if code != 200 {
			t.Fatalf("infer on 0.0.0.0: %d %s", code, body)
		}
		code, _, body = httpDo(t, "POST", ts.URL+"/v2/repository/models/mlp/unload", "application/json", strings.NewReader("{}"))
		_, gerr := ts.GRPC.RepositoryModelLoad(context.Background(), &inference.RepositoryModelLoadRequest{ModelName: "mlp"})
		if insecureMgmt {
			if code != 200 || gerr != nil {
				t.Fatalf("--insecure-management: unload %d %s, gRPC load %v", code, body, gerr)
			}
			continue
		}
		if code != 403 || !strings.Contains(string(body), "--insecure-management") || !strings.Contains(string(body), "0.0.0.0") {
			t.Fatalf("unload on 0.0.0.0 without auth: %d %s; want 403 naming the address and --insecure-management", code, body)
		}
		if status.Code(gerr) != codes.PermissionDenied || !strings.Contains(gerr.Error(), "beyond loopback") {
			t.Fatalf("gRPC load on 0.0.0.0 without auth: %v, want PermissionDenied saying why", gerr)
		}
		code, _, _ = httpDo(t, "POST", ts.URL+"/v2/logging", "application/json", strings.NewReader(`{"log_verbose_level":1}`))
		if code != 403 {
			t.Fatalf("logging settings write on 0.0.0.0 without auth: %d, want 403", code)
		}
	}
}

// TestMTLSIdentity serves over TLS requiring client certificates from a CA: the
// certificate's CN is the tenant and its OU the role; no certificate, no handshake.
func TestMTLSIdentity(t *testing.T) {
	ca := authtest.NewCA(t)
	dir := t.TempDir()
	file := func(n string) string { return filepath.Join(dir, n) }
	ca.Issue(t, file("server.pem"), file("server.key"), "ferry", true)
	ca.Issue(t, file("ops.pem"), file("ops.key"), "ops", false, "manage")
	ca.Issue(t, file("app.pem"), file("app.key"), "app", false)
	ts := startServer(t, exampleRepo(t), withExplicit("simple", "mlp"), withSecurity(func(s *securityConfig) {
		s.tlsCert, s.tlsKey, s.tlsClientCA, s.tlsClientAuth, s.mtlsRole = file("server.pem"), file("server.key"), ca.CertFile, "require", "infer"
	}))
	client := func(name string) *tls.Config {
		cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
		if name != "" {
			c, err := tls.LoadX509KeyPair(file(name+".pem"), file(name+".key"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{c}
		}
		return cfg
	}
	url := "https://" + ts.httpLn.Addr().String()
	for _, c := range []struct {
		who         string
		load, infer int
	}{{"ops", 200, 200}, {"app", 403, 200}} {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: client(c.who)}}
		for path, want := range map[string]int{"/v2/repository/models/mlp/load": c.load, "/v2/models/simple/infer": c.infer} {
			body := "{}"
			if strings.HasSuffix(path, "infer") {
				body = simpleJSON
			}
			resp, err := hc.Post(url+path, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatalf("%s %s: %v", c.who, path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("%s %s: %d, want %d", c.who, path, resp.StatusCode, want)
			}
		}
		hc.CloseIdleConnections()
		conn, err := grpc.NewClient(ts.grpcLn.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(client(c.who))))
		if err != nil {
			t.Fatal(err)
		}
		_, err = inference.NewGRPCInferenceServiceClient(conn).RepositoryModelLoad(context.Background(), &inference.RepositoryModelLoadRequest{ModelName: "mlp"})
		conn.Close()
		if want := map[int]codes.Code{200: codes.OK, 403: codes.PermissionDenied}[c.load]; status.Code(err) != want {
			t.Errorf("gRPC load by %s: %v, want %v", c.who, err, want)
		}
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: client("")}}
	if resp, err := hc.Get(url + "/v2/health/ready"); err == nil {
		resp.Body.Close()
		t.Error("a client without a certificate got an answer with --tls-client-auth require")
	}
	plain, _ := grpc.NewClient(ts.grpcLn.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer plain.Close()
	if _, err := inference.NewGRPCInferenceServiceClient(plain).ServerLive(context.Background(), &inference.ServerLiveRequest{}); err == nil {
		t.Error("a plaintext gRPC client got an answer from the TLS listener")
	}
}

// cli runs `ferry args...` with env and returns stdout.
func cli(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return out.String(), err
}

// TestKeysCommandAndServe is the acceptance path: `ferry keys create` prints the key on
// its last line; `ferry serve --data-dir` then wants it on every route but health; the
// management commands send it from $FERRY_API_KEY; `ferry keys revoke` ends it.
func TestKeysCommandAndServe(t *testing.T) {
	dir := t.TempDir()
	out, err := cli(t, nil, "keys", "create", "--tenant", "ops", "--role", "manage", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	key := lines[len(lines)-1]
	id, _, ok := registry.ParseKey(key)
	if !ok {
		t.Fatalf("last line of keys create %q is not a key", key)
	}
	if _, err := cli(t, nil, "keys", "create", "--tenant", "ops", "--role", "root", "--data-dir", dir); err == nil {
		t.Fatal("keys create --role root succeeded")
	}
	if out, err := cli(t, nil, "keys", "list", "--data-dir", dir); err != nil || !strings.Contains(out, id) || strings.Contains(out, key) {
		t.Fatalf("keys list: %v\n%s (want the id, never the key)", err, out)
	}
	ts := startServer(t, exampleRepo(t), withDataDir(dir), withSecurity(func(s *securityConfig) { s.keyTTL = 100 * time.Millisecond }))
	if code, _, _ := httpDo(t, "GET", ts.URL+"/v2/health/live", "", nil); code != 200 {
		t.Fatalf("health with keys: %d", code)
	}
	if code, _, _ := httpDo(t, "GET", ts.URL+"/v2/models/simple", "", nil); code != 401 {
		t.Fatalf("metadata without a key: %d, want 401", code)
	}
	env := map[string]string{"FERRY_SERVER": ts.URL, "USER": "tester"}
	if _, err := cli(t, env, "models", "list"); err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "unauthenticated") {
		t.Fatalf("models list without $FERRY_API_KEY: %v, want a 401", err)
	}
	env["FERRY_API_KEY"] = key
	if out, err := cli(t, env, "models", "list"); err != nil || !strings.Contains(out, "simple") {
		t.Fatalf("models list with $FERRY_API_KEY: %v\n%s", err, out)
	}
	if _, err := cli(t, nil, "keys", "revoke", id, "--data-dir", dir); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, err := cli(t, env, "models", "list"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a revoked key still lists models after 2s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestJWTOverBothTransports: a server with --jwks takes good tokens as a header and as
// metadata, and refuses expired, wrong-audience and alg-none tokens with 401 /
// UNAUTHENTICATED; an infer token cannot load.
func TestJWTOverBothTransports(t *testing.T) {
	is := authtest.NewIssuer(t)
	ts := startServer(t, exampleRepo(t), withExplicit("simple", "mlp"), withSecurity(func(s *securityConfig) {
		s.jwks, s.jwtIssuer, s.jwtAudience = is.JWKSFile, authtest.IssuerURL, authtest.Audience
		s.jwtTenant, s.jwtRole, s.jwtModels = "tenant", "role", "models"
	}))
	claims := func(role string, edit func(jwt.MapClaims)) jwt.MapClaims {
		c := authtest.Claims("acme", role)
		if edit != nil {
			edit(c)
		}
		return c
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims("admin", nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for name, c := range map[string]struct {
		tok         string
		infer, load int
	}{
		"infer (ES256)":  {is.Token(t, jwt.SigningMethodES256, "e1", is.EC, claims("infer", nil)), 200, 403},
		"manage (EdDSA)": {is.Token(t, jwt.SigningMethodEdDSA, "d1", is.Ed, claims("manage", nil)), 200, 200},
		"expired": {is.Token(t, jwt.SigningMethodRS256, "r1", is.RSA, claims("admin", func(c jwt.MapClaims) {
			c["exp"] = time.Now().Add(-time.Hour).Unix()
		})), 401, 401},
		"wrong audience": {is.Token(t, jwt.SigningMethodRS256, "r1", is.RSA, claims("admin", func(c jwt.MapClaims) { c["aud"] = "other" })), 401, 401},
		"alg none":       {none, 401, 401},
	} {
		code, _, body := httpDo(t, "POST", ts.URL+"/v2/models/simple/infer", "application/json", strings.NewReader(simpleJSON), "Authorization", "Bearer "+c.tok)
		if code != c.infer {
			t.Errorf("%s: REST infer %d %s, want %d", name, code, body, c.infer)
		}
		code, _, body = httpDo(t, "POST", ts.URL+"/v2/repository/models/mlp/load", "application/json", strings.NewReader("{}"), "Authorization", "Bearer "+c.tok)
		if code != c.load {
			t.Errorf("%s: REST load %d %s, want %d", name, code, body, c.load)
		}
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+c.tok)
		want := map[int]codes.Code{200: codes.OK, 401: codes.Unauthenticated, 403: codes.PermissionDenied}
		if _, err := ts.GRPC.ModelInfer(ctx, e2eSimpleRequest("1", 1, true)); status.Code(err) != want[c.infer] {
			t.Errorf("%s: gRPC infer %v, want %v", name, err, want[c.infer])
		}
		if _, err := ts.GRPC.RepositoryModelLoad(ctx, &inference.RepositoryModelLoadRequest{ModelName: "mlp"}); status.Code(err) != want[c.load] {
			t.Errorf("%s: gRPC load %v, want %v", name, err, want[c.load])
		}
	}
}

// TestNoBypassThroughOpenPaths: paths that start like the open health routes but lead
// elsewhere are not open: dot segments are refused (400) before authentication sees
// them, and the rest want a key (401).
func TestNoBypassThroughOpenPaths(t *testing.T) {
	dir := t.TempDir()
	createKeys(t, dir, map[string]registry.Key{"k": {Tenant: "t", Role: "admin"}})
	ts := startServer(t, exampleRepo(t), withDataDir(dir), withExplicit("simple"))
	for _, p := range []string{"/v2/health/../repository/models/simple/unload", "/v2/health/ready/../../models/simple", "/v2/health/%2e%2e/models/simple", "//v2/models/simple"} {
		req, err := http.NewRequest("POST", ts.URL+"/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = p // sent as written, not cleaned by the client
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 && resp.StatusCode != 400 {
			t.Errorf("POST %s without a key: %d, want 400 or 401", p, resp.StatusCode)
		}
	}
	if code, _, _ := httpDo(t, "GET", ts.URL+"/v2/models/simple/ready", "", nil); code != 401 {
		t.Errorf("model readiness without a key: %d, want 401", code)
	}
}
