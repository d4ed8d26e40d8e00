package native

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFolder(t *testing.T, root, name, config string, versions ...string) {
	t.Helper()
	for _, v := range versions {
		if err := os.MkdirAll(filepath.Join(root, name, v), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name, v, "model.onnx"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, name, "config.pbtxt"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDiscover: only backend "llm" folders are the lane's, served from their newest
// version, with the config's parameters and the documented defaults; every broken
// folder is reported at once, naming the parameter.
func TestDiscover(t *testing.T) {
	root := t.TempDir()
	writeFolder(t, root, "chat", `name: "chat"
backend: "llm"
parameters { key: "tokenizer" value { string_value: "cl100k_base" } }
parameters { key: "context_length" value { string_value: "2048" } }
parameters { key: "max_num_seqs" value { string_value: "4" } }
parameters { key: "enable_prefix_caching" value { string_value: "false" } }
parameters { key: "session.intra_op.allow_spinning" value { string_value: "0" } }
`, "1", "3", "2")
	writeFolder(t, root, "mlp", `name: "mlp"
platform: "onnxruntime_onnx"
`, "1")
	writeFolder(t, root, "broken", `backend: "llm"
parameters { key: "max_num_seqs" value { string_value: "many" } }
parameters { key: "session.intra_op.allow_spinning" value { string_value: "yes please" } }
`, "1")
	writeFolder(t, root, "noversion", `backend: "llm"
parameters { key: "context_length" value { string_value: "64" } }
`)
	specs, err := Discover(root)
	for _, want := range []string{`"broken"`, `parameters["context_length"]`, `parameters["max_num_seqs"]`, `"many"`, `parameters["session.intra_op.allow_spinning"]`, `"noversion"`, "no numeric version folder"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Discover error %v: want it to name %s", err, want)
		}
	}
	if len(specs) != 1 {
		t.Fatalf("specs %+v: want chat alone", specs)
	}
	s := specs[0]
	if s.Name != "chat" || s.Dir != filepath.Join(root, "chat", "3") || s.Tokenizer != "cl100k_base" || s.ChatTemplate != "plain" ||
		s.ContextLength != 2048 || s.MaxSeqs != 4 || s.PrefixCache || s.BlockSize != 0 ||
		!maps.Equal(s.SessionConfig, map[string]string{"session.intra_op.allow_spinning": "0"}) {
		t.Errorf("chat spec %+v", s)
	}
}
