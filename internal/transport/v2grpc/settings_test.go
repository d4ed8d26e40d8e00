package v2grpc

import (
	"context"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
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

func newSettingsCore() settingsCore {
	return settingsCore{fakeCore: &fakeCore{}, trace: settings.NewTrace(settings.DefaultTrace()), logs: settings.NewLog(new(slog.LevelVar))}
}

func (c settingsCore) TraceSettings(_ context.Context, model string, u settings.TraceUpdate) (settings.TraceSetting, error) {
	if model != "" {
		if err := c.known(model, ""); err != nil {
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

func traceValues(vals ...string) *inference.TraceSettingRequest_SettingValue {
	return &inference.TraceSettingRequest_SettingValue{Value: vals}
}

func TestTraceSettingRPC(t *testing.T) {
	sc := newSettingsCore()
	c := inference.NewGRPCInferenceServiceClient(testServer(t, New(sc, Options{})))
	ctx := t.Context()
	want := func(level []string, rate, count string) *inference.TraceSettingResponse {
		v := func(s ...string) *inference.TraceSettingResponse_SettingValue {
			return &inference.TraceSettingResponse_SettingValue{Value: s}
		}
		return &inference.TraceSettingResponse{Settings: map[string]*inference.TraceSettingResponse_SettingValue{
			"trace_level": v(level...), "trace_rate": v(rate), "trace_count": v(count), "log_frequency": v("0"),
			"trace_file": v(""), "trace_mode": v("opentelemetry"),
		}}
	}
	res, err := c.TraceSetting(ctx, &inference.TraceSettingRequest{})
	if err != nil {
		t.Fatal(err)
	}
	diffProto(t, "TraceSetting{}", res, want([]string{"OFF"}, "1000", "-1"))

	res, err = c.TraceSetting(ctx, &inference.TraceSettingRequest{ModelName: "echo", Settings: map[string]*inference.TraceSettingRequest_SettingValue{
		"trace_level": traceValues("TIMESTAMPS", "TENSORS"), "trace_rate": traceValues("1")}})
	if err != nil {
		t.Fatal(err)
	}
	diffProto(t, "TraceSetting(echo, level and rate)", res, want([]string{"TIMESTAMPS", "TENSORS"}, "1", "-1"))
	if l, ok := sc.trace.Sample("echo"); !ok || l != settings.TraceTimestamps|settings.TraceTensors {
		t.Errorf("after the RPC, Sample(echo) = %v, %v; want traced at TIMESTAMPS|TENSORS", l, ok)
	}

	// An empty value list clears a model's setting: it follows the global one again.
	res, err = c.TraceSetting(ctx, &inference.TraceSettingRequest{ModelName: "echo", Settings: map[string]*inference.TraceSettingRequest_SettingValue{
		"trace_level": {}, "trace_rate": traceValues()}})
	if err != nil {
		t.Fatal(err)
	}
	diffProto(t, "TraceSetting(echo, cleared)", res, want([]string{"OFF"}, "1000", "-1"))

	_, err = c.TraceSetting(ctx, &inference.TraceSettingRequest{ModelName: "nope"})
	checkCall(t, "TraceSetting(nope)", err, codes.NotFound, "Request for unknown model: 'nope' is not found")
	_, err = c.TraceSetting(ctx, &inference.TraceSettingRequest{Settings: map[string]*inference.TraceSettingRequest_SettingValue{"trace_rate": traceValues("1", "2")}})
	checkCall(t, "TraceSetting(two rates)", err, codes.InvalidArgument, "trace_rate: want one value, got 2")
}

func TestLogSettingsRPC(t *testing.T) {
	sc := newSettingsCore()
	c := inference.NewGRPCInferenceServiceClient(testServer(t, New(sc, Options{})))
	ctx := t.Context()
	b := func(v bool) *inference.LogSettingsRequest_SettingValue {
		return &inference.LogSettingsRequest_SettingValue{ParameterChoice: &inference.LogSettingsRequest_SettingValue_BoolParam{BoolParam: v}}
	}
	res, err := c.LogSettings(ctx, &inference.LogSettingsRequest{Settings: map[string]*inference.LogSettingsRequest_SettingValue{
		"log_verbose_level": {ParameterChoice: &inference.LogSettingsRequest_SettingValue_Uint32Param{Uint32Param: 1}},
		"log_warning":       b(false),
	}})
	if err != nil {
		t.Fatal(err)
	}
	rb := func(v bool) *inference.LogSettingsResponse_SettingValue {
		return &inference.LogSettingsResponse_SettingValue{ParameterChoice: &inference.LogSettingsResponse_SettingValue_BoolParam{BoolParam: v}}
	}
	rs := func(v string) *inference.LogSettingsResponse_SettingValue {
		return &inference.LogSettingsResponse_SettingValue{ParameterChoice: &inference.LogSettingsResponse_SettingValue_StringParam{StringParam: v}}
	}
	diffProto(t, "LogSettings", res, &inference.LogSettingsResponse{Settings: map[string]*inference.LogSettingsResponse_SettingValue{
		"log_file": rs(""), "log_info": rb(true), "log_warning": rb(false), "log_error": rb(true),
		"log_verbose_level": {ParameterChoice: &inference.LogSettingsResponse_SettingValue_Uint32Param{Uint32Param: 1}},
		"log_format":        rs("ISO8601"),
	}})

	for _, tc := range []struct {
		name string
		v    *inference.LogSettingsRequest_SettingValue
		msg  string
	}{
		{"log_info", &inference.LogSettingsRequest_SettingValue{ParameterChoice: &inference.LogSettingsRequest_SettingValue_Uint32Param{Uint32Param: 1}}, "log_info: want a boolean, got number 1"},
		{"log_info", &inference.LogSettingsRequest_SettingValue{}, "log_info: want a boolean, got no value"},
		{"log_verbose_level", b(true), "log_verbose_level: want an integer from 0 to 4294967295, got boolean true"},
		{"log_file", &inference.LogSettingsRequest_SettingValue{ParameterChoice: &inference.LogSettingsRequest_SettingValue_StringParam{StringParam: "x.log"}},
			"log_file: log file location can not be updated through network protocol (Ferry logs to stderr)"},
	} {
		_, err := c.LogSettings(ctx, &inference.LogSettingsRequest{Settings: map[string]*inference.LogSettingsRequest_SettingValue{tc.name: tc.v}})
		checkCall(t, "LogSettings("+tc.name+")", err, codes.InvalidArgument, tc.msg)
	}
}
