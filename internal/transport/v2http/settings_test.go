package v2http

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/settings"
)

// fakeCore has no settings of its own; settingsCore adds real ones.
func (f *fakeCore) TraceSettings(context.Context, string, settings.TraceUpdate) (settings.TraceSetting, error) {
	return settings.TraceSetting{}, core.Unavailablef("fakeCore has no trace settings (use settingsCore)")
}

func (f *fakeCore) LogSettings(context.Context, settings.LogUpdate) (settings.LogSetting, error) {
	return settings.LogSetting{}, core.Unavailablef("fakeCore has no log settings (use settingsCore)")
}

// settingsCore is fakeCore with real trace and log settings, checked as core.Server
// checks them (an unknown model is not found; a refused update is invalid).
type settingsCore struct {
	*fakeCore
	trace *settings.Trace
	logs  *settings.Log
}

func (c settingsCore) TraceSettings(ctx context.Context, model string, u settings.TraceUpdate) (settings.TraceSetting, error) {
	if model != "" {
		if _, err := c.model(model, ""); err != nil {
			return settings.TraceSetting{}, err
		}
	}
	if err := c.trace.Update(model, u); err != nil {
		return settings.TraceSetting{}, core.Invalidf("%v", err)
	}
	return c.trace.Setting(model), nil
}

func (c settingsCore) LogSettings(_ context.Context, u settings.LogUpdate) (settings.LogSetting, error) {
	if err := c.logs.Update(u); err != nil {
		return settings.LogSetting{}, core.Invalidf("%v", err)
	}
	return c.logs.Setting(), nil
}

func newSettingsServer(t *testing.T) (*testServer, settingsCore) {
	t.Helper()
	sc := settingsCore{fakeCore: newFakeCore(), trace: settings.NewTrace(settings.DefaultTrace()), logs: settings.NewLog(new(slog.LevelVar))}
	srv := httptest.NewServer(serveRoot(New(sc, Options{}), nil))
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, core: sc.fakeCore}, sc
}

// jsonOf decodes a response body for comparison.
func jsonOf(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return v
}

func TestTraceSettingEndpoints(t *testing.T) {
	ts, sc := newSettingsServer(t)
	model := "echo" // one of fakeCore's models
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     map[string]any // the whole answer, or nil for an error
		wantErr                  string
	}{
		{"global defaults", "GET", "/v2/trace/setting", "", 200, map[string]any{"trace_level": []any{"OFF"}, "trace_rate": "1000",
			"trace_count": "-1", "log_frequency": "0", "trace_file": "", "trace_mode": "opentelemetry"}, ""},
		{"model level set", "POST", "/v2/models/" + model + "/trace/setting", `{"trace_level":["TIMESTAMPS"],"trace_rate":"1","trace_count":"2"}`, 200,
			map[string]any{"trace_level": []any{"TIMESTAMPS"}, "trace_rate": "1", "trace_count": "2", "log_frequency": "0", "trace_file": "", "trace_mode": "opentelemetry"}, ""},
		{"global unchanged", "GET", "/v2/trace/setting", "", 200, map[string]any{"trace_level": []any{"OFF"}, "trace_rate": "1000",
			"trace_count": "-1", "log_frequency": "0", "trace_file": "", "trace_mode": "opentelemetry"}, ""},
		{"null clears the model's level", "POST", "/v2/models/" + model + "/trace/setting", `{"trace_level":null}`, 200,
			map[string]any{"trace_level": []any{"OFF"}, "trace_rate": "1", "trace_count": "2", "log_frequency": "0", "trace_file": "", "trace_mode": "opentelemetry"}, ""},
		{"unknown model", "GET", "/v2/models/nope/trace/setting", "", 404, nil, "Request for unknown model"},
		{"number instead of string", "POST", "/v2/trace/setting", `{"trace_rate":1000}`, 400, nil,
			`trace setting \"trace_rate\": want a string`},
		{"unknown level", "POST", "/v2/trace/setting", `{"trace_level":["LOUD"]}`, 400, nil, `trace_level: unknown level \"LOUD\"`},
		{"unknown setting", "POST", "/v2/trace/setting", `{"trace_speed":"1"}`, 400, nil, `unknown trace setting \"trace_speed\"`},
		{"malformed body", "POST", "/v2/trace/setting", `{"trace_rate":`, 400, nil, "malformed JSON body"},
		{"bad model name", "GET", "/v2/models/..x/trace/setting", "", 400, nil, `model name \"..x\" is invalid`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := ts.do(t, tc.method, tc.path, []byte(tc.body), nil)
			if res.status != tc.status {
				t.Fatalf("%s %s %s: %d %s, want %d", tc.method, tc.path, tc.body, res.status, res.body, tc.status)
			}
			if tc.want == nil {
				if !strings.Contains(string(res.body), tc.wantErr) {
					t.Errorf("%s %s %s: %s, want an error containing %s", tc.method, tc.path, tc.body, res.body, tc.wantErr)
				}
				return
			}
			if diff := cmp.Diff(tc.want, jsonOf(t, res.body)); diff != "" {
				t.Errorf("%s %s %s (-want +got):\n%s", tc.method, tc.path, tc.body, diff)
			}
		})
	}
	if l, ok := sc.trace.Sample(model); ok {
		t.Errorf("after clearing its level, Sample(%s) traced at %v", model, l.Names())
	}
}

func TestLoggingEndpoint(t *testing.T) {
	ts, sc := newSettingsServer(t)
	res := ts.do(t, "POST", "/v2/logging", []byte(`{"log_verbose_level":1,"log_warning":false,"log_file":null}`), nil)
	if res.status != http.StatusOK {
		t.Fatalf("POST /v2/logging: %d %s", res.status, res.body)
	}
	want := map[string]any{"log_file": "", "log_info": true, "log_warning": false, "log_error": true, "log_verbose_level": 1.0, "log_format": "ISO8601"}
	if diff := cmp.Diff(want, jsonOf(t, res.body)); diff != "" {
		t.Errorf("POST /v2/logging (-want +got):\n%s", diff)
	}
	if got := sc.logs.Setting().VerboseLevel; got != 1 {
		t.Errorf("log_verbose_level after the POST = %d", got)
	}
	for _, tc := range []struct{ body, wantErr string }{
		{`{"log_info":"yes"}`, `log_info: want a boolean, got string \"yes\"`},
		{`{"log_verbose_level":-1}`, "log_verbose_level: want an integer from 0 to 4294967295, got number -1"},
		{`{"log_verbose_level":[1]}`, `log setting \"log_verbose_level\": want a boolean, a number or a string, got [1]`},
		{`{"log_file":"/tmp/x.log"}`, "log_file: log file location can not be updated through network protocol"},
		{`{"log_format":"default"}`, `log_format: want \"ISO8601\"`},
	} {
		res := ts.do(t, "POST", "/v2/logging", []byte(tc.body), nil)
		if res.status != http.StatusBadRequest || !strings.Contains(string(res.body), tc.wantErr) {
			t.Errorf("POST /v2/logging %s: %d %s, want 400 containing %s", tc.body, res.status, res.body, tc.wantErr)
		}
	}
}

// FuzzSettingsBodies feeds arbitrary bodies to both decoders and real settings. Beyond
// not crashing, an accepted trace update must leave settings that, reported and posted
// back (the settable ones), are accepted and unchanged.
func FuzzSettingsBodies(f *testing.F) {
	for _, seed := range []string{`{}`, `{"trace_level":["TIMESTAMPS","TENSORS"],"trace_rate":"7"}`, `{"trace_count":"-1","log_frequency":null}`,
		`{"trace_level":"OFF"}`, `{"trace_rate":12}`, `{"log_verbose_level":3,"log_info":false}`, `{"log_format":"ISO8601","log_file":null}`, `[1]`, `{"a":{}}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var raw map[string]json.RawMessage
		if json.Unmarshal(body, &raw) != nil {
			return
		}
		if u, err := decodeLogUpdate(raw); err == nil {
			_ = settings.NewLog(new(slog.LevelVar)).Update(u)
		}
		u, err := decodeTraceUpdate(raw)
		if err != nil {
			return
		}
		tr := settings.NewTrace(settings.DefaultTrace())
		if tr.Update("m", u) != nil {
			return
		}
		got := tr.Setting("m")
		back := settings.TraceUpdate{}
		for _, v := range got.Report() {
			if v.Name != settings.TraceFileName && v.Name != settings.TraceModeName {
				back[v.Name] = v.Values
			}
		}
		if err := tr.Update("m", back); err != nil {
			t.Fatalf("posting back the reported settings %v: %v", back, err)
		}
		if again := tr.Setting("m"); again != got {
			t.Fatalf("posting back the reported settings changed them: %+v, then %+v", got, again)
		}
	})
}
