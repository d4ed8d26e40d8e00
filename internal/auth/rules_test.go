package auth

import (
	"errors"
	"testing"

	"github.com/ferryml/ferry/internal/inference"
)

// TestAuthorizeEveryRoleAndAction is the rules' table: each role against each action,
// with a key limited to "mlp*" where the model matters.
func TestAuthorizeEveryRoleAndAction(t *testing.T) {
	type want struct{ infer, manage, admin, limited bool } // limited: an infer identity with Models ["mlp*"]
	cases := []struct {
		action Action
		model  string
		want   want
	}{
		{ActionAny, "", want{true, true, true, true}},
		{ActionRead, "mlp", want{true, true, true, true}},
		{ActionRead, "other", want{true, true, true, false}},
		{ActionReadAll, "", want{true, true, true, false}},
		{ActionInfer, "mlp_v2", want{true, true, true, true}},
		{ActionInfer, "other", want{true, true, true, false}},
		{ActionShm, "", want{true, true, true, true}},
		{ActionManage, "mlp", want{false, true, true, false}},
		{ActionAdmin, "", want{false, false, true, false}},
	}
	for _, c := range cases {
		for _, id := range []struct {
			id   Identity
			want bool
		}{
			{Identity{Role: RoleInfer, Via: ViaKey}, c.want.infer},
			{Identity{Role: RoleManage, Via: ViaKey}, c.want.manage},
			{Identity{Role: RoleAdmin, Via: ViaKey, Models: []string{"x"}}, c.want.admin},
			{Identity{Role: RoleInfer, Via: ViaKey, Models: []string{"mlp*"}}, c.want.limited},
		} {
			err := Authorize(id.id, c.action, c.model)
			var d *Denied
			if (err == nil) != id.want || (err != nil && !errors.As(err, &d)) {
				t.Errorf("Authorize(%s %v, %s, %q) = %v, want allowed %v", id.id.Role, id.id.Models, c.action, c.model, err, id.want)
			}
		}
	}
	if Authorize(Identity{}, ActionOpen, "") != nil {
		t.Error("health must be open to no identity")
	}
	if Authorize(Identity{Role: RoleNone}, ActionInfer, "mlp") == nil {
		t.Error("RoleNone may infer")
	}
}

func TestClassifyHTTP(t *testing.T) {
	cases := []struct {
		method, path string
		action       Action
		model        string
	}{
		{"GET", "/v2/health/live", ActionOpen, ""},
		{"GET", "/v2/health/ready", ActionOpen, ""},
		{"GET", "/v2", ActionAny, ""},
		{"GET", "/metrics", ActionAny, ""},
		{"GET", "/v2/models/mlp", ActionRead, "mlp"},
		{"GET", "/v2/models/mlp/versions/2/config", ActionRead, "mlp"},
		{"POST", "/v2/models/mlp/infer", ActionInfer, "mlp"},
		{"POST", "/v2/models/mlp/versions/1/infer", ActionInfer, "mlp"},
		{"GET", "/v2/models/stats", ActionReadAll, ""},
		{"POST", "/v2/repository/index", ActionReadAll, ""},
		{"POST", "/v2/repository/models/mlp/load", ActionManage, "mlp"},
		{"POST", "/v2/repository/models/mlp/unload", ActionManage, "mlp"},
		{"POST", "/v2/trace/setting", ActionManage, ""},
		{"GET", "/v2/trace/setting", ActionReadAll, ""},
		{"POST", "/v2/models/mlp/trace/setting", ActionManage, "mlp"},
		{"POST", "/v2/logging", ActionManage, ""},
		{"POST", "/v2/systemsharedmemory/region/r/register", ActionShm, ""},
		{"GET", "/api/v1/models", ActionReadAll, ""},
		{"POST", "/api/v1/models", ActionManage, ""},
		{"DELETE", "/api/v1/models/x", ActionManage, ""},
		{"POST", "/api/v1/keys", ActionAdmin, ""},
		{"GET", "/nothing/here", ActionAny, ""},
		{"GET", "/v2/health", ActionAny, ""},
		{"POST", "/v2/health/../repository/models/mlp/load", ActionAny, ""},
		{"GET", "/v2/health/live/x", ActionAny, ""},
	}
	for _, c := range cases {
		a, m := ClassifyHTTP(c.method, c.path)
		if a != c.action || m != c.model {
			t.Errorf("ClassifyHTTP(%s %s) = %s %q, want %s %q", c.method, c.path, a, m, c.action, c.model)
		}
	}
}

func TestMayUse(t *testing.T) {
	id := Identity{Models: []string{"mlp*", "simple"}}
	for m, want := range map[string]bool{"mlp": true, "mlp_2": true, "simple": true, "simple2": false, "": false, "x": false} {
		if id.MayUse(m) != want {
			t.Errorf("MayUse(%q) = %v, want %v", m, !want, want)
		}
	}
	if !(Identity{}).MayUse("anything") {
		t.Error("an identity without patterns may use every model")
	}
}

func TestClassifyGRPC(t *testing.T) {
	const s = "/inference.GRPCInferenceService/"
	cases := []struct {
		method string
		req    any
		action Action
		model  string
	}{
		{"/grpc.health.v1.Health/Check", nil, ActionOpen, ""},
		{s + "ServerLive", nil, ActionOpen, ""},
		{s + "ServerReady", nil, ActionOpen, ""},
		{s + "ServerMetadata", nil, ActionAny, ""},
		{s + "ModelMetadata", &inference.ModelMetadataRequest{Name: "mlp"}, ActionRead, "mlp"},
		{s + "ModelStatistics", &inference.ModelStatisticsRequest{}, ActionReadAll, ""},
		{s + "ModelStatistics", &inference.ModelStatisticsRequest{Name: "mlp"}, ActionRead, "mlp"},
		{s + "ModelInfer", &inference.ModelInferRequest{ModelName: "mlp"}, ActionInfer, "mlp"},
		{s + "RepositoryIndex", &inference.RepositoryIndexRequest{}, ActionReadAll, ""},
		{s + "RepositoryModelLoad", &inference.RepositoryModelLoadRequest{ModelName: "mlp"}, ActionManage, "mlp"},
		{s + "RepositoryModelUnload", &inference.RepositoryModelUnloadRequest{ModelName: "mlp"}, ActionManage, "mlp"},
		{s + "LogSettings", &inference.LogSettingsRequest{}, ActionReadAll, ""},
		{s + "LogSettings", &inference.LogSettingsRequest{Settings: map[string]*inference.LogSettingsRequest_SettingValue{"log_info": {}}}, ActionManage, ""},
		{s + "TraceSetting", &inference.TraceSettingRequest{ModelName: "mlp", Settings: map[string]*inference.TraceSettingRequest_SettingValue{"trace_rate": {}}}, ActionManage, "mlp"},
		{s + "SystemSharedMemoryRegister", &inference.SystemSharedMemoryRegisterRequest{}, ActionShm, ""},
		{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", nil, ActionAny, ""},
	}
	for _, c := range cases {
		a, m := ClassifyGRPC(c.method, c.req)
		if a != c.action || m != c.model {
			t.Errorf("ClassifyGRPC(%s, %v) = %s %q, want %s %q", c.method, c.req, a, m, c.action, c.model)
		}
	}
}
