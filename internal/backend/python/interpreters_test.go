package python

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInterpreterParameterMustBeAllowed: a config's python_interpreter names any binary;
// a hostile config (a repository load request's) would have the server run it. Only an
// allowed interpreter is started; the refusal names the parameter and the flag.
func TestInterpreterParameterMustBeAllowed(t *testing.T) {
	// A "binary" that proves it ran by writing a file.
	dir := t.TempDir()
	proof := filepath.Join(dir, "ran")
	evil := filepath.Join(dir, "evil")
	if err := os.WriteFile(evil, []byte("#!/bin/sh\ntouch "+proof+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(addConfig, "max_batch_size: 8", `max_batch_size: 8
parameters { key: "python_interpreter" value: { string_value: "`+evil+`" } }`, 1)
	m := writeModel(t, "add", strings.ReplaceAll(cfg, "%[1]s", "FP32"), addModel)
	_, err := m.open(t, Options{})
	if err == nil || !strings.Contains(err.Error(), "not allowed") || !strings.Contains(err.Error(), "--python-interpreters") {
		t.Errorf("open with python_interpreter %s: err = %v, want a refusal naming --python-interpreters", evil, err)
	}
	if _, serr := os.Stat(proof); serr == nil {
		t.Fatalf("the interpreter the config named was run")
	}
	// Allowed explicitly, it is started (and fails, not being python: that is fine).
	_, _ = m.open(t, Options{Interpreters: []string{evil}})
	if _, serr := os.Stat(proof); serr != nil {
		t.Errorf("an allowed interpreter was not started: %v", serr)
	}
}

func TestAllowedInterpretersResolve(t *testing.T) {
	f := NewFactory(Options{Interpreter: "python3"})
	got, err := f.allowed("python3")
	if err != nil {
		t.Fatalf("the default interpreter python3 is refused: %v", err)
	}
	if !filepath.IsAbs(got) {
		t.Errorf("allowed(python3) = %q, want an absolute path", got)
	}
	if _, err := f.allowed("/bin/sh"); err == nil {
		t.Errorf("/bin/sh is allowed by default")
	}
	if _, err := f.allowed("no-such-interpreter-xyz"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("a missing interpreter: err = %v, want not found", err)
	}
}
