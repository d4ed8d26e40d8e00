package router

import (
	"encoding/json"
	"os"
	"testing"
)

// FuzzPolicy: any JSON a client or a corrupted store may hold goes through Parse,
// Validate, Decide and Resolve without a panic, and a policy that passes Validate only
// ever decides a version it names.
func FuzzPolicy(f *testing.F) {
	golden, err := os.ReadFile("testdata/policy.golden.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden, "x-user", "alice", "challenger")
	f.Add([]byte(`{"arms":[{"version":"2","weight":-5},{"version":"1","weight":105}]}`), "k", "v", "1")
	f.Add([]byte(`{"arms":[{"version":"2","weight":0}],"sticky":{"from":"header","key":"k"}}`), "k", "v", "")
	f.Add([]byte(`{"shadow":{"version":"3","percent":1e308},"aliases":{"a":"b","b":"a"}}`), "", "", "a")
	f.Add([]byte(`{"matches":[{"from":"parameter","key":"p","value":"v","version":"x"}]}`), "p", "v", "x")
	f.Fuzz(func(t *testing.T, data []byte, key, value, version string) {
		a := &attrs{headers: map[string]string{key: value}, params: map[string]string{key: value}}
		var p Policy
		if json.Unmarshal(data, &p) != nil {
			return
		}
		valid := p.Validate() == nil
		d := p.Decide(a) // also on an invalid policy: never a panic
		p.Resolve(version)
		if _, err := Parse(data); (err == nil) && !valid {
			t.Fatalf("Parse accepted %s, which Validate refuses", data)
		}
		if !valid {
			return
		}
		if !p.names(d.Version) || (d.Shadow != "" && !p.names(d.Shadow)) || d.Shadow == d.Version && d.Shadow != "" {
			t.Fatalf("policy %s decided %+v: a version it does not name", data, d)
		}
		if (d.Version == "") != (d.Route == RouteDefault) {
			t.Fatalf("policy %s decided %+v: version empty iff default route broken", data, d)
		}
		if len(p.Arms) > 0 && d.Route == RouteDefault {
			t.Fatalf("policy %s with arms decided %+v", data, d)
		}
	})
}

// names: v is "" or a number the policy routes to (through an alias or not).
func (p *Policy) names(v string) bool {
	if v == "" {
		return true
	}
	if !isNumber(v) {
		return false
	}
	for _, a := range p.Arms {
		if p.resolved(a.Version) == v {
			return true
		}
	}
	for _, m := range p.Matches {
		if p.resolved(m.Version) == v {
			return true
		}
	}
	return p.Shadow != nil && p.resolved(p.Shadow.Version) == v
}
