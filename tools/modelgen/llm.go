package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// llmConfig is the config.pbtxt of a GPT model served by the LLM lane: r50k
// is GPT-2's tokenizer, whose 50257 tokens the generated models take, and
// "plain" chat template joins messages as text (a random-weight model knows
// no chat format).
func llmConfig(name string) string {
	return fmt.Sprintf(`name: %q
backend: "llm"
parameters { key: "tokenizer" value { string_value: "r50k_base" } }
parameters { key: "chat_template" value { string_value: "plain" } }
parameters { key: "context_length" value { string_value: "1024" } }
`, name)
}

// tinyGPTFiles are the tinygpt example's repository files: onnxgen.TinyGPT,
// about 55 MB, small enough to load in well under a second.
func tinyGPTFiles() map[string][]byte {
	return map[string][]byte{
		"tinygpt/config.pbtxt": []byte(llmConfig("tinygpt")),
		"tinygpt/1/model.onnx": onnxgen.GPT(onnxgen.TinyGPT()),
	}
}

// writeGPT writes dir/name/config.pbtxt and dir/name/1/model.onnx for cfg,
// streaming the model (GPT-2 small's is about 650 MB) and keeping files that
// already hold the same bytes.
func writeGPT(dir, name string, cfg onnxgen.GPTConfig, log io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	changed := 0
	root := filepath.Join(dir, name)
	files := []struct {
		path string
		gen  func(io.Writer) error
	}{
		{filepath.Join(root, "config.pbtxt"), writeBytes([]byte(llmConfig(name)))},
		{filepath.Join(root, "1", "model.onnx"), func(w io.Writer) error { return onnxgen.WriteGPT(w, cfg) }},
	}
	for _, f := range files {
		wrote, err := writeStreamIfChanged(f.path, f.gen)
		if err != nil {
			return err
		}
		if wrote {
			changed++
			fmt.Fprintf(log, "wrote %s\n", f.path)
		}
	}
	fmt.Fprintf(log, "model %s: %d file(s) changed\n", root, changed)
	return nil
}

func writeBytes(b []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}
}
