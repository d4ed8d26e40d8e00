package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Policy is one endpoint's traffic policy. It is stored by the registry and shown by the
// management API, so its JSON field names are part of Ferry's interface and never change
// (testdata/policy.golden.json pins them). A Policy handed to a Table, or read from one,
// is never mutated again: edit a Clone and Set it.
type Policy struct {
	// Arms split the traffic by percent, in this order (the order is what sticky buckets
	// follow, see Decide). Empty means no split: the model's own version policy chooses.
	Arms []Arm `json:"arms,omitempty"`
	// Sticky, if set, picks the arm from a hash of one request attribute, so a user keeps
	// their arm; requests without it fall back to the weights.
	Sticky *Sticky `json:"sticky,omitempty"`
	// Matches route requests carrying an attribute value to a version; first match wins
	// and beats Sticky and the weights.
	Matches []Match `json:"matches,omitempty"`
	// Shadow, if set, copies a share of requests to another version.
	Shadow *Shadow `json:"shadow,omitempty"`
	// Aliases map an alias (champion, challenger, ...) to a version number. Versions in
	// Arms, Matches and Shadow may name an alias; Decide answers with its target.
	Aliases map[string]string `json:"aliases,omitempty"`
}

// Arm is one version's share of the traffic.
type Arm struct {
	Version string `json:"version"`
	Weight  int    `json:"weight"` // percent, 0..100; an endpoint's arms sum to 100
}

// Source says where a request attribute comes from.
type Source string

const (
	// SourceHeader is an HTTP header or a gRPC metadata key, compared case-insensitively.
	SourceHeader Source = "header"
	// SourceParameter is a V2 request parameter.
	SourceParameter Source = "parameter"
)

// Sticky names the request attribute whose value keeps a user on one arm.
type Sticky struct {
	From Source `json:"from"`
	Key  string `json:"key"`
}

// Match routes the requests whose attribute Key equals Value (exactly) to Version.
type Match struct {
	From    Source `json:"from"`
	Key     string `json:"key"`
	Value   string `json:"value"`
	Version string `json:"version"`
}

// Shadow copies Percent of the requests to Version; the client sees only the primary.
type Shadow struct {
	Version string  `json:"version"`
	Percent float64 `json:"percent"` // 0..100
}

// Parse decodes a policy strictly (an unknown field is an error, as a misspelt "wieght"
// would otherwise silently become 0) and validates it.
func Parse(data []byte) (*Policy, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var p Policy
	if err := d.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if d.More() {
		return nil, errors.New("policy: trailing data after the JSON object")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Clone returns a deep copy of p, for editing without touching a published policy.
func (p *Policy) Clone() *Policy {
	if p == nil {
		return nil
	}
	c := &Policy{Arms: slices.Clone(p.Arms), Matches: slices.Clone(p.Matches), Aliases: maps.Clone(p.Aliases)}
	if p.Sticky != nil {
		s := *p.Sticky
		c.Sticky = &s
	}
	if p.Shadow != nil {
		s := *p.Shadow
		c.Shadow = &s
	}
	return c
}
