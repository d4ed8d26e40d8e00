package router

import "math/rand/v2"

// Attrs is a request's view for routing, filled by a transport: Header and Param return
// "" when the request lacks the attribute. Header compares names case-insensitively (an
// HTTP header or a gRPC metadata key); the router passes a policy's key as written.
// Decide runs on every request, so an implementation should be a pointer to something
// the transport already holds, and look up without allocating.
type Attrs interface {
	Header(name string) string
	Param(name string) string
}

// Route names how a Decision was chosen. The values are metric labels and appear in the
// tap's records, so they never change.
type Route string

const (
	RouteMatch   Route = "match"   // a Match rule
	RouteSticky  Route = "sticky"  // the hash of the sticky attribute
	RouteWeight  Route = "weight"  // a random draw by the arms' weights
	RouteDefault Route = "default" // no arms: the model's own version policy chooses
)

// Decision is what core does with one request.
type Decision struct {
	// Version is the primary version, a number (of a valid policy); "" with RouteDefault.
	Version string
	Route   Route
	// Shadow is the version that also gets a copy of the request, or "" for none. It is
	// "" when it equals Version; with RouteDefault core compares it with the version it
	// chose itself.
	Shadow string
}

// buckets is the resolution of a sticky hash: weights are percents, so an arm of
// weight w owns 100·w consecutive buckets.
const buckets = 10000

// Decide picks the version for one request that did not name one: the first Match
// whose attribute equals its value; else, with Sticky and the attribute present, the
// arm of the attribute's hash; else an arm drawn at random by weight; with no arms,
// RouteDefault. The shadow is sampled independently of that choice. A nil policy or a
// nil a is allowed. Decide does not allocate and never panics, even on a policy that
// failed Validate.
//
// Sticky hashing, which must never change between releases (a change would move users
// between arms): bucket = FNV-1a 64 (offset 14695981039346656037, prime 1099511628211)
// of the attribute value's bytes, modulo 10000; arm i owns the buckets from 100 times
// the sum of the weights before it, for 100 times its own weight. So with arms
// [candidate, stable], raising the candidate's weight only moves users from stable to
// the candidate, never back, and lowering it only moves them back.
func (p *Policy) Decide(a Attrs) Decision {
	if p == nil {
		return Decision{Route: RouteDefault}
	}
	d := p.primary(a)
	if s := p.Shadow; s != nil && s.Percent > 0 && rand.Float64()*100 < s.Percent {
		if v := p.resolved(s.Version); v != d.Version {
			d.Shadow = v
		}
	}
	return d
}

func (p *Policy) primary(a Attrs) Decision {
	if a != nil {
		for i := range p.Matches {
			m := &p.Matches[i]
			if attr(a, m.From, m.Key) == m.Value && m.Value != "" {
				return Decision{Version: p.resolved(m.Version), Route: RouteMatch}
			}
		}
		if s := p.Sticky; s != nil && s.Key != "" {
			if v := attr(a, s.From, s.Key); v != "" {
				if arm, ok := p.arm(int(fnv1a(v)%buckets), buckets/100); ok {
					return Decision{Version: p.resolved(arm), Route: RouteSticky}
				}
			}
		}
	}
	if len(p.Arms) == 0 {
		return Decision{Route: RouteDefault}
	}
	if arm, ok := p.arm(rand.IntN(100), 1); ok {
		return Decision{Version: p.resolved(arm), Route: RouteWeight}
	}
	return Decision{Route: RouteDefault} // only a policy that failed Validate
}

// arm returns the arm whose cumulative range, in units of scale per percent, holds
// bucket. Negative weights own nothing; a sum short of 100 leaves the top unowned.
func (p *Policy) arm(bucket, scale int) (string, bool) {
	end := 0
	for i := range p.Arms {
		if w := p.Arms[i].Weight; w > 0 {
			end += w * scale
			if bucket < end {
				return p.Arms[i].Version, true
			}
		}
	}
	return "", false
}

func attr(a Attrs, from Source, key string) string {
	switch from {
	case SourceHeader:
		return a.Header(key)
	case SourceParameter:
		return a.Param(key)
	}
	return ""
}

// resolved maps an alias of the policy to its target; anything else is returned as is.
func (p *Policy) resolved(v string) string {
	if t, ok := p.Aliases[v]; ok {
		return t
	}
	return v
}

// Resolve maps the version a request asked for to the version to serve: an alias of the
// policy to its target, a number to itself, "" (no version asked for) to itself. Any
// other name is an unknown alias: false, which core reports naming it. A nil policy
// knows no aliases.
func (p *Policy) Resolve(version string) (string, bool) {
	if version == "" || isNumber(version) {
		return version, true
	}
	if p == nil {
		return "", false
	}
	t, ok := p.Aliases[version]
	return t, ok
}

// fnv1a is FNV-1a 64 over s, inline because hash/fnv's interface would allocate.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
