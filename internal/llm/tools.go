package llm

import (
	"encoding/json"
	"fmt"
)

// Unsupported is the 400 a backend without tools or structured output answers a
// request that asks for them, naming the first field at fault; nil when the request
// asks for neither. response_format {"type": "text"} is plain text, which every backend
// gives.
func (r *Request) Unsupported() error {
	for _, f := range []struct {
		name string
		v    json.RawMessage
	}{{"tools", r.Tools}, {"tool_choice", r.ToolChoice}} {
		if len(f.v) > 0 {
			return BadRequest(f.name, "%s is not supported by model %q", f.name, r.Model)
		}
	}
	if len(r.ResponseFormat) > 0 {
		var rf struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(r.ResponseFormat, &rf) != nil || rf.Type != "text" {
			return BadRequest("response_format", "response_format %s is not supported by model %q; only {\"type\": \"text\"}", r.ResponseFormat, r.Model)
		}
	}
	for i, m := range r.Messages {
		if len(m.ToolCalls) > 0 || m.ToolCallID != "" || m.Role == "tool" {
			return BadRequest(fmt.Sprintf("messages[%d]", i), "messages[%d] is a tool call or its result, which model %q does not take (no tools)", i, r.Model)
		}
	}
	return nil
}

// toolCall is one element of OpenAI's tool_calls, whole or a streamed piece.
type toolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// MergeToolCalls puts a choice's tool_calls together from what its Deltas carried, as
// OpenAI's SDKs assemble a stream: pieces with the same index are one call (id, type
// and name from whichever piece has them, arguments concatenated); an element without
// an index (a whole answer) is a call of its own. It returns nil for no calls.
func MergeToolCalls(pieces []json.RawMessage) (json.RawMessage, error) {
	var calls []toolCall
	at := map[int]int{} // index -> position in calls
	for _, p := range pieces {
		var elems []toolCall
		if err := json.Unmarshal(p, &elems); err != nil {
			return nil, fmt.Errorf("tool_calls %s: %w", p, err)
		}
		for _, e := range elems {
			if e.Index == nil {
				calls = append(calls, e)
				continue
			}
			i, ok := at[*e.Index]
			if !ok {
				at[*e.Index] = len(calls)
				calls = append(calls, e)
				continue
			}
			c := &calls[i]
			c.ID, c.Type, c.Function.Name = first(c.ID, e.ID), first(c.Type, e.Type), first(c.Function.Name, e.Function.Name)
			c.Function.Arguments += e.Function.Arguments
		}
	}
	if len(calls) == 0 {
		return nil, nil
	}
	for i := range calls {
		calls[i].Index = nil // a whole answer's calls carry none
	}
	return json.Marshal(calls)
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
