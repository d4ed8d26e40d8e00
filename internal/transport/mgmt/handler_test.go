package mgmt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/registry"
	"github.com/ferryml/ferry/internal/rollout"
)

// seed creates model mlp with versions 1 and 2 (pushed through the API) and the
// alias champion -> 1.
func seed(a *api) {
	a.t.Helper()
	a.json("POST", "/api/v1/models", `{"name":"mlp","description":"a small MLP","tags":{"team":"ml"}}`, http.StatusCreated, nil)
	for i := 1; i <= 2; i++ {
		meta := fmt.Sprintf(`{"description":"v%d","metrics":{"acc":0.9%d},"params":{"lr":"0.01"},"lineage":{"run_id":"run-%d"}}`, i, i, i)
		if code, b := a.push("mlp", meta, map[string]string{"model.onnx": fmt.Sprintf("weights %d", i)}); code != http.StatusCreated {
			a.t.Fatalf("push %d = %d %s", i, code, b)
		}
	}
	a.json("PUT", "/api/v1/models/mlp/aliases/champion", `{"version":1}`, http.StatusOK, nil)
}

func TestModelsRoutes(t *testing.T) {
	a := newAPI(t, Options{})
	seed(a)

	var list []mgmtapi.Model
	a.json("GET", "/api/v1/models", nil, http.StatusOK, &list)
	if len(list) != 1 || list[0].Name != "mlp" || len(list[0].Versions) != 2 || list[0].Aliases["champion"] != 1 {
		t.Fatalf("GET /api/v1/models = %+v, want mlp with 2 versions and champion -> 1", list)
	}
	v2 := list[0].Versions[1]
	if v2.Version != 2 || v2.Metrics["acc"] != 0.92 || v2.Tags["description"] != "v2" || v2.Lineage.RunID != "run-2" || len(v2.Digest) != 64 {
		t.Errorf("version 2 = %+v, want the pushed metadata and a SHA-256 digest", v2)
	}

	var one mgmtapi.Model
	a.json("GET", "/api/v1/models/mlp", nil, http.StatusOK, &one)
	if one.Description != "a small MLP" || len(one.Versions) != 2 {
		t.Errorf("GET /api/v1/models/mlp = %+v", one)
	}
	a.json("PATCH", "/api/v1/models/mlp", `{"description":"bigger"}`, http.StatusOK, &one)
	if one.Description != "bigger" || one.Tags["team"] != "ml" {
		t.Errorf("PATCH kept tags? got %+v", one)
	}

	var vs []registry.ModelVersion
	a.json("GET", "/api/v1/models/mlp/versions", nil, http.StatusOK, &vs)
	if len(vs) != 2 {
		t.Errorf("versions = %d, want 2", len(vs))
	}
	var v registry.ModelVersion
	a.json("GET", "/api/v1/models/mlp/versions/champion", nil, http.StatusOK, &v)
	if v.Version != 1 {
		t.Errorf("versions/champion = %d, want 1", v.Version)
	}
	a.json("POST", "/api/v1/models/mlp/versions/2/stage", `{"stage":"Production","reason":"beats v1"}`, http.StatusOK, &v)
	if v.Stage != registry.StageProduction {
		t.Errorf("stage = %q, want Production", v.Stage)
	}

	var as map[string]int64
	a.json("PUT", "/api/v1/models/mlp/aliases/challenger", `{"version":2}`, http.StatusOK, nil)
	a.json("GET", "/api/v1/models/mlp/aliases", nil, http.StatusOK, &as)
	if as["champion"] != 1 || as["challenger"] != 2 {
		t.Errorf("aliases = %v", as)
	}
	a.json("DELETE", "/api/v1/models/mlp/aliases/challenger", nil, http.StatusNoContent, nil)

	var audit []mgmtapi.AuditEntry
	a.json("GET", "/api/v1/audit?object=model/mlp/version/2&limit=5", nil, http.StatusOK, &audit)
	if len(audit) == 0 || !strings.HasPrefix(audit[len(audit)-1].Actor, "api@127.0.0.1") ||
		!bytes.Contains(audit[len(audit)-1].Detail, []byte("beats v1")) {
		t.Errorf("audit of version 2 = %+v, want the stage change by api@127.0.0.1 with its reason", audit)
	}

	a.json("DELETE", "/api/v1/models/mlp", nil, http.StatusNoContent, nil)
	a.json("GET", "/api/v1/models/mlp", nil, http.StatusNotFound, nil)
}

func TestActorHeader(t *testing.T) {
	a := newAPI(t, Options{})
	h := map[string]string{"Content-Type": "application/json", "X-Ferry-Actor": "ci-bot", "X-Ferry-Reason": "nightly"}
	if code, b := a.do("POST", "/api/v1/models", strings.NewReader(`{"name":"m"}`), h); code != http.StatusCreated {
		t.Fatalf("create = %d %s", code, b)
	}
	var audit []mgmtapi.AuditEntry
	a.json("GET", "/api/v1/audit?actor=ci-bot", nil, http.StatusOK, &audit)
	if len(audit) != 1 || audit[0].Action != "model.create" || !bytes.Contains(audit[0].Detail, []byte("nightly")) {
		t.Errorf("audit by ci-bot = %+v, want model.create with reason nightly", audit)
	}
}

func TestPushQueryMetadata(t *testing.T) {
	a := newAPI(t, Options{})
	a.json("POST", "/api/v1/models", `{"name":"m"}`, http.StatusCreated, nil)
	if code, got := a.push("m", `{}`, map[string]string{"first": "version"}); code != http.StatusCreated {
		t.Fatalf("first push = %d %s", code, got)
	}
	q := "?run_id=r9&parent_version=1&tag=team=ml&tag=k=v&metric=acc=0.5&param=lr=0.1&backend=onnxruntime"
	code, got := a.do("POST", "/api/v1/models/m/versions"+q, bytes.NewReader(tarOf(t, map[string]string{"a": "b"})),
		map[string]string{"Content-Type": "application/x-tar", "X-Ferry-Version-Meta": `{"tags":{"from":"header"},"lineage":{"run_id":"r1"}}`})
	var v registry.ModelVersion
	if code != http.StatusCreated || json.Unmarshal(got, &v) != nil {
		t.Fatalf("push with query = %d %s", code, got)
	}
	if v.Lineage.RunID != "r9" || v.Lineage.ParentVersion != 1 || v.Tags["team"] != "ml" || v.Tags["k"] != "v" || v.Tags["from"] != "header" ||
		v.Metrics["acc"] != 0.5 || v.Params["lr"] != "0.1" || v.Backend != "onnxruntime" {
		t.Errorf("version = %+v, want the query's metadata over the header's", v)
	}
	for q, want := range map[string]string{"?colour=red": `colour`, "?metric=acc=high": "not a number", "?tag=novalue": "KEY=VALUE", "?parent_version=-2": "parent_version"} {
		code, got := a.do("POST", "/api/v1/models/m/versions"+q, bytes.NewReader(tarOf(t, map[string]string{"a": "b"})),
			map[string]string{"Content-Type": "application/x-tar"})
		if code != http.StatusBadRequest || !strings.Contains(string(got), want) {
			t.Errorf("push%s = %d %s, want 400 naming %s", q, code, got, want)
		}
	}
}

func TestPushMultipart(t *testing.T) {
	a := newAPI(t, Options{})
	a.json("POST", "/api/v1/models", `{"name":"m"}`, http.StatusCreated, nil)
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	must(t, mw.WriteField("meta", `{"backend":"onnxruntime","tags":{"k":"v"}}`))
	fw, err := mw.CreateFormFile("artifact", "v.tar")
	must(t, err)
	_, err = fw.Write(tarOf(t, map[string]string{"model.onnx": "x"}))
	must(t, err)
	must(t, mw.Close())
	code, got := a.do("POST", "/api/v1/models/m/versions", &b, map[string]string{"Content-Type": mw.FormDataContentType()})
	var v registry.ModelVersion
	if code != http.StatusCreated || json.Unmarshal(got, &v) != nil || v.Backend != "onnxruntime" || v.Tags["k"] != "v" {
		t.Fatalf("multipart push = %d %s, want 201 with backend and tags", code, got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestEndpointsRoutes(t *testing.T) {
	a := newAPI(t, Options{})
	seed(a)
	var e mgmtapi.Endpoint
	a.json("PUT", "/api/v1/endpoints/mlp", `{"arms":[{"version":"1","weight":90},{"version":"2","weight":10}]}`, http.StatusOK, &e)
	if e.Policy == nil || len(e.Policy.Arms) != 2 || e.Live == nil || e.Live.Aliases["champion"] != "1" {
		t.Fatalf("PUT endpoint = %+v, want the stored arms and a live policy with the champion alias", e)
	}
	a.json("GET", "/api/v1/endpoints/mlp", nil, http.StatusOK, &e)
	if e.Name != "mlp" || e.Policy.Arms[1].Weight != 10 {
		t.Errorf("GET endpoint = %+v", e)
	}
	var es []mgmtapi.Endpoint
	a.json("GET", "/api/v1/endpoints", nil, http.StatusOK, &es)
	if len(es) != 1 || es[0].Name != "mlp" {
		t.Errorf("GET endpoints = %+v, want mlp", es)
	}
	a.json("GET", "/api/v1/endpoints/nope", nil, http.StatusNotFound, nil)
}

func TestRolloutRoutes(t *testing.T) {
	a := newAPI(t, Options{})
	seed(a)
	body := `{"endpoint":"mlp","candidate":"2","strategy":{"steps":[{"setWeight":10},{"pause":{}}]}}`
	var s rollout.Status
	a.json("POST", "/api/v1/rollouts", body, http.StatusCreated, &s)
	if s.Rollout.Stable != "1" || s.Rollout.Candidate != "2" {
		t.Fatalf("started %+v, want stable 1 (the champion) and candidate 2", s.Rollout)
	}
	d := waitRollout(a, "mlp", func(d mgmtapi.RolloutDetail) bool { return d.Weights["2"] == 10 })
	if d.Weights["1"] != 90 || len(d.History) == 0 {
		t.Errorf("status = %+v, want 90/10 and a history", d)
	}
	a.json("POST", "/api/v1/rollouts", body, http.StatusConflict, nil)

	a.json("POST", "/api/v1/rollouts/mlp/pause", nil, http.StatusOK, nil)
	a.json("POST", "/api/v1/rollouts/mlp/pause", nil, http.StatusOK, &s) // idempotent
	if s.State != rollout.Paused {
		t.Errorf("after pause: %s, want Paused", s.State)
	}
	a.json("POST", "/api/v1/rollouts/mlp/resume", nil, http.StatusOK, nil)
	a.json("POST", "/api/v1/rollouts/mlp/promote", nil, http.StatusOK, nil)
	d = waitRollout(a, "mlp", func(d mgmtapi.RolloutDetail) bool { return d.State == rollout.Succeeded })
	if d.Weights["2"] != 100 {
		t.Errorf("succeeded with weights %v, want 2: 100", d.Weights)
	}
	a.json("POST", "/api/v1/rollouts/mlp/promote", nil, http.StatusOK, nil) // idempotent after the end

	var list []rollout.Status
	a.json("GET", "/api/v1/rollouts", nil, http.StatusOK, &list)
	if len(list) != 1 || list[0].Rollout.Endpoint != "mlp" {
		t.Errorf("list = %+v", list)
	}
	a.json("POST", "/api/v1/rollouts/mlp/explode", nil, http.StatusNotFound, nil)
	a.json("GET", "/api/v1/rollouts/nope", nil, http.StatusNotFound, nil)
	a.json("POST", "/api/v1/rollouts/nope/abort", nil, http.StatusNotFound, nil)
}

// waitRollout polls the endpoint's rollout until ok (5 s at most).
func waitRollout(a *api, ep string, ok func(mgmtapi.RolloutDetail) bool) mgmtapi.RolloutDetail {
	a.t.Helper()
	var d mgmtapi.RolloutDetail
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		d = mgmtapi.RolloutDetail{}
		a.json("GET", "/api/v1/rollouts/"+ep, nil, http.StatusOK, &d)
		if ok(d) {
			return d
		}
	}
	a.t.Fatalf("rollout %s never got there: %+v", ep, d)
	return d
}

// TestBadInput: each bad request gets its 4xx naming the problem, and nothing changes.
func TestBadInput(t *testing.T) {
	a := newAPI(t, Options{MaxBodyBytes: 256, MaxArtifactBytes: 4096})
	seed(a)
	big := `{"name":"x","description":"` + strings.Repeat("d", 300) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"unknown alias", "GET", "/api/v1/models/mlp/versions/nobody", "", 404, "nobody"},
		{"unknown version", "GET", "/api/v1/models/mlp/versions/9", "", 404, "version 9"},
		{"alias to an unknown version", "PUT", "/api/v1/models/mlp/aliases/champion", `{"version":9}`, 404, "version 9"},
		{"alias of an unknown model", "PUT", "/api/v1/models/nope/aliases/champion", `{"version":1}`, 404, "nope"},
		{"version zero", "PUT", "/api/v1/models/mlp/aliases/champion", `{"version":0}`, 400, "version 0"},
		{"weights not summing to 100", "PUT", "/api/v1/endpoints/mlp", `{"arms":[{"version":"1","weight":50},{"version":"2","weight":20}]}`, 400, "sum to 70"},
		{"negative weight", "PUT", "/api/v1/endpoints/mlp", `{"arms":[{"version":"1","weight":110},{"version":"2","weight":-10}]}`, 400, "weight -10"},
		{"misspelt policy field", "PUT", "/api/v1/endpoints/mlp", `{"arms":[{"version":"1","wieght":100}]}`, 400, "wieght"},
		{"name with an escaped slash", "GET", "/api/v1/models/a%2Fb", "", 400, `must not contain '/'`},
		{"name with an escaped slash, created", "POST", "/api/v1/models", `{"name":"a/b"}`, 400, `must not contain '/'`},
		{"name ..", "GET", "/api/v1/models/..", "", 400, "'..'"},
		{"name .. escaped", "DELETE", "/api/v1/models/%2E%2E", "", 400, "'..'"},
		{"alias ..", "PUT", "/api/v1/models/mlp/aliases/..", `{"version":1}`, 400, "'..'"},
		{"endpoint with a slash", "PUT", "/api/v1/endpoints/a%2Fb", `{}`, 400, "'/'"},
		{"oversized body", "POST", "/api/v1/models", big, 413, "256-byte limit"},
		{"malformed JSON", "POST", "/api/v1/models", `{"name":`, 400, "malformed JSON"},
		{"empty body", "POST", "/api/v1/models", ``, 400, "empty"},
		{"unknown field", "POST", "/api/v1/models", `{"name":"x","colour":"red"}`, 400, "colour"},
		{"unknown stage", "POST", "/api/v1/models/mlp/versions/1/stage", `{"stage":"Prod"}`, 400, `stage "Prod"`},
		{"model exists", "POST", "/api/v1/models", `{"name":"mlp"}`, 409, "already exists"},
		{"bad rollout", "POST", "/api/v1/rollouts", `{"endpoint":"mlp","candidate":"2","strategy":{"steps":[{"setWeight":150}]}}`, 400, "setWeight.percent"},
		{"bad audit limit", "GET", "/api/v1/audit?limit=many", "", 400, "limit"},
		{"bad audit since", "GET", "/api/v1/audit?since=yesterday", "", 400, "RFC 3339"},
		{"versions of an unknown model", "GET", "/api/v1/models/nope/versions", "", 404, `"nope"`},
		{"aliases of an unknown model", "GET", "/api/v1/models/nope/aliases", "", 404, `"nope"`},
		{"version below 1", "GET", "/api/v1/models/mlp/versions/-1", "", 400, "numbered from 1"},
		{"stage of an unknown version", "POST", "/api/v1/models/mlp/versions/7/stage", `{"stage":"Staging"}`, 404, "version 7"},
		{"delete an unknown alias", "DELETE", "/api/v1/models/mlp/aliases/ghost", "", 404, "ghost"},
		{"all-digit alias", "PUT", "/api/v1/models/mlp/aliases/123", `{"version":1}`, 400, "all digits"},
		{"candidate equal to stable", "POST", "/api/v1/rollouts", `{"endpoint":"mlp","candidate":"2","stable":"2","strategy":{"steps":[{"setWeight":10}]}}`, 400, "must differ"},
		{"wrong method", "DELETE", "/api/v1/models", "", 405, "allowed: GET, POST"},
		{"unknown route", "GET", "/api/v1/nothing", "", 404, "no such management route"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body *strings.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			} else {
				body = strings.NewReader("")
			}
			code, got := a.do(tc.method, tc.path, body, map[string]string{"Content-Type": "application/json"})
			var e mgmtapi.Error
			if code != tc.code || json.Unmarshal(got, &e) != nil || !strings.Contains(e.Error, tc.want) {
				t.Errorf("%s %s = %d %s, want %d naming %q", tc.method, tc.path, code, got, tc.code, tc.want)
			}
		})
	}
	// Nothing changed.
	var m mgmtapi.Model
	a.json("GET", "/api/v1/models/mlp", nil, http.StatusOK, &m)
	if len(m.Versions) != 2 || m.Aliases["champion"] != 1 || m.Versions[0].Stage != registry.StageNone {
		t.Errorf("after the bad requests mlp = %+v, want it as seeded", m)
	}
	if e := a.svc.StoredPolicy("mlp"); e != nil {
		t.Errorf("a refused policy was stored: %+v", e)
	}
}

func TestPushRefusals(t *testing.T) {
	a := newAPI(t, Options{MaxArtifactBytes: 4096})
	a.json("POST", "/api/v1/models", `{"name":"m"}`, http.StatusCreated, nil)
	for _, tc := range []struct {
		name  string
		meta  string
		files map[string]string
		code  int
		want  string
	}{
		{"artifact over the limit", `{}`, map[string]string{"model.onnx": strings.Repeat("w", 8000)}, 413, "4096-byte limit"},
		{"server-set field in meta", `{"digest":"abc"}`, map[string]string{"a": "b"}, 400, "digest"},
		{"malformed meta", `{"tags":`, map[string]string{"a": "b"}, 400, "X-Ferry-Version-Meta"},
		{"tar escaping its folder", `{}`, map[string]string{"../evil": "x"}, 400, "'..'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, got := a.push("m", tc.meta, tc.files)
			if code != tc.code || !strings.Contains(string(got), tc.want) {
				t.Errorf("push = %d %s, want %d naming %q", code, got, tc.code, tc.want)
			}
		})
	}
	code, got := a.do("POST", "/api/v1/models/m/versions", strings.NewReader("x"), map[string]string{"Content-Type": "text/plain"})
	if code != 400 || !strings.Contains(string(got), "application/x-tar") {
		t.Errorf("push as text/plain = %d %s, want 400 naming the content types", code, got)
	}
	code, _ = a.push("nope", `{}`, map[string]string{"a": "b"})
	if code != 404 {
		t.Errorf("push to an unknown model = %d, want 404", code)
	}
	var vs []registry.ModelVersion
	a.json("GET", "/api/v1/models/m/versions", nil, http.StatusOK, &vs)
	if len(vs) != 0 {
		t.Errorf("refused pushes registered %d versions", len(vs))
	}
}

// TestNoRegistry: a handler with no Service answers the registry's routes with a 404
// that says what to start, instead of failing on a nil service.
func TestNoRegistry(t *testing.T) {
	srv := httptest.NewServer(New(nil, Options{}))
	defer srv.Close()
	for _, path := range []string{"models", "models/mlp/versions", "endpoints", "rollouts", "audit"} {
		resp, err := http.Get(srv.URL + "/api/v1/" + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "--data-dir") {
			t.Errorf("GET %s without a registry: %d %s", path, resp.StatusCode, body)
		}
	}
}
