package router

import (
	"fmt"
	"testing"
)

type benchCase struct {
	p *Policy
	a Attrs
}

// benchCases are the hot-path shapes of Decide, with realistic attributes: a few headers
// and parameters the policy does not read.
func benchCases() map[string]benchCase {
	a := &attrs{
		headers: map[string]string{"content-type": "application/json", "x-user": "user-12345", "x-ferry-variant": "b"},
		params:  map[string]string{"priority": "1", "user": "user-12345"},
	}
	aliases := map[string]string{"champion": "1", "challenger": "2"}
	return map[string]benchCase{
		"weights": {&Policy{Arms: arms("challenger", 10, "champion", 90), Aliases: aliases}, a},
		"weights+shadow": {&Policy{Arms: arms("2", 10, "1", 90),
			Shadow: &Shadow{Version: "3", Percent: 50}}, a},
		"sticky": {&Policy{Arms: arms("2", 10, "1", 90), Sticky: &Sticky{From: SourceHeader, Key: "x-user"}}, a},
		"match": {&Policy{Arms: arms("2", 10, "1", 90),
			Matches: []Match{{From: SourceParameter, Key: "variant", Value: "a", Version: "1"},
				{From: SourceHeader, Key: "x-ferry-variant", Value: "b", Version: "2"}}}, a},
		"default": {nil, a},
	}
}

func BenchmarkDecide(b *testing.B) {
	for _, name := range []string{"weights", "weights+shadow", "sticky", "match", "default"} {
		tc := benchCases()[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tc.p.Decide(tc.a)
			}
		})
	}
}

func BenchmarkTableGet(b *testing.B) {
	var t Table
	for i := range 1000 {
		if err := t.Set(fmt.Sprintf("model-%d", i), &Policy{Arms: arms("2", 10, "1", 90)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if t.Get("model-500") == nil {
				b.Fatal("model-500 has no policy")
			}
		}
	})
}
