package router

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// within fails unless got (a share of n) is within 1 point of wantPct.
func within(t *testing.T, what string, got, n int, wantPct float64) {
	t.Helper()
	if pct := 100 * float64(got) / float64(n); math.Abs(pct-wantPct) > 1 {
		t.Errorf("%s: %.2f%% of %d, want %v%% ± 1", what, pct, n, wantPct)
	}
}

func TestWeightSplit(t *testing.T) {
	for _, w := range []int{10, 33, 50, 99} {
		t.Run(fmt.Sprintf("%d/%d", w, 100-w), func(t *testing.T) {
			p := &Policy{Arms: arms("2", w, "1", 100-w)}
			const n = 200_000
			count := map[string]int{}
			for range n {
				d := p.Decide(&attrs{})
				if d.Route != RouteWeight {
					t.Fatalf("Decide without sticky or match attributes: route %q, want %q", d.Route, RouteWeight)
				}
				count[d.Version]++
			}
			within(t, "version 2", count["2"], n, float64(w))
			within(t, "version 1", count["1"], n, float64(100-w))
			if len(count) != 2 {
				t.Errorf("versions chosen: %v, want only 1 and 2", count)
			}
		})
	}
}

func TestZeroWeightArmNeverChosen(t *testing.T) {
	p := &Policy{Arms: arms("2", 0, "1", 100), Sticky: &Sticky{From: SourceHeader, Key: "x-user"}}
	for i := range 20_000 {
		a := &attrs{}
		if i%2 == 0 {
			a = header("x-user", fmt.Sprint(i))
		}
		if d := p.Decide(a); d.Version != "1" {
			t.Fatalf("Decide(%v) = %+v; the arm at weight 0 was chosen", a, d)
		}
	}
}

func TestStickyKeepsAKeyOnOneArm(t *testing.T) {
	p := &Policy{Arms: arms("2", 50, "1", 50), Sticky: &Sticky{From: SourceHeader, Key: "X-User"}}
	for _, key := range []string{"alice", "bob", "user-1", "user-2", "☃"} {
		first := p.Decide(header("x-user", key))
		if first.Route != RouteSticky {
			t.Fatalf("key %q: route %q, want %q", key, first.Route, RouteSticky)
		}
		for range 10_000 {
			if d := p.Decide(header("x-user", key)); d != first {
				t.Fatalf("key %q: Decide = %+v, earlier %+v", key, d, first)
			}
		}
	}
}

// TestStickyHashIsFixed pins the hash and the bucket-to-arm mapping: a change would move
// users between arms on upgrade.
func TestStickyHashIsFixed(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want uint64
	}{
		{"", 0xcbf29ce484222325}, // FNV-1a 64's offset basis, and its published test vectors
		{"a", 0xaf63dc4c8601ec8c},
		{"foobar", 0x85944171f73967e8},
	} {
		if got := fnv1a(tc.key); got != tc.want {
			t.Errorf("fnv1a(%q) = %#x, want %#x", tc.key, got, tc.want)
		}
	}
	// bob's bucket is 1092 and alice's 6183: arm 0 owns buckets [0, 100·weight).
	for _, tc := range []struct {
		key    string
		weight int // of arm "2", the first
		want   string
	}{
		{"bob", 10, "1"}, {"bob", 11, "2"},
		{"alice", 61, "1"}, {"alice", 62, "2"},
	} {
		p := &Policy{Arms: arms("2", tc.weight, "1", 100-tc.weight), Sticky: &Sticky{From: SourceHeader, Key: "x-user"}}
		if got := p.Decide(header("x-user", tc.key)); got.Version != tc.want {
			t.Errorf("key %q, arms [2:%d 1:%d]: version %q, want %q", tc.key, tc.weight, 100-tc.weight, got.Version, tc.want)
		}
	}
}

// stickyKeys are distinct keys of two shapes users have: random tokens, and sequential ids
// that differ only in their last characters.
func stickyKeys(n int) map[string][]string {
	r := rand.New(rand.NewPCG(1, 2))
	ks := map[string][]string{}
	for i := range n {
		ks["random"] = append(ks["random"], fmt.Sprintf("%016x", r.Uint64()))
		ks["sequential"] = append(ks["sequential"], fmt.Sprintf("user-%d", i))
	}
	return ks
}

func TestStickySplitOverManyKeys(t *testing.T) {
	const n = 100_000
	for shape, keys := range stickyKeys(n) {
		for _, w := range []int{10, 50, 33} {
			t.Run(fmt.Sprintf("%s keys %d/%d", shape, w, 100-w), func(t *testing.T) {
				p := &Policy{Arms: arms("2", w, "1", 100-w), Sticky: &Sticky{From: SourceParameter, Key: "user"}}
				count := map[string]int{}
				for _, k := range keys {
					count[p.Decide(param("user", k)).Version]++
				}
				within(t, "version 2", count["2"], n, float64(w))
				within(t, "version 1", count["1"], n, float64(100-w))
			})
		}
	}
}

// TestCanaryOnlyMovesUsersForward: with arms [candidate, stable], raising the candidate's
// weight moves users from stable to the candidate and never back, so a user does not
// flip between versions as a rollout proceeds.
func TestCanaryOnlyMovesUsersForward(t *testing.T) {
	keys := stickyKeys(20_000)["random"]
	onCandidate := make([]bool, len(keys))
	for _, w := range []int{0, 10, 50, 100} {
		p := &Policy{Arms: arms("2", w, "1", 100-w), Sticky: &Sticky{From: SourceHeader, Key: "x-user"}}
		moved := 0
		for i, k := range keys {
			now := p.Decide(header("x-user", k)).Version == "2"
			if onCandidate[i] && !now {
				t.Fatalf("candidate at %d%%: key %q went back from the candidate to stable", w, k)
			}
			if now && !onCandidate[i] {
				moved++
			}
			onCandidate[i] = now
		}
		on := 0
		for _, c := range onCandidate {
			if c {
				on++
			}
		}
		within(t, fmt.Sprintf("users on the candidate at %d%%", w), on, len(keys), float64(w))
		t.Logf("candidate at %d%%: %d users moved to it, %d on it", w, moved, on)
	}
}

func TestStickyWithoutTheKeyFallsBackToWeights(t *testing.T) {
	p := &Policy{Arms: arms("2", 30, "1", 70), Sticky: &Sticky{From: SourceHeader, Key: "x-user"}}
	const n = 100_000
	twos := 0
	for range n {
		d := p.Decide(header("x-other", "alice"))
		if d.Route != RouteWeight {
			t.Fatalf("Decide without the sticky header: route %q, want %q", d.Route, RouteWeight)
		}
		if d.Version == "2" {
			twos++
		}
	}
	within(t, "version 2 without the sticky key", twos, n, 30)
}

func TestPrecedence(t *testing.T) {
	p := &Policy{
		Arms:   arms("2", 100), // sticky and weights agree on the arm; the route tells them apart
		Sticky: &Sticky{From: SourceParameter, Key: "user"},
		Matches: []Match{
			{From: SourceHeader, Key: "x-ferry-variant", Value: "b", Version: "3"},
			{From: SourceHeader, Key: "x-ferry-variant", Value: "b", Version: "4"}, // shadowed by the first
			{From: SourceParameter, Key: "variant", Value: "c", Version: "champion"},
		},
		Aliases: map[string]string{"champion": "5"},
	}
	for _, tc := range []struct {
		name string
		a    Attrs
		want Decision
	}{
		{"a match beats sticky", &attrs{headers: map[string]string{"x-ferry-variant": "b"}, params: map[string]string{"user": "u"}}, Decision{Version: "3", Route: RouteMatch}},
		{"a match's value is exact", header("x-ferry-variant", "B"), Decision{Version: "2", Route: RouteWeight}},
		{"a match may name an alias", param("variant", "c"), Decision{Version: "5", Route: RouteMatch}},
		{"a header does not match a parameter rule", header("variant", "c"), Decision{Version: "2", Route: RouteWeight}},
		{"sticky beats weights", param("user", "u"), Decision{Version: "2", Route: RouteSticky}},
		{"weights last", &attrs{}, Decision{Version: "2", Route: RouteWeight}},
		{"no attributes at all", nil, Decision{Version: "2", Route: RouteWeight}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Decide(tc.a); got != tc.want {
				t.Errorf("Decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDefaultRoute(t *testing.T) {
	for name, p := range map[string]*Policy{"nil policy": nil, "no arms": {}, "only aliases": {Aliases: map[string]string{"a": "1"}}} {
		if d := p.Decide(header("x", "y")); d != (Decision{Route: RouteDefault}) {
			t.Errorf("%s: Decide = %+v, want the default route and no version", name, d)
		}
	}
}

func TestArmsMayNameAliases(t *testing.T) {
	p := &Policy{Arms: arms("champion", 100), Aliases: map[string]string{"champion": "7"}}
	if d := p.Decide(nil); d.Version != "7" {
		t.Errorf("Decide with arm champion -> 7: %+v, want version 7", d)
	}
}

func TestShadow(t *testing.T) {
	const n = 200_000
	t.Run("sampled by percent, independently of the primary", func(t *testing.T) {
		p := &Policy{Arms: arms("2", 50, "1", 50), Shadow: &Shadow{Version: "3", Percent: 20}}
		joint := map[[2]string]int{}
		for range n {
			d := p.Decide(nil)
			joint[[2]string{d.Version, d.Shadow}]++
		}
		within(t, "primary 1 with shadow", joint[[2]string{"1", "3"}], n, 10)
		within(t, "primary 2 with shadow", joint[[2]string{"2", "3"}], n, 10)
		within(t, "primary 1 without shadow", joint[[2]string{"1", ""}], n, 40)
		within(t, "primary 2 without shadow", joint[[2]string{"2", ""}], n, 40)
	})
	t.Run("never a copy to the primary itself", func(t *testing.T) {
		p := &Policy{Arms: arms("2", 50, "1", 50), Shadow: &Shadow{Version: "challenger", Percent: 100},
			Aliases: map[string]string{"challenger": "2"}}
		for range 10_000 {
			d := p.Decide(nil)
			if want := map[string]string{"1": "2", "2": ""}[d.Version]; d.Shadow != want {
				t.Fatalf("Decide = %+v, want shadow %q", d, want)
			}
		}
	})
	for _, tc := range []struct {
		pct  float64
		want int
	}{{0, 0}, {100, n}} {
		p := &Policy{Shadow: &Shadow{Version: "3", Percent: tc.pct}}
		got := 0
		for range n {
			if p.Decide(nil).Shadow == "3" {
				got++
			}
		}
		if got != tc.want {
			t.Errorf("shadow at %v%%: %d of %d requests copied, want %d", tc.pct, got, n, tc.want)
		}
	}
}

func TestResolve(t *testing.T) {
	p := &Policy{Aliases: map[string]string{"champion": "3", "challenger": "4"}}
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"champion", "3", true},
		{"challenger", "4", true},
		{"7", "7", true},
		{"", "", true},
		{"Champion", "", false}, // aliases are case-sensitive, as URL paths are
		{"staging", "", false},
	} {
		if got, ok := p.Resolve(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	var nilp *Policy
	if got, ok := nilp.Resolve("12"); got != "12" || !ok {
		t.Errorf("nil policy: Resolve(12) = %q, %v; want 12, true", got, ok)
	}
	if _, ok := nilp.Resolve("champion"); ok {
		t.Error("nil policy: Resolve(champion) = true, want false")
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	for name, tc := range benchCases() {
		if n := testing.AllocsPerRun(1000, func() { tc.p.Decide(tc.a) }); n != 0 {
			t.Errorf("%s: Decide allocates %v times per call, want 0", name, n)
		}
	}
}
