package chat

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/goldentest"
	"github.com/ferryml/ferry/internal/llm"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var conversation = []llm.Message{
	{Role: "system", Content: "You are terse."},
	{Role: "user", Content: "What is 2+2?"},
	{Role: "assistant", Content: " 4 "},
	{Role: "user", Content: "And 3+3?"},
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	goldentest.Compare(t, filepath.Join("testdata", name+".golden"), []byte(got), *update)
}

func TestBuiltinGolden(t *testing.T) {
	for _, name := range Names {
		tmpl, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tmpl.Render(conversation, true)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		golden(t, name, got)
		noGen, err := tmpl.Render(conversation[:3], false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		golden(t, name+"-no-generation-prompt", noGen)
	}
}

func TestStop(t *testing.T) {
	for name, want := range map[string][]string{
		"plain":   {"\n\nUser:", "\nUser:"},
		"chatml":  {"<|im_end|>"},
		"llama3":  {"<|eot_id|>", "<|end_of_text|>"},
		"mistral": {"</s>"},
	} {
		tmpl, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := tmpl.Stop(); !slices.Equal(got, want) {
			t.Errorf("%s: Stop() = %q, want %q", name, got, want)
		}
	}
}

func TestParsedMatchesBuiltin(t *testing.T) {
	text, err := os.ReadFile("testdata/chatml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(string(text))
	if err != nil {
		t.Fatal(err)
	}
	builtin, _ := Lookup("chatml")
	for _, gen := range []bool{true, false} {
		got, err := parsed.Render(conversation, gen)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := builtin.Render(conversation, gen)
		if got != want {
			t.Errorf("gen=%v: parsed chatml.tmpl = %q, built-in chatml = %q", gen, got, want)
		}
	}
	if parsed.Stop() != nil {
		t.Errorf("a parsed template's Stop = %q, want none", parsed.Stop())
	}
}

func TestErrors(t *testing.T) {
	plain, _ := Lookup("plain")
	mistral, _ := Lookup("mistral")
	parsed, err := Parse(`{{range .Messages}}{{title .Role}}: {{trim .Content}}{{end}}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		tmpl    Template
		msgs    []llm.Message
		wantErr string
	}{
		{"an empty list", plain, nil, "messages: the list is empty"},
		{"an unknown role", plain, []llm.Message{{Role: "user"}, {Role: "bot"}}, `messages[1].role: "bot" is not one of system, user, assistant, tool`},
		{"an unknown role in a parsed template", parsed, []llm.Message{{Role: "Robot"}}, `messages[0].role: "Robot"`},
		{"an empty list in a parsed template", parsed, []llm.Message{}, "messages: the list is empty"},
		{"mistral without alternation", mistral, []llm.Message{{Role: "user"}, {Role: "user"}}, `got "user" where "assistant" belongs`},
		{"mistral starting with the assistant", mistral, []llm.Message{{Role: "assistant"}}, `got "assistant" where "user" belongs`},
		{"mistral with a tool", mistral, []llm.Message{{Role: "user"}, {Role: "tool"}}, `got "tool" where "assistant" belongs`},
		{"mistral with only a system message", mistral, []llm.Message{{Role: "system"}}, "needs a user message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.tmpl.Render(tc.msgs, true)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Render(%v) err = %v, want %q", tc.msgs, err, tc.wantErr)
			}
			if e := llm.AsError(err); e == nil || e.Status != 400 || e.Param != "messages" {
				t.Errorf("err = %#v, want a 400 *llm.Error about messages", err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, wantErr string }{
		{"jinja", `{% for m in messages %}{{ m.content }}{% endfor %}`, "Jinja template ({% ... %}), which is not supported"},
		{"a syntax error", `{{range .Messages}}`, "chat: template: chat:1: unexpected EOF"},
		{"an unknown field", `{{.Prompt}}`, "can't evaluate field Prompt"},
		{"an unknown function", `{{upper .AddGenerationPrompt}}`, `function "upper" not defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse(%q) err = %v, want %q", tc.text, err, tc.wantErr)
			}
		})
	}
	if _, err := Lookup("vicuna"); err == nil || !strings.Contains(err.Error(), `unknown template "vicuna" (known: plain, chatml, llama3, mistral`) {
		t.Errorf("Lookup(vicuna) err = %v", err)
	}
}
