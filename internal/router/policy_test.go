package router

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func fullPolicy() *Policy {
	return &Policy{
		Arms:    arms("challenger", 10, "1", 90),
		Sticky:  &Sticky{From: SourceHeader, Key: "x-user"},
		Matches: []Match{{From: SourceParameter, Key: "variant", Value: "b", Version: "2"}},
		Shadow:  &Shadow{Version: "3", Percent: 5},
		Aliases: map[string]string{"challenger": "2"},
	}
}

// TestPolicyJSONIsStable pins the JSON form: the registry stores it and the API shows it,
// so renaming a field breaks stored policies and clients.
func TestPolicyJSONIsStable(t *testing.T) {
	got, err := json.MarshalIndent(fullPolicy(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "policy.golden.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(strings.TrimSpace(string(want)), string(got)); d != "" {
		t.Errorf("JSON of a policy differs from %s (-want +got):\n%s", golden, d)
	}
	back, err := Parse(want)
	if err != nil {
		t.Fatalf("Parse(%s): %v", golden, err)
	}
	if d := cmp.Diff(fullPolicy(), back); d != "" {
		t.Errorf("Parse(Marshal(p)) differs from p (-want +got):\n%s", d)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"a misspelt field", `{"arms":[{"version":"1","wieght":100}]}`, `unknown field "wieght"`},
		{"trailing data", `{} {}`, "trailing data"},
		{"not JSON", `{"arms":`, "unexpected EOF"},
		{"a weight as a string", `{"arms":[{"version":"1","weight":"100"}]}`, "cannot unmarshal string"},
		{"an invalid policy", `{"arms":[{"version":"1","weight":90}]}`, "weights sum to 90, want 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%s) = %+v, %v; want an error with %q", tc.in, p, err, tc.want)
			}
		})
	}
}

func TestCloneIsDeep(t *testing.T) {
	p := fullPolicy()
	c := p.Clone()
	c.Arms[0].Weight = 50
	c.Sticky.Key = "other"
	c.Matches[0].Value = "c"
	c.Shadow.Percent = 50
	c.Aliases["challenger"] = "9"
	if d := cmp.Diff(fullPolicy(), p); d != "" {
		t.Errorf("editing a clone changed the original (-want +got):\n%s", d)
	}
	if (*Policy)(nil).Clone() != nil {
		t.Error("Clone of nil is not nil")
	}
}
