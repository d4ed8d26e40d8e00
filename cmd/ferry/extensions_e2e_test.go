package main

// The server metadata's extension list is a promise clients act on (tritonclient and
// perf_analyzer pick features from it), and the gRPC service is Triton's whole
// GRPCInferenceService: these tests check both against a real server.

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// simpleInputs are simple's two INT32 inputs, one row, as V2 JSON.
const simpleInputs = `"inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]},
	{"name":"INPUT1","shape":[1,16],"datatype":"INT32","data":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}]`

// extensionProbe is one request a client of an extension sends, and a check of the
// answer beyond its status.
type extensionProbe struct {
	method, path, body string
	check              func(h http.Header, body []byte) string // "" when served as the extension says
}

// extensionProbes has a probe for every extension Ferry can serve; core.Extensions must
// name each of them and nothing else.
var extensionProbes = map[string]extensionProbe{
	"classification": {"POST", "/v2/models/simple/infer", `{` + simpleInputs + `,"outputs":[{"name":"OUTPUT0","parameters":{"classification":2}}]}`,
		func(_ http.Header, b []byte) string {
			if !strings.Contains(string(b), `"datatype":"BYTES"`) {
				return "the classification parameter was not applied"
			}
			return ""
		}},
	"sequence": {"POST", "/v2/models/acc/infer", `{"parameters":{"sequence_id":7,"sequence_start":true,"sequence_end":true},
		"inputs":[{"name":"INPUT","shape":[1,1],"datatype":"INT32","data":[5]}]}`, nil},
	"model_repository": {"POST", "/v2/repository/index", `{}`, nil},
	"model_repository(unload_dependents)": {"POST", "/v2/repository/models/identity_int8/unload",
		`{"parameters":{"unload_dependents":true}}`, nil},
	"schedule_policy":     {"POST", "/v2/models/simple/infer", `{"parameters":{"priority":1,"timeout":60000000},` + simpleInputs + `}`, nil},
	"model_configuration": {"GET", "/v2/models/simple/config", "", nil},
	"binary_tensor_data": {"POST", "/v2/models/simple/infer", `{"parameters":{"binary_data_output":true},` + simpleInputs + `}`,
		func(h http.Header, _ []byte) string {
			if h.Get("Inference-Header-Content-Length") == "" {
				return "no Inference-Header-Content-Length: the outputs were not binary"
			}
			return ""
		}},
	"parameters": {"POST", "/v2/models/simple/infer", `{"parameters":{"any_name":"any value"},` + simpleInputs + `}`, nil},
	"statistics": {"GET", "/v2/models/stats", "", nil},
	"trace":      {"GET", "/v2/trace/setting", "", nil},
	"logging":    {"GET", "/v2/logging", "", nil},
	// The status endpoint of Triton's shared memory extension.
	"system_shared_memory": {"GET", "/v2/systemsharedmemory/status", "", nil},
}

// TestAdvertisedExtensionsAreServed: GET /v2 and ServerMetadata list exactly
// core.Extensions, every one of which has a probe that the server answers as the
// extension says; no extension without a probe is listed, and cuda_shared_memory (whose
// endpoints only refuse, without a GPU) is not.
func TestAdvertisedExtensionsAreServed(t *testing.T) {
	repo := exampleRepo(t)
	writeModel(t, repo, "acc", 1, onnxgen.Accumulator(), seqIO+"sequence_batching {"+seqState+"\n}\n")
	// Explicit mode, where the repository extension may load and unload.
	ts := startServer(t, repo, func(c *serveConfig) {
		c.mode = "explicit"
		c.loadModels = []string{"simple", "acc", "identity_int8"}
	})

	code, _, b := restCall(t, ts, "GET", "/v2", "")
	var md struct{ Extensions []string }
	if err := json.Unmarshal(b, &md); err != nil || code != 200 {
		t.Fatalf("GET /v2: %d %s", code, b)
	}
	res, err := ts.GRPC.ServerMetadata(t.Context(), &inference.ServerMetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(md.Extensions, core.Extensions) || !slices.Equal(res.GetExtensions(), core.Extensions) {
		t.Errorf("extensions: GET /v2 %v, ServerMetadata %v; want core.Extensions %v", md.Extensions, res.GetExtensions(), core.Extensions)
	}
	if slices.Contains(core.Extensions, "cuda_shared_memory") {
		t.Error("cuda_shared_memory is listed, but without a GPU its endpoints only refuse")
	}
	for _, ext := range core.Extensions {
		if _, ok := extensionProbes[ext]; !ok {
			t.Errorf("extension %q is listed but has no probe here; add one", ext)
		}
	}
	for name, p := range extensionProbes {
		t.Run(name, func(t *testing.T) {
			if !slices.Contains(core.Extensions, name) {
				t.Fatalf("%s is served (it has a probe) but core.Extensions does not list it", name)
			}
			code, h, b := restCall(t, ts, p.method, p.path, p.body)
			if code != http.StatusOK {
				t.Fatalf("%s %s: %d %s, want 200", p.method, p.path, code, b)
			}
			if p.check != nil {
				if msg := p.check(h, b); msg != "" {
					t.Errorf("%s %s: %s: %s", p.method, p.path, msg, b)
				}
			}
		})
	}
}

// TestEveryRPCIsImplemented walks GRPCInferenceService's descriptor and calls each
// method with an empty request over a real connection: whatever the answer (many are
// errors about the empty request), none may be UNIMPLEMENTED, which tells a Triton
// client the server lacks the RPC.
func TestEveryRPCIsImplemented(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	svc := inference.File_grpc_service_proto.Services().ByName("GRPCInferenceService")
	methods := svc.Methods()
	for i := range methods.Len() {
		m := methods.Get(i)
		name := string(m.Name())
		t.Run(name, func(t *testing.T) {
			full := "/" + string(svc.FullName()) + "/" + name
			in, out := dynamicpb.NewMessage(m.Input()), dynamicpb.NewMessage(m.Output())
			var err error
			if m.IsStreamingClient() || m.IsStreamingServer() {
				err = callStream(t, ts.conn, full, m.IsStreamingServer(), in, out)
			} else {
				err = ts.conn.Invoke(t.Context(), full, in, out)
			}
			if status.Code(err) == codes.Unimplemented {
				t.Errorf("%s with an empty request: %v", full, err)
			}
			t.Logf("%s: %v", full, status.Code(err))
		})
	}
}

// callStream sends one message on a new stream, closes the sending side and reads the
// first answer (ModelStreamInfer answers errors in-stream, as messages).
func callStream(t *testing.T, conn *grpc.ClientConn, method string, serverStreams bool, in, out any) error {
	st, err := conn.NewStream(t.Context(), &grpc.StreamDesc{ClientStreams: true, ServerStreams: serverStreams}, method)
	if err != nil {
		return err
	}
	if err := st.SendMsg(in); err != nil {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	return st.RecvMsg(out)
}
