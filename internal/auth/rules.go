package auth

import (
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Action is what a route or RPC does, for the rules.
type Action int

// The actions, from the open ones to the admin's.
const (
	ActionOpen    Action = iota // health: no identity needed
	ActionAny                   // any identity: server metadata, metrics, unknown routes (their 404)
	ActionRead                  // metadata, config, readiness or stats of one model
	ActionReadAll               // reads about every model: statistics of all, the repository index, settings
	ActionInfer                 // inference on one model ("": the model is in the body, as /v1)
	ActionShm                   // shared-memory regions, which inference clients register
	ActionManage                // load, unload, registry and rollout writes, trace/log settings writes
	ActionAdmin                 // keys and tenants
)

var actionNames = [...]string{"open", "any", "read", "read-all", "infer", "shared-memory", "manage", "admin"}

func (a Action) String() string { return actionNames[a] }

// Denied is a known caller's refusal (HTTP 403, gRPC PERMISSION_DENIED). Its message
// names the missing right, never a credential.
type Denied struct{ Msg string }

func (d *Denied) Error() string { return d.Msg }

// Authorize decides whether id may do a on model. Model patterns limit infer and read;
// admin is unlimited.
func Authorize(id Identity, a Action, model string) error {
	need := map[Action]Role{ActionAny: RoleNone, ActionRead: RoleInfer, ActionReadAll: RoleInfer, ActionInfer: RoleInfer,
		ActionShm: RoleInfer, ActionManage: RoleManage, ActionAdmin: RoleAdmin}[a]
	if a == ActionOpen {
		return nil
	}
	if id.Role < need {
		return &Denied{fmt.Sprintf("%s needs role %s; the caller (%s) has role %s", a, need, id, id.Role)}
	}
	if id.Role == RoleAdmin {
		return nil
	}
	switch {
	case (a == ActionRead || a == ActionInfer) && model != "" && !id.MayUse(model):
		return &Denied{fmt.Sprintf("%s of model %q: the caller (%s) may use only models matching %q", a, model, id, id.Models)}
	case a == ActionReadAll && id.Role < RoleManage && len(id.Models) > 0:
		return &Denied{fmt.Sprintf("%s: the caller (%s) is limited to models matching %q; reads about every model need role manage", a, id, id.Models)}
	}
	return nil
}

// ClassifyHTTP says what an HTTP request does and which model it names. Paths it does
// not know need an identity (ActionAny), so a new route is never open by accident.
func ClassifyHTTP(method, p string) (Action, string) {
	seg := strings.Split(strings.Trim(p, "/"), "/")
	read := method == http.MethodGet || method == http.MethodHead
	switch {
	case p == "/v2/health/live" || p == "/v2/health/ready":
		// Exact paths: a prefix would open "/v2/health/../repository/..." (an
		// alternate-path bypass, CWE-288) to whatever serves it after cleaning.
		return ActionOpen, ""
	case p == "/v2" || p == "/v2/" || p == "/metrics":
		return ActionAny, ""
	case p == "/v2/models/stats":
		return ActionReadAll, ""
	case len(seg) >= 3 && seg[0] == "v2" && seg[1] == "models":
		return classifyModel(read, seg[2], seg[3:])
	case p == "/v2/repository/index":
		return ActionReadAll, ""
	case strings.HasPrefix(p, "/v2/repository/"):
		return ActionManage, at(seg, 3)
	case p == "/v2/trace/setting" || p == "/v2/logging":
		if read {
			return ActionReadAll, ""
		}
		return ActionManage, ""
	case strings.HasPrefix(p, "/v2/systemsharedmemory") || strings.HasPrefix(p, "/v2/cudasharedmemory"):
		return ActionShm, ""
	case strings.HasPrefix(p, "/v1/"):
		return ActionInfer, ""
	case strings.HasPrefix(p, "/api/v1/keys") || strings.HasPrefix(p, "/api/v1/tenants"):
		return ActionAdmin, ""
	case strings.HasPrefix(p, "/api/v1/") || p == "/api/v1":
		if read {
			return ActionReadAll, ""
		}
		return ActionManage, ""
	}
	return ActionAny, ""
}

// classifyModel: /v2/models/{m}[/versions/{v}][/ready|/config|/stats|/infer|/trace/setting|...].
func classifyModel(read bool, model string, rest []string) (Action, string) {
	if len(rest) >= 2 && rest[0] == "versions" {
		rest = rest[2:]
	}
	switch {
	case len(rest) >= 1 && rest[0] == "trace" && !read:
		return ActionManage, model
	case read:
		return ActionRead, model
	}
	return ActionInfer, model // infer, generate, generate_stream
}

func at(seg []string, i int) string {
	if i < len(seg) {
		return seg[i]
	}
	return ""
}

// The V2 gRPC service's methods, by the name after the service.
const v2Service = "/inference.GRPCInferenceService/"

// ClassifyGRPC says what an RPC does and which model its request names (req may be
// nil for a stream, whose messages are classified one by one).
func ClassifyGRPC(fullMethod string, req any) (Action, string) {
	if strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") {
		return ActionOpen, ""
	}
	name, ok := strings.CutPrefix(fullMethod, v2Service)
	if !ok {
		return ActionAny, "" // reflection and anything registered later
	}
	switch name {
	case "ServerLive", "ServerReady":
		return ActionOpen, ""
	case "ServerMetadata":
		return ActionAny, ""
	case "ModelReady", "ModelMetadata", "ModelConfig":
		return ActionRead, field(req, "name")
	case "ModelStatistics":
		if m := field(req, "name"); m != "" {
			return ActionRead, m
		}
		return ActionReadAll, ""
	case "ModelInfer", "ModelStreamInfer":
		return ActionInfer, field(req, "model_name")
	case "RepositoryIndex":
		return ActionReadAll, ""
	case "RepositoryModelLoad", "RepositoryModelUnload":
		return ActionManage, field(req, "model_name")
	case "TraceSetting", "LogSettings":
		if hasSettings(req) {
			return ActionManage, field(req, "model_name")
		}
		return ActionReadAll, ""
	}
	if strings.Contains(name, "SharedMemory") {
		return ActionShm, ""
	}
	return ActionAny, ""
}

// field reads a string field of a protobuf request by name ("" if absent).
func field(req any, name string) string {
	m, ok := req.(proto.Message)
	if !ok || m == nil {
		return ""
	}
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(protoName(name))
	if fd == nil || fd.Kind().String() != "string" {
		return ""
	}
	return r.Get(fd).String()
}

// hasSettings: a TraceSetting or LogSettings request that sets something writes.
func hasSettings(req any) bool {
	m, ok := req.(proto.Message)
	if !ok || m == nil {
		return true // unknown: treat as a write
	}
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName("settings")
	return fd == nil || (fd.IsMap() && r.Get(fd).Map().Len() > 0)
}

func protoName(s string) protoreflect.Name { return protoreflect.Name(s) }
