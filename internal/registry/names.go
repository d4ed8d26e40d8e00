package registry

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes bounds model, alias and endpoint names: they end up in URLs,
// file paths of the managed store, metric labels and log lines.
const MaxNameBytes = 128

// AliasLatest is reserved: it always means the highest version number.
const AliasLatest = "latest"

// checkName returns why name is not usable as a model, alias or endpoint
// name, or "". Names become path segments (managed store, URLs), so separators,
// "..", and control characters are refused rather than escaped.
func checkName(name string) string {
	switch {
	case name == "":
		return "name must not be empty"
	case strings.TrimSpace(name) == "":
		return "name must not be only whitespace"
	case len(name) > MaxNameBytes:
		return "name is longer than 128 bytes"
	case !utf8.ValidString(name):
		return "name must be valid UTF-8"
	case strings.ContainsAny(name, `/\`):
		return `name must not contain '/' or '\'`
	case name == "." || strings.Contains(name, ".."):
		return "name must not be '.' or contain '..'"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "name must not contain control characters"
	}
	return ""
}

func validModel(name string) error {
	if why := checkName(name); why != "" {
		return errf(ErrInvalid, modelObj(name), "%s", why)
	}
	return nil
}

func validEndpoint(name string) error {
	if why := checkName(name); why != "" {
		return errf(ErrInvalid, "endpoint "+quote(name), "%s", why)
	}
	return nil
}

// validAlias also refuses all-digit aliases, so "/versions/3" always means
// version 3, and the reserved "latest".
func validAlias(model, alias string) error {
	obj := modelObj(model) + " alias " + quote(alias)
	if why := checkName(alias); why != "" {
		return errf(ErrInvalid, obj, "%s", why)
	}
	if allDigits(alias) {
		return errf(ErrInvalid, obj, "an alias must not be all digits (it would shadow a version number)")
	}
	if alias == AliasLatest {
		return errf(ErrInvalid, obj, "%q is reserved for the highest version", AliasLatest)
	}
	return nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func quote(s string) string { return strconv.Quote(s) }
