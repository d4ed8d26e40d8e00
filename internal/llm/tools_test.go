package llm

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestUnsupportedNamesTheField(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	for _, tc := range []struct {
		name  string
		req   Request
		param string // "" for none
	}{
		{"plain", Request{Messages: []Message{{Role: "user", Content: "hi"}}}, ""},
		{"text format", Request{ResponseFormat: raw(`{"type":"text"}`)}, ""},
		{"tools", Request{Tools: raw(`[{"type":"function"}]`)}, "tools"},
		{"tool_choice", Request{ToolChoice: raw(`"auto"`)}, "tool_choice"},
		{"json format", Request{ResponseFormat: raw(`{"type":"json_object"}`)}, "response_format"},
		{"bad format", Request{ResponseFormat: raw(`{"type":1}`)}, "response_format"},
		{"assistant calls", Request{Messages: []Message{{Role: "user"}, {Role: "assistant", ToolCalls: raw(`[]`)}}}, "messages[1]"},
		{"tool turn", Request{Messages: []Message{{Role: "tool", ToolCallID: "c", Content: "x"}}}, "messages[0]"},
	} {
		err := tc.req.Unsupported()
		var e *Error
		switch {
		case tc.param == "" && err != nil:
			t.Errorf("%s: %v, want none", tc.name, err)
		case tc.param != "" && (!errors.As(err, &e) || e.Param != tc.param || e.Status != 400):
			t.Errorf("%s: %v, want a 400 naming %s", tc.name, err, tc.param)
		}
	}
}

func TestMergeToolCalls(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pieces []string
		want   string
	}{
		{"none", nil, ``},
		{"whole", []string{`[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"b","type":"function","function":{"name":"g","arguments":"[]"}}]`},
			`[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"b","type":"function","function":{"name":"g","arguments":"[]"}}]`},
		{"streamed, two calls interleaved", []string{
			`[{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":""}}]`,
			`[{"index":1,"id":"b","type":"function","function":{"name":"g","arguments":"{\"x"}}]`,
			`[{"index":0,"function":{"arguments":"{\"city\":"}}]`,
			`[{"index":1,"function":{"arguments":"\":1}"}},{"index":0,"function":{"arguments":"\"Paris\"}"}}]`},
			`[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"city\":\"Paris\"}"}},{"id":"b","type":"function","function":{"name":"g","arguments":"{\"x\":1}"}}]`},
	} {
		pieces := make([]json.RawMessage, len(tc.pieces))
		for i, p := range tc.pieces {
			pieces[i] = json.RawMessage(p)
		}
		got, err := MergeToolCalls(pieces)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %s, %v; want %s", tc.name, got, err, tc.want)
		}
	}
	if _, err := MergeToolCalls([]json.RawMessage{json.RawMessage(`{"not":"an array"}`)}); err == nil {
		t.Error("a piece that is no array merged without an error")
	}
}
