package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ferryml/ferry/internal/llm"
)

// maxInputs is how many texts one embeddings request may carry (OpenAI's limit).
const maxInputs = 2048

// messageBody is one chat message as a client sends it.
type messageBody struct {
	Role         string          `json:"role"`
	Content      json.RawMessage `json:"content"`
	Name         *string         `json:"name"`
	ToolCalls    json.RawMessage `json:"tool_calls"`
	ToolCallID   *string         `json:"tool_call_id"`
	FunctionCall json.RawMessage `json:"function_call"`
}

// contentPart is one element of a message's content given as an array.
type contentPart struct {
	Type string  `json:"type"`
	Text *string `json:"text"`
}

// decodeMessages decodes the chat's messages, naming the element at fault in each error
// (messages[2].content[1].type).
func decodeMessages(raw []json.RawMessage) ([]llm.Message, error) {
	if len(raw) == 0 {
		return nil, llm.BadRequest("messages", "messages must be a non-empty array")
	}
	out := make([]llm.Message, len(raw))
	for i, r := range raw {
		param := fmt.Sprintf("messages[%d]", i)
		var m messageBody
		if err := unmarshalElement(param, r, &m, "an object with a role and content"); err != nil {
			return nil, err
		}
		msg, err := decodeMessage(param, &m)
		if err != nil {
			return nil, err
		}
		out[i] = msg
	}
	return out, nil
}

// unmarshalElement decodes the array element param into v: a field of the wrong type
// is named in full (messages[1].role), an element that is no object is described as
// what it should be.
func unmarshalElement(param string, raw json.RawMessage, v any, want string) error {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return typeError(&json.UnmarshalTypeError{Value: te.Value, Type: te.Type, Field: param + "." + te.Field})
	}
	return llm.BadRequest(param, "%s must be %s", param, want)
}

// decodeMessage checks one message's role and flattens its content to text. Tool
// turns (an assistant's tool_calls, a "tool" answer with its tool_call_id) pass on to
// the backend, which refuses them when it has no tools.
func decodeMessage(param string, m *messageBody) (llm.Message, error) {
	role := m.Role
	switch role {
	case "system", "user", "assistant", "tool":
	case "developer": // OpenAI's newer name for the system turn; chat templates know "system"
		role = "system"
	case "function":
		return llm.Message{}, llm.BadRequest(param+".role", "function messages are not supported by this server; use tools")
	case "":
		return llm.Message{}, llm.BadRequest(param+".role", "%s.role is required", param)
	default:
		return llm.Message{}, llm.BadRequest(param+".role", "%s.role %q is not one of system, developer, user, assistant, tool", param, role)
	}
	if present(m.FunctionCall) {
		return llm.Message{}, llm.BadRequest(param+".function_call", "function_call is not supported by this server; use tool_calls")
	}
	msg := llm.Message{Role: role}
	if present(m.ToolCalls) {
		if role != "assistant" || m.ToolCalls[0] != '[' {
			return llm.Message{}, llm.BadRequest(param+".tool_calls", "%s.tool_calls must be an array, on an assistant message", param)
		}
		msg.ToolCalls = m.ToolCalls
	}
	if role == "tool" {
		if m.ToolCallID == nil || *m.ToolCallID == "" {
			return llm.Message{}, llm.BadRequest(param+".tool_call_id", "%s.tool_call_id is required on a tool message", param)
		}
		msg.ToolCallID = *m.ToolCallID
	}
	var err error
	if msg.Content, err = decodeContent(param+".content", m.Content, role == "assistant"); err != nil {
		return llm.Message{}, err
	}
	if m.Name != nil {
		msg.Name = *m.Name
	}
	return msg, nil
}

// decodeContent accepts a string or an array of text parts, joined with newlines as
// vLLM joins them. Only an assistant turn may leave content out (null).
func decodeContent(param string, raw json.RawMessage, mayBeEmpty bool) (string, error) {
	if !present(raw) {
		if mayBeEmpty {
			return "", nil
		}
		return "", llm.BadRequest(param, "%s is required", param)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", llm.BadRequest(param, "%s must be a string or an array of content parts", param)
	}
	texts := make([]string, 0, len(parts))
	for j, r := range parts {
		p := fmt.Sprintf("%s[%d]", param, j)
		var part contentPart
		if err := unmarshalElement(p, r, &part, `an object {"type": "text", "text": ...}`); err != nil {
			return "", err
		}
		if part.Type != "text" {
			return "", llm.BadRequest(p+".type", "%s.type %q is not supported by this server; only \"text\" parts are", p, part.Type)
		}
		if part.Text == nil {
			return "", llm.BadRequest(p+".text", "%s.text is required", p)
		}
		texts = append(texts, *part.Text)
	}
	return strings.Join(texts, "\n"), nil
}

// decodeTexts decodes what a prompt or an embeddings input may be: a string, an array
// of strings, an array of token ids, or an array of arrays of token ids. It returns
// either texts or token lists, never both, and no empty one.
func decodeTexts(param string, raw json.RawMessage) ([]string, [][]int, error) {
	if !present(raw) {
		return nil, nil, llm.BadRequest(param, "%s is required", param)
	}
	texts, lists, ok := textsOrTokens(raw)
	if !ok {
		return nil, nil, llm.BadRequest(param, "%s must be a string, an array of strings, an array of token ids or an array of arrays of token ids", param)
	}
	n := len(texts) + len(lists)
	if n == 0 {
		return nil, nil, llm.BadRequest(param, "%s must not be empty", param)
	}
	if n > maxInputs {
		return nil, nil, llm.BadRequest(param, "%s takes at most %d inputs, got %d", param, maxInputs, n)
	}
	for i, t := range texts {
		if t == "" {
			return nil, nil, llm.BadRequest(param, "%s[%d] is an empty string", param, i)
		}
	}
	for i, l := range lists {
		if len(l) == 0 {
			return nil, nil, llm.BadRequest(param, "%s[%d] is an empty list of token ids", param, i)
		}
		if _, err := tokenIDs(fmt.Sprintf("%s[%d]", param, i), l); err != nil {
			return nil, nil, llm.BadRequest(param, "%s", err.Error())
		}
	}
	return texts, lists, nil
}

// textsOrTokens tries each form a prompt or input may take. Each attempt decodes into
// a fresh value: encoding/json fills what it can before it reports a type error.
func textsOrTokens(raw json.RawMessage) (texts []string, lists [][]int, ok bool) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil, true
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many, nil, true
	}
	var ids []int
	if json.Unmarshal(raw, &ids) == nil {
		return nil, [][]int{ids}, true
	}
	var idLists [][]int
	if json.Unmarshal(raw, &idLists) == nil {
		return nil, idLists, true
	}
	return nil, nil, false
}

// decodePrompt decodes a completion's prompt: one text or one list of token ids.
// Batched prompts (several in one request) are refused: choices of several prompts
// would share one index space, which clients rarely expect.
func decodePrompt(raw json.RawMessage) (string, []int, error) {
	texts, lists, err := decodeTexts("prompt", raw)
	if err != nil {
		return "", nil, err
	}
	if n := len(texts) + len(lists); n > 1 {
		return "", nil, llm.BadRequest("prompt", "prompt holds %d prompts; this server takes one prompt per request", n)
	}
	if len(texts) == 1 {
		return texts[0], nil, nil
	}
	return "", lists[0], nil
}
