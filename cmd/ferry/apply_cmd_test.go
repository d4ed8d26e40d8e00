package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleRolloutParses: docs/examples/rollout.yaml decodes and validates.
func TestExampleRolloutParses(t *testing.T) {
	ms, err := readManifests(nil, filepath.Join("..", "..", "docs", "examples", "rollout.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].kind != "Endpoint" || ms[0].policy == nil || ms[1].kind != "Rollout" || ms[1].rollout == nil {
		t.Fatalf("example = %+v, want an Endpoint then a Rollout", ms)
	}
	r := ms[1].rollout
	if r.Endpoint != "mlp" || r.Candidate != "2" || r.Strategy.Canary == nil || len(r.Analysis.Metrics) != 2 {
		t.Errorf("example rollout = %+v", r)
	}
}

func manifestFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestApply(t *testing.T) {
	srv := mgmtServer(t)
	seedCLI(t, srv)
	example := filepath.Join("..", "..", "docs", "examples", "rollout.yaml")
	out := mustCLI(t, srv, "apply", "-f", example)
	if !strings.Contains(out, "Endpoint/mlp configured") || !strings.Contains(out, "Rollout/mlp started") {
		t.Errorf("apply = %q", out)
	}
	resp, err := http.Get(srv + "/api/v1/endpoints/mlp")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Policy struct {
			Matches []struct{ Version string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || len(e.Policy.Matches) != 1 || e.Policy.Matches[0].Version != "2" {
		t.Errorf("after apply the endpoint's policy is %+v (%v), want the example's match", e, err)
	}
	if st := mustCLI(t, srv, "rollout", "status", "mlp", "-o", "json"); !strings.Contains(st, `"candidate": "2"`) {
		t.Errorf("after apply the rollout is %s", st)
	}

	_, err = ferryCLI(t, srv, "apply", "-f", example)
	if err == nil || !strings.Contains(err.Error(), "already in progress") {
		t.Errorf("second apply: err = %v, want the 409 explained", err)
	}
}

func TestApplyRefusals(t *testing.T) {
	srv := mgmtServer(t)
	seedCLI(t, srv)
	// name -> {document, what the error must name}
	for name, tc := range map[string][2]string{
		"unknown kind":                {"kind: Deployment\nmetadata: {name: mlp}\nspec: {}\n", `kind "Deployment" (mlp)`},
		"other apiVersion":            {"apiVersion: apps/v1\nkind: Endpoint\nmetadata: {name: mlp}\nspec: {}\n", `apiVersion "apps/v1"`},
		"no name":                     {"kind: Endpoint\nspec: {}\n", "metadata.name is required"},
		"weights not 100":             {"kind: Endpoint\nmetadata: {name: mlp}\nspec:\n  arms:\n    - {version: \"1\", weight: 30}\n", "sum to 30"},
		"bare version number":         {"kind: Endpoint\nmetadata: {name: mlp}\nspec:\n  arms:\n    - {version: 1, weight: 100}\n", "version"},
		"misspelt field":              {"kind: Rollout\nmetadata: {name: mlp}\nspec: {candidate: \"2\", stratgy: {}}\n", "stratgy"},
		"endpoint not the name":       {"kind: Rollout\nmetadata: {name: mlp}\nspec: {endpoint: other, candidate: \"2\", strategy: {canary: {steps: [100], interval: 1s}}}\n", "metadata.name"},
		"bad YAML":                    {"kind: [\n", "document 1"},
		"empty":                       {"# nothing\n---\n", "no documents"},
		"mistake in a later document": {"kind: Endpoint\nmetadata: {name: mlp}\nspec: {}\n---\nkind: Nope\nmetadata: {name: x}\nspec: {}\n", "document 2"},
	} {
		t.Run(name, func(t *testing.T) {
			doc, want := tc[0], tc[1]
			_, err := ferryCLI(t, srv, "apply", "-f", manifestFile(t, doc))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("apply %q: err = %v, want it naming %q", doc, err, want)
			}
		})
	}
	// Nothing of a refused file was applied, not even its valid first document.
	out := mustCLI(t, srv, "rollout", "list", "-o", "json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("rollouts after refused files: %s", out)
	}
}

func TestApplyStdin(t *testing.T) {
	ms, err := readManifests(strings.NewReader("kind: Endpoint\nmetadata: {name: m}\nspec: {arms: [{version: \"1\", weight: 100}]}\n"), "-")
	if err != nil || len(ms) != 1 || ms[0].policy.Arms[0].Weight != 100 {
		t.Errorf("readManifests(stdin) = %+v, %v", ms, err)
	}
}

// FuzzManifest: any document is decoded or refused with an error, never a panic, and
// what is accepted is an Endpoint with a valid policy or a Rollout on metadata.name.
func FuzzManifest(f *testing.F) {
	for _, s := range []string{
		"kind: Endpoint\nmetadata: {name: m}\nspec: {arms: [{version: \"1\", weight: 100}]}\n",
		"kind: Rollout\nmetadata: {name: m}\nspec: {candidate: \"2\", strategy: {canary: {steps: [10, 100], interval: 1s}}}\n",
		"apiVersion: ferry.dev/v1\nkind: Rollout\nmetadata: {name: m}\nspec: {candidate: \"2\", strategy: {steps: [{setWeight: 50}, {pause: {}}]}}\n",
		"---\n---\nkind: x\n", "[", "{}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		ms, err := readManifests(strings.NewReader(doc), "-")
		if err != nil {
			return
		}
		for _, m := range ms {
			switch {
			case m.policy != nil:
				if err := m.policy.Validate(); err != nil {
					t.Errorf("accepted an invalid policy from %q: %v", doc, err)
				}
			case m.rollout != nil:
				if m.rollout.Endpoint != m.name {
					t.Errorf("rollout endpoint %q, name %q", m.rollout.Endpoint, m.name)
				}
			default:
				t.Errorf("accepted %q as neither an Endpoint nor a Rollout", doc)
			}
		}
	})
}
