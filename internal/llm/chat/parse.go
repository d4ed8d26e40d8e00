package chat

import (
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/ferryml/ferry/internal/llm"
)

// data is what a parsed template sees.
type data struct {
	Messages            []llm.Message
	AddGenerationPrompt bool
}

// funcs are the helpers a template may call beyond text/template's own.
var funcs = template.FuncMap{
	"trim": strings.TrimSpace,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
}

// parsed is a model's own template.
type parsed struct{ t *template.Template }

// Parse reads a model's chat template: a Go text/template over .Messages (each with
// .Role, .Content, .Name) and .AddGenerationPrompt, with the helpers trim and
// title. ChatML, for example:
//
//	{{range .Messages}}<|im_start|>{{.Role}}
//	{{.Content}}<|im_end|>
//	{{end}}{{if .AddGenerationPrompt}}<|im_start|>assistant
//	{{end}}
//
// Jinja ({% ... %}) is refused with an error that says so. The template is tried on
// a sample conversation, so a misspelt field fails here rather than on a request.
// A parsed template implies no stop strings.
func Parse(text string) (Template, error) {
	if strings.Contains(text, "{%") {
		return nil, errors.New("chat: this looks like a Jinja template ({% ... %}), which is not supported; write it as a Go text/template over .Messages and .AddGenerationPrompt")
	}
	t, err := template.New("chat").Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	p := parsed{t: t}
	sample := []llm.Message{{Role: "system", Content: "s"}, {Role: "user", Content: "u"}, {Role: "assistant", Content: "a"}}
	if _, err := p.Render(sample, true); err != nil {
		return nil, err
	}
	return p, nil
}

func (p parsed) Render(msgs []llm.Message, addGenerationPrompt bool) (string, error) {
	if err := check(msgs); err != nil {
		return "", err
	}
	var b strings.Builder
	if err := p.t.Execute(&b, data{Messages: msgs, AddGenerationPrompt: addGenerationPrompt}); err != nil {
		return "", fmt.Errorf("chat: template: %w", err)
	}
	return b.String(), nil
}

func (p parsed) Stop() []string { return nil }
