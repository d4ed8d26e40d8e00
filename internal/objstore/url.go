package objstore

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// Scheme is the URL scheme of object-store repositories.
const Scheme = "s3://"

// IsURL reports whether a --model-repository value names an object store.
func IsURL(s string) bool { return strings.HasPrefix(s, Scheme) }

// parseURL splits s3://bucket/prefix into the bucket and a prefix that is either empty
// (the whole bucket) or ends with "/", so a key's path below it is key[len(prefix):].
func parseURL(s string) (bucket, prefix string, err error) {
	if !IsURL(s) {
		return "", "", fmt.Errorf("model store URL %q: want s3://bucket/prefix", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("model store URL %q: %w", s, err)
	}
	if u.Host == "" {
		return "", "", fmt.Errorf("model store URL %q: no bucket", s)
	}
	if u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("model store URL %q: want s3://bucket/prefix, without user, port, query or fragment", s)
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix != "" {
		if _, ok := relPath(prefix + "/"); !ok {
			return "", "", fmt.Errorf("model store URL %q: prefix must not contain empty, \".\" or \"..\" parts", s)
		}
		prefix += "/"
	}
	return u.Host, prefix, nil
}

// relPath checks a key's path below the prefix and returns it without a trailing "/".
// It refuses paths that could leave the cache folder or name it ("", ".", "..", empty
// parts, a leading "/") and backslashes, which some systems read as separators.
func relPath(rel string) (string, bool) {
	rel = strings.TrimSuffix(rel, "/")
	if rel == "" || strings.HasPrefix(rel, "/") || strings.Contains(rel, "\\") || strings.ContainsRune(rel, 0) {
		return "", false
	}
	for part := range strings.SplitSeq(rel, "/") {
		if part == "" || part == "." || part == ".." {
			return "", false
		}
	}
	if path.Clean(rel) != rel {
		return "", false
	}
	return rel, true
}

// group is the model a path belongs to: its first part, or "" for a file at the top
// (a folder at the top is a model of its own).
func group(rel string, dir bool) string {
	g, _, ok := strings.Cut(rel, "/")
	if !ok && !dir {
		return ""
	}
	return g
}
