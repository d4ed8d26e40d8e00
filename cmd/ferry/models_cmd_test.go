package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/transport/mgmt"
	"github.com/ferryml/ferry/internal/transport/mgmt/mgmttest"
)

// mgmtServer is an httptest server of the management API over a real registry and
// rollout controller (mgmttest), for the CLI's commands to talk to.
func mgmtServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(mgmt.New(mgmttest.NewService(t), mgmt.Options{}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// ferryCLI runs `ferry args...` against server (as $FERRY_SERVER) and returns stdout.
func ferryCLI(t *testing.T, server string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"FERRY_SERVER": server, "USER": "tester"}
	err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return out.String(), err
}

func mustCLI(t *testing.T, server string, args ...string) string {
	t.Helper()
	out, err := ferryCLI(t, server, args...)
	if err != nil {
		t.Fatalf("ferry %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// versionDir writes a version folder with a model file and a nested one.
func versionDir(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "assets"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"model.onnx": content, "assets/vocab.txt": "a\nb\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// seedCLI registers mlp with versions 1 and 2 through the CLI, champion -> 1.
func seedCLI(t *testing.T, srv string) {
	t.Helper()
	mustCLI(t, srv, "models", "create", "mlp", "--description", "a small MLP", "--tag", "team=ml")
	mustCLI(t, srv, "models", "push", "mlp", versionDir(t, "v1"), "--alias", "champion", "--metric", "acc=0.91", "--run-id", "r1")
	mustCLI(t, srv, "models", "push", "mlp", versionDir(t, "v2"), "--param", "lr=0.01", "--parent-version", "1",
		"--dataset-uri", "s3://data/train", "--dataset-hash", "abc", "--description", "more data")
}

// TestModelsListJSON holds the interface acceptance checks use: `ferry models list
// --server URL -o json` prints the models with their versions and aliases.
func TestModelsListJSON(t *testing.T) {
	srv := mgmtServer(t)
	seedCLI(t, srv)
	out := mustCLI(t, "http://unused.invalid", "models", "list", "--server", srv, "-o", "json")
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("models list -o json is not a JSON list: %v\n%s", err, out)
	}
	if len(got) != 1 || got[0]["name"] != "mlp" || got[0]["description"] != "a small MLP" {
		t.Fatalf("models list -o json = %s, want mlp", out)
	}
	vs, _ := got[0]["versions"].([]any)
	as, _ := got[0]["aliases"].(map[string]any)
	if len(vs) != 2 || as["champion"] != float64(1) {
		t.Fatalf("models list -o json: versions %v aliases %v, want 2 versions and champion: 1", vs, as)
	}
	v2, _ := vs[1].(map[string]any)
	lineage, _ := v2["lineage"].(map[string]any)
	if v2["version"] != float64(2) || v2["model"] != "mlp" || len(v2["digest"].(string)) != 64 ||
		lineage["parent_version"] != float64(1) || lineage["dataset_uri"] != "s3://data/train" {
		t.Errorf("version 2 = %v, want number 2, a digest and the lineage pushed", v2)
	}
}

func TestModelsCommands(t *testing.T) {
	srv := mgmtServer(t)
	seedCLI(t, srv)
	table := mustCLI(t, srv, "models", "list")
	for _, want := range []string{"NAME", "VERSIONS", "mlp", "champion=1", "a small MLP"} {
		if !strings.Contains(table, want) {
			t.Errorf("models list table lacks %q:\n%s", want, table)
		}
	}
	if out := mustCLI(t, srv, "models", "alias", "mlp", "champion", "2"); !strings.Contains(out, "champion -> version 2") {
		t.Errorf("models alias = %q", out)
	}
	mustCLI(t, srv, "models", "alias", "mlp", "canary", "1")
	mustCLI(t, srv, "models", "alias", "mlp", "canary", "--delete")
	if out := mustCLI(t, srv, "models", "stage", "mlp", "2", "Production", "--archive-existing", "--reason", "better"); !strings.Contains(out, "version 2 is now Production") {
		t.Errorf("models stage = %q", out)
	}
	get := mustCLI(t, srv, "models", "get", "mlp")
	for _, want := range []string{"Model:", "champion=2", "team=ml", "VERSION", "Production", "r1"} {
		if !strings.Contains(get, want) {
			t.Errorf("models get lacks %q:\n%s", want, get)
		}
	}
	if strings.Contains(get, "canary=") {
		t.Errorf("deleted alias still shown:\n%s", get)
	}
	var v struct {
		Version int64             `json:"version"`
		Tags    map[string]string `json:"tags"`
	}
	out := mustCLI(t, srv, "models", "push", "mlp", versionDir(t, "v3"), "--tag", "k=v", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Version != 3 || v.Tags["k"] != "v" {
		t.Errorf("push -o json = %s (%v), want version 3 with tag k=v", out, err)
	}
}

func TestModelsCommandErrors(t *testing.T) {
	srv := mgmtServer(t)
	seedCLI(t, srv)
	wantCLIErrors(t, srv, []cliErrorCase{
		{[]string{"models", "alias", "mlp", "champion", "9"}, "404"},
		{[]string{"models", "alias", "mlp", "champion", "two"}, `VERSION "two"`},
		{[]string{"models", "alias", "mlp", "champion"}, "NAME ALIAS VERSION"},
		{[]string{"models", "stage", "mlp", "1", "Prod"}, `stage "Prod"`},
		{[]string{"models", "get", "a/b"}, `must not contain '/'`},
		{[]string{"models", "create", "x", "--tag", "novalue"}, `--tag "novalue"`},
		{[]string{"models", "push", "mlp", versionDir(t, "x"), "--metric", "acc=high"}, "--metric acc=high"},
		{[]string{"models", "push", "mlp", "/no/such/dir"}, "is not a folder"},
		{[]string{"models", "list", "-o", "yaml"}, `-o "yaml"`},
		{[]string{"models", "list", "--server", "http://127.0.0.1:1"}, "is a ferry server running"},
	})
}

// cliErrorCase is a command line and what its error must name.
type cliErrorCase struct {
	args []string
	want string
}

func wantCLIErrors(t *testing.T, srv string, cases []cliErrorCase) {
	t.Helper()
	for _, tc := range cases {
		if _, err := ferryCLI(t, srv, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ferry %s: err = %v, want it naming %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

func TestModelsPushCreatesTheModel(t *testing.T) {
	srv := mgmtServer(t)
	out := mustCLI(t, srv, "models", "push", "fresh", versionDir(t, "v1"), "--alias", "champion")
	for _, want := range []string{"created model fresh", "pushed fresh version 1", "alias champion -> 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("first push of a new model printed %q, want %q", out, want)
		}
	}
}

func TestModelsPushRefusesLinks(t *testing.T) {
	srv := mgmtServer(t)
	seedCLI(t, srv)
	dir := versionDir(t, "v3")
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "leak")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	_, err := ferryCLI(t, srv, "models", "push", "mlp", dir)
	if err == nil || !strings.Contains(err.Error(), "only plain files and folders") || strings.Contains(err.Error(), "server running") {
		t.Errorf("push of a folder with a link: err = %v, want it naming the link", err)
	}
	if out := mustCLI(t, srv, "models", "list"); !strings.Contains(out, "mlp   2") {
		t.Errorf("a refused push registered a version:\n%s", out)
	}
}
