package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var (
	helpFlag  = regexp.MustCompile(`(?m)^\s+(?:-[A-Za-z], )?--([a-z0-9][a-z0-9-]*)`)
	tableFlag = regexp.MustCompile("`--([a-z0-9][a-z0-9-]*)")
)

// TestServeFlagsDocumented: the flag table in docs/serve.md names only flags `ferry serve` (or
// the root command) has, and every flag of `ferry serve --help` is named somewhere on the page.
// It builds cmd/ferry (a few seconds once the packages are compiled); -short skips it.
func TestServeFlagsDocumented(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/ferry; skipped with -short")
	}
	root := repoRoot(t)
	bin := buildFerry(t, root)
	serve := flagsOf(t, bin, "serve", "--help")
	known := flagsOf(t, bin, "--help")
	for f := range serve {
		known[f] = true
	}

	page, err := os.ReadFile(filepath.Join(root, "docs", "serve.md"))
	if err != nil {
		t.Fatal(err)
	}
	table := flagTable(string(page))
	if len(table) == 0 {
		t.Fatal("docs/serve.md: no flag table under \"## Flags\"")
	}
	for _, f := range table {
		if !known[f] {
			t.Errorf("docs/serve.md's flag table lists --%s, which `ferry serve --help` does not have", f)
		}
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile(`--([a-z0-9][a-z0-9-]*)`).FindAllStringSubmatch(string(page), -1) {
		named[m[1]] = true
	}
	for _, f := range sortedKeys(serve) {
		if f != "help" && !named[f] {
			t.Errorf("`ferry serve --help` has --%s, which docs/serve.md never names", f)
		}
	}
}

// buildFerry builds cmd/ferry into a temporary folder. Help needs no ONNX Runtime library.
func buildFerry(t *testing.T, root string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build cmd/ferry")
	}
	bin := filepath.Join(t.TempDir(), "ferry")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race") // reuse what `go test -race` compiled
	}
	cmd := exec.Command(goTool, append(args, "./cmd/ferry")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ferry: %v\n%s", err, out)
	}
	return bin
}

// flagsOf runs the binary with args and returns the long flags its help lists.
func flagsOf(t *testing.T, bin string, args ...string) map[string]bool {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	flags := map[string]bool{}
	for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if len(flags) == 0 {
		t.Fatalf("ferry %s lists no flags:\n%s", strings.Join(args, " "), out)
	}
	return flags
}

// flagTable returns the flags named in the first column of the table under "## Flags".
func flagTable(page string) []string {
	_, section, ok := strings.Cut(page, "\n## Flags\n")
	if !ok {
		return nil
	}
	if end := strings.Index(section, "\n#"); end >= 0 {
		section = section[:end]
	}
	var flags []string
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(line, "|") {
			continue
		}
		for _, m := range tableFlag.FindAllStringSubmatch(cells[1], -1) {
			flags = append(flags, m[1])
		}
	}
	return flags
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
