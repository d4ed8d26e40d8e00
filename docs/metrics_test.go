package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var metricName = regexp.MustCompile(`\bferry_[a-z0-9_]*[a-z0-9]`)

// TestMetricsExist: every metric docs/metrics.md names is defined in the code, as the full name
// or as the name after the "ferry" namespace, in a Go string literal outside tests.
func TestMetricsExist(t *testing.T) {
	root := repoRoot(t)
	page, err := os.ReadFile(filepath.Join(root, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	names := metricName.FindAllString(string(page), -1)
	if len(names) == 0 {
		t.Fatal("docs/metrics.md names no ferry_ metric")
	}
	src := goSource(t, root, "internal", "cmd")
	for _, n := range names {
		if !strings.Contains(src, `"`+n+`"`) && !strings.Contains(src, `"`+strings.TrimPrefix(n, "ferry_")+`"`) {
			t.Errorf("docs/metrics.md names %s, which no Go file under internal/ or cmd/ defines", n)
		}
	}
}

// goSource concatenates the non-test Go files under dirs of root.
func goSource(t *testing.T, root string, dirs ...string) string {
	t.Helper()
	var b strings.Builder
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(root, d), func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			data, err := os.ReadFile(path)
			b.Write(data)
			return err
		})
		if err != nil {
			t.Fatalf("reading %s: %v", d, err)
		}
	}
	return b.String()
}
