package v2grpc

import (
	"context"
	"fmt"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/settings"
)

// TraceSetting implements inference.GRPCInferenceServiceServer (the trace extension). A
// setting with an empty value list clears it, as in Triton: a model's follows the global
// one again. An unknown model_name is NOT_FOUND.
func (s *Server) TraceSetting(ctx context.Context, req *inference.TraceSettingRequest) (*inference.TraceSettingResponse, error) {
	var u settings.TraceUpdate
	if len(req.GetSettings()) > 0 {
		u = make(settings.TraceUpdate, len(req.GetSettings()))
		for name, v := range req.GetSettings() {
			if vals := v.GetValue(); len(vals) > 0 {
				u[name] = vals
			} else {
				u[name] = nil // clear
			}
		}
	}
	st, err := s.core.TraceSettings(ctx, req.GetModelName(), u)
	if err != nil {
		return nil, s.statusError(err)
	}
	res := &inference.TraceSettingResponse{Settings: map[string]*inference.TraceSettingResponse_SettingValue{}}
	for _, v := range st.Report() {
		res.Settings[v.Name] = &inference.TraceSettingResponse_SettingValue{Value: v.Values}
	}
	return res, nil
}

// LogSettings implements inference.GRPCInferenceServiceServer (the logging extension):
// each setting's value is its oneof, bool, uint32 or string, as Triton types them.
func (s *Server) LogSettings(ctx context.Context, req *inference.LogSettingsRequest) (*inference.LogSettingsResponse, error) {
	u := make(settings.LogUpdate, len(req.GetSettings()))
	for name, v := range req.GetSettings() {
		switch p := v.GetParameterChoice().(type) {
		case *inference.LogSettingsRequest_SettingValue_BoolParam:
			u[name] = p.BoolParam
		case *inference.LogSettingsRequest_SettingValue_Uint32Param:
			u[name] = p.Uint32Param
		case *inference.LogSettingsRequest_SettingValue_StringParam:
			u[name] = p.StringParam
		default:
			u[name] = noValue{}
		}
	}
	st, err := s.core.LogSettings(ctx, u)
	if err != nil {
		return nil, s.statusError(err)
	}
	res := &inference.LogSettingsResponse{Settings: map[string]*inference.LogSettingsResponse_SettingValue{}}
	for _, v := range st.Report() {
		res.Settings[v.Name] = logValue(v.Value)
	}
	return res, nil
}

// noValue is a setting sent without a value, which settings refuses as of no type it
// takes (nil would mean "leave it", REST's null).
type noValue struct{}

func (noValue) String() string { return "no value" }

func logValue(v any) *inference.LogSettingsResponse_SettingValue {
	switch x := v.(type) {
	case bool:
		return &inference.LogSettingsResponse_SettingValue{ParameterChoice: &inference.LogSettingsResponse_SettingValue_BoolParam{BoolParam: x}}
	case uint32:
		return &inference.LogSettingsResponse_SettingValue{ParameterChoice: &inference.LogSettingsResponse_SettingValue_Uint32Param{Uint32Param: x}}
	case string:
		return &inference.LogSettingsResponse_SettingValue{ParameterChoice: &inference.LogSettingsResponse_SettingValue_StringParam{StringParam: x}}
	}
	// settings.LogSetting.Report gives only the types above.
	return &inference.LogSettingsResponse_SettingValue{ParameterChoice: &inference.LogSettingsResponse_SettingValue_StringParam{StringParam: fmt.Sprint(v)}}
}
