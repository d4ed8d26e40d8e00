package chat

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ferryml/ferry/internal/llm"
)

// Template renders a conversation into a prompt. Implementations are immutable and
// safe for concurrent use.
type Template interface {
	// Render returns the prompt for msgs; with addGenerationPrompt it ends where
	// the assistant's answer begins. An empty list or an unknown role is an
	// *llm.Error (400) naming the message at fault.
	Render(msgs []llm.Message, addGenerationPrompt bool) (string, error)
	// Stop is the stop strings the format implies (the end-of-turn marker), to be
	// added to the request's own.
	Stop() []string
}

// Roles are the roles a message may have.
var Roles = []string{"system", "user", "assistant", "tool"}

// Names lists the built-in templates Lookup knows.
var Names = []string{"plain", "chatml", "llama3", "mistral"}

// Lookup returns the built-in template name.
func Lookup(name string) (Template, error) {
	switch name {
	case "plain":
		return builtin{render: renderPlain, stop: []string{"\n\nUser:", "\nUser:"}}, nil
	case "chatml":
		return builtin{render: renderChatML, stop: []string{"<|im_end|>"}}, nil
	case "llama3":
		return builtin{render: renderLlama3, stop: []string{"<|eot_id|>", "<|end_of_text|>"}}, nil
	case "mistral":
		return builtin{render: renderMistral, stop: []string{"</s>"}}, nil
	}
	return nil, fmt.Errorf("chat: unknown template %q (known: %s, or a template file)", name, strings.Join(Names, ", "))
}

// check refuses an empty conversation and unknown roles.
func check(msgs []llm.Message) error {
	if len(msgs) == 0 {
		return llm.BadRequest("messages", "messages: the list is empty; at least one message is required")
	}
	for i, m := range msgs {
		if !slices.Contains(Roles, m.Role) {
			return llm.BadRequest("messages", "messages[%d].role: %q is not one of %s", i, m.Role, strings.Join(Roles, ", "))
		}
	}
	return nil
}

// builtin is a format written in Go: each is a few lines, and Go code states the
// formats' irregular rules (Mistral's alternation) more plainly than a template.
type builtin struct {
	render func(msgs []llm.Message, gen bool) (string, error)
	stop   []string
}

func (b builtin) Render(msgs []llm.Message, addGenerationPrompt bool) (string, error) {
	if err := check(msgs); err != nil {
		return "", err
	}
	return b.render(msgs, addGenerationPrompt)
}

func (b builtin) Stop() []string { return slices.Clone(b.stop) }

// renderPlain is "System: ...\n\nUser: ...\n\nAssistant:", a format a base model
// continues sensibly without having been tuned on any.
func renderPlain(msgs []llm.Message, gen bool) (string, error) {
	parts := make([]string, 0, len(msgs)+1)
	for _, m := range msgs {
		parts = append(parts, strings.ToUpper(m.Role[:1])+m.Role[1:]+": "+m.Content)
	}
	if gen {
		parts = append(parts, "Assistant:")
	}
	return strings.Join(parts, "\n\n"), nil
}

// renderChatML is OpenAI's ChatML, as Qwen and many fine-tunes use it.
func renderChatML(msgs []llm.Message, gen bool) (string, error) {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
	}
	if gen {
		b.WriteString("<|im_start|>assistant\n")
	}
	return b.String(), nil
}

// renderLlama3 is Meta's Llama 3 format: contents trimmed, a tool's answer under
// the ipython header as Llama 3.1 expects.
func renderLlama3(msgs []llm.Message, gen bool) (string, error) {
	var b strings.Builder
	b.WriteString("<|begin_of_text|>")
	for _, m := range msgs {
		role := m.Role
		if role == "tool" {
			role = "ipython"
		}
		b.WriteString("<|start_header_id|>" + role + "<|end_header_id|>\n\n" + strings.TrimSpace(m.Content) + "<|eot_id|>")
	}
	if gen {
		b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	}
	return b.String(), nil
}

// renderMistral is Mistral Instruct's [INST] format. It has no system role: a
// leading system message is put before the first user message, as Mistral's own
// template does. User and assistant must alternate, starting with user. The prompt
// always ends ready for the answer (after [/INST]) unless the last turn is the
// assistant's, so addGenerationPrompt changes nothing.
func renderMistral(msgs []llm.Message, _ bool) (string, error) {
	system := ""
	if msgs[0].Role == "system" {
		system, msgs = msgs[0].Content, msgs[1:]
	}
	var b strings.Builder
	b.WriteString("<s>")
	for i, m := range msgs {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if m.Role != want {
			return "", llm.BadRequest("messages", "messages: the mistral template needs user and assistant turns to alternate, starting with user (after an optional system message); got %q where %q belongs", m.Role, want)
		}
		switch {
		case want == "assistant":
			b.WriteString(m.Content + "</s>")
		case i == 0 && system != "":
			b.WriteString("[INST] " + system + "\n\n" + m.Content + " [/INST]")
		default:
			b.WriteString("[INST] " + m.Content + " [/INST]")
		}
	}
	if len(msgs) == 0 {
		return "", llm.BadRequest("messages", "messages: the mistral template needs a user message")
	}
	return b.String(), nil
}
