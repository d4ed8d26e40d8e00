package router

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Validate reports every problem of p at once, each naming its field, so an operator
// fixes a policy in one round. Empty Arms is valid (no split).
func (p *Policy) Validate() error {
	if p == nil {
		return errors.New("policy: missing (nil)")
	}
	var errs []error
	errs = p.validateArms(errs)
	errs = p.validateMatches(errs)
	if s := p.Sticky; s != nil {
		errs = validateAttr(errs, "sticky", s.From, s.Key)
		if len(p.Arms) == 0 {
			errs = append(errs, errors.New("sticky: needs arms to choose between"))
		}
	}
	if s := p.Shadow; s != nil {
		errs = p.validateVersion(errs, "shadow", s.Version)
		if !(s.Percent >= 0 && s.Percent <= 100) { // also refuses NaN
			errs = append(errs, fmt.Errorf("shadow: percent %v is outside 0..100", s.Percent))
		}
	}
	errs = p.validateAliases(errs)
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("policy: %w", errors.Join(errs...))
}

func (p *Policy) validateArms(errs []error) []error {
	sum := 0
	for i, a := range p.Arms {
		field := fmt.Sprintf("arms[%d]", i)
		errs = p.validateVersion(errs, field, a.Version)
		if a.Weight < 0 || a.Weight > 100 {
			errs = append(errs, fmt.Errorf("%s (version %q): weight %d is outside 0..100", field, a.Version, a.Weight))
		}
		if j := slices.IndexFunc(p.Arms[:i], func(b Arm) bool { return b.Version == a.Version }); j >= 0 && a.Version != "" {
			errs = append(errs, fmt.Errorf("%s: version %q is already arms[%d]", field, a.Version, j))
		}
		sum += a.Weight
	}
	if len(p.Arms) > 0 && sum != 100 {
		errs = append(errs, fmt.Errorf("arms: weights sum to %d, want 100", sum))
	}
	return errs
}

func (p *Policy) validateMatches(errs []error) []error {
	for i, m := range p.Matches {
		field := fmt.Sprintf("matches[%d]", i)
		errs = validateAttr(errs, field, m.From, m.Key)
		// An empty value would match every request that lacks the attribute.
		if m.Value == "" {
			errs = append(errs, fmt.Errorf("%s: value is empty", field))
		}
		errs = p.validateVersion(errs, field, m.Version)
	}
	return errs
}

func validateAttr(errs []error, field string, from Source, key string) []error {
	if from != SourceHeader && from != SourceParameter {
		errs = append(errs, fmt.Errorf("%s: from %q is neither %q nor %q", field, from, SourceHeader, SourceParameter))
	}
	if key == "" {
		errs = append(errs, fmt.Errorf("%s: key is empty", field))
	}
	return errs
}

// validateVersion: a version is a number or an alias of this policy, so Decide never
// answers with a name core cannot serve.
func (p *Policy) validateVersion(errs []error, field, v string) []error {
	switch {
	case v == "":
		return append(errs, fmt.Errorf("%s: version is empty", field))
	case isNumber(v):
		return errs
	}
	if _, ok := p.Aliases[v]; !ok {
		return append(errs, fmt.Errorf("%s: version %q is neither a number nor an alias of this policy", field, v))
	}
	return errs
}

func (p *Policy) validateAliases(errs []error) []error {
	for _, name := range slices.Sorted(maps.Keys(p.Aliases)) {
		target := p.Aliases[name]
		if err := checkAliasName(name); err != nil {
			errs = append(errs, fmt.Errorf("aliases[%q]: %w", name, err))
		}
		// A number, not another alias: one lookup resolves, and no chain can loop.
		if !isNumber(target) {
			errs = append(errs, fmt.Errorf("aliases[%q]: target %q is not a version number", name, target))
		}
	}
	return errs
}

// checkAliasName keeps aliases usable as a URL path segment (/versions/{alias}) and
// distinct from version numbers, which Resolve passes through.
func checkAliasName(name string) error {
	switch {
	case name == "":
		return errors.New("alias name is empty")
	case isNumber(name):
		return errors.New("alias name is all digits, so it reads as a version number")
	case name == "." || name == "..":
		return errors.New("alias name is a path element")
	}
	for _, r := range name {
		if !aliasRune(r) {
			return fmt.Errorf("alias name has %q; use letters, digits, '-', '_' and '.'", r)
		}
	}
	return nil
}

func aliasRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

// isNumber: a non-empty run of ASCII digits, the form of a model version.
func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
