package router

import (
	"math"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
		want []string // fragments of the error; none: valid
	}{
		{"empty policy means no split", Policy{}, nil},
		{"a canary", Policy{Arms: arms("2", 10, "1", 90)}, nil},
		{"one arm at 100", Policy{Arms: arms("1", 100)}, nil},
		{"an arm at 0 is a parked candidate", Policy{Arms: arms("2", 0, "1", 100)}, nil},
		{"everything at once", Policy{
			Arms:    arms("challenger", 50, "champion", 50),
			Sticky:  &Sticky{From: SourceHeader, Key: "x-user"},
			Matches: []Match{{From: SourceHeader, Key: "x-ferry-variant", Value: "b", Version: "challenger"}},
			Shadow:  &Shadow{Version: "3", Percent: 12.5},
			Aliases: map[string]string{"champion": "1", "challenger": "2", "v1.2_rc-1": "2"},
		}, nil},
		{"weights short of 100", Policy{Arms: arms("2", 10, "1", 80)}, []string{"arms: weights sum to 90, want 100"}},
		{"weights over 100", Policy{Arms: arms("2", 60, "1", 60)}, []string{"arms: weights sum to 120, want 100"}},
		{"negative weight", Policy{Arms: arms("2", -10, "1", 110)}, []string{
			`arms[0] (version "2"): weight -10 is outside 0..100`, `arms[1] (version "1"): weight 110 is outside 0..100`}},
		{"empty arm version", Policy{Arms: arms("", 100)}, []string{"arms[0]: version is empty"}},
		{"duplicate arm", Policy{Arms: arms("1", 50, "1", 50)}, []string{`arms[1]: version "1" is already arms[0]`}},
		{"arm names an unknown alias", Policy{Arms: arms("canary", 100)}, []string{
			`arms[0]: version "canary" is neither a number nor an alias of this policy`}},
		{"sticky without arms", Policy{Sticky: &Sticky{From: SourceHeader, Key: "x-user"}}, []string{"sticky: needs arms"}},
		{"sticky without key", Policy{Arms: arms("1", 100), Sticky: &Sticky{From: SourceParameter}}, []string{"sticky: key is empty"}},
		{"sticky from a cookie", Policy{Arms: arms("1", 100), Sticky: &Sticky{From: "cookie", Key: "u"}}, []string{
			`sticky: from "cookie" is neither "header" nor "parameter"`}},
		{"match without key", Policy{Matches: []Match{{From: SourceHeader, Value: "b", Version: "2"}}}, []string{"matches[0]: key is empty"}},
		{"match without value", Policy{Matches: []Match{{From: SourceHeader, Key: "k", Version: "2"}}}, []string{"matches[0]: value is empty"}},
		{"match without version", Policy{Matches: []Match{{From: SourceParameter, Key: "k", Value: "b"}}}, []string{"matches[0]: version is empty"}},
		{"match without source", Policy{Matches: []Match{{Key: "k", Value: "b", Version: "2"}}}, []string{`matches[0]: from "" is neither`}},
		{"shadow over 100", Policy{Shadow: &Shadow{Version: "2", Percent: 100.5}}, []string{"shadow: percent 100.5 is outside 0..100"}},
		{"shadow negative", Policy{Shadow: &Shadow{Version: "2", Percent: -1}}, []string{"shadow: percent -1 is outside 0..100"}},
		{"shadow NaN", Policy{Shadow: &Shadow{Version: "2", Percent: math.NaN()}}, []string{"shadow: percent NaN is outside 0..100"}},
		{"shadow without version", Policy{Shadow: &Shadow{Percent: 5}}, []string{"shadow: version is empty"}},
		{"all-digit alias", Policy{Aliases: map[string]string{"7": "1"}}, []string{`aliases["7"]: alias name is all digits`}},
		{"empty alias", Policy{Aliases: map[string]string{"": "1"}}, []string{`aliases[""]: alias name is empty`}},
		{"alias with a slash", Policy{Aliases: map[string]string{"a/b": "1"}}, []string{`aliases["a/b"]: alias name has '/'`}},
		{"alias ..", Policy{Aliases: map[string]string{"..": "1"}}, []string{`aliases[".."]: alias name is a path element`}},
		{"alias without target", Policy{Aliases: map[string]string{"champion": ""}}, []string{`aliases["champion"]: target "" is not a version number`}},
		{"alias of an alias", Policy{Aliases: map[string]string{"a": "b", "b": "1"}}, []string{`aliases["a"]: target "b" is not a version number`}},
		{"every problem at once", Policy{
			Arms:   arms("1", 70, "", 10),
			Shadow: &Shadow{Version: "x", Percent: 200},
		}, []string{"arms[1]: version is empty", "weights sum to 80", `shadow: version "x"`, "shadow: percent 200"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", tc.p, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want an error with %q", tc.p, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate(%+v) = %q, want it to contain %q", tc.p, err, w)
				}
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	var p *Policy
	if err := p.Validate(); err == nil {
		t.Fatal("Validate of a nil policy = nil, want an error")
	}
}
