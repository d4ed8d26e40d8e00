package openaitest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Version is the pinned `openai` npm client.
const Version = "5.23.2"

// Install installs the openai npm client once into the user's cache directory and
// returns the npm prefix holding it; later runs reuse it. It skips the test when node
// or npm is not installed.
func Install(t testing.TB) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed; this test drives the server with the openai npm client on node", tool)
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	prefix := filepath.Join(cache, "ferry-test-npm", "openai-"+Version)
	if _, err := os.Stat(filepath.Join(prefix, "node_modules", "openai", "package.json")); err == nil {
		return prefix
	}
	// Install beside the final place, then rename: a concurrent run never sees a
	// half-written module.
	if err := os.MkdirAll(filepath.Dir(prefix), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(prefix), "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--prefix", tmp, "openai@"+Version).CombinedOutput()
	if err != nil {
		t.Fatalf("npm install openai@%s: %v\n%s", Version, err, out)
	}
	if err := os.Rename(tmp, prefix); err != nil {
		if _, statErr := os.Stat(filepath.Join(prefix, "node_modules", "openai")); statErr != nil {
			t.Fatalf("placing the npm install: %v", err)
		}
	}
	return prefix
}

// Run runs openai_client.mjs with the client installed at prefix against baseURL (the
// /v1 root) with the given model names (chat model, embedding model, and optionally a
// model or key that answers 429), and returns the last line it printed: its results
// as JSON.
func Run(t testing.TB, prefix, baseURL string, args ...string) []byte {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(self), "openai_client.mjs")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script, baseURL}, args...)...)
	cmd.Env = append(os.Environ(), "OPENAI_NODE_PREFIX="+prefix)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node openai_client.mjs: %v\n%s", err, stderr.Bytes())
	}
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	return lines[len(lines)-1]
}
