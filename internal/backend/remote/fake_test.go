package remote

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
	"github.com/ferryml/ferry/internal/v2json"
)

// fault decides what the fake upstream does with its n-th infer request (from 0): nil
// answers normally. It may block (watching ctx, which ends when the caller gives up).
type fault func(ctx context.Context, n int64) *injected

// injected is a failure to answer with.
type injected struct {
	status int        // HTTP status; the gRPC code follows from it
	code   codes.Code // gRPC code, when status is 0
	msg    string
}

// The fake's own view of the V2 REST JSON it reads and writes.
type restTensor struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

type restRequest struct {
	Inputs []restTensor `json:"inputs"`
}

type restResponse struct {
	Outputs []restTensor `json:"outputs"`
}

// fakeUpstream is a V2 server (REST and gRPC) with one model, "echo": input "x" FP32
// [-1, 4], output "y" = x and "n" = the request number (INT64 [-1, 1] per row). Faults
// are injected per request.
type fakeUpstream struct {
	mu     sync.Mutex
	fault  fault
	ready  bool
	json   bool // answer REST infers with JSON data instead of binary
	tries  atomic.Int64
	cancel atomic.Int64 // infer requests whose caller went away before the answer

	rest *httptest.Server
	grpc *grpc.Server
	addr string // the gRPC listener
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	f := &fakeUpstream{ready: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/models/echo", f.metadataREST)
	mux.HandleFunc("GET /v2/models/echo/config", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"name":"echo","max_batch_size":8}`)
	})
	mux.HandleFunc("GET /v2/models/echo/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !f.isReady() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("POST /v2/models/echo/infer", f.inferREST)
	f.rest = httptest.NewServer(mux)
	t.Cleanup(f.rest.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.grpc = grpc.NewServer()
	inference.RegisterGRPCInferenceServiceServer(f.grpc, &fakeGRPC{f: f})
	go f.grpc.Serve(ln)
	t.Cleanup(f.grpc.Stop)
	f.addr = ln.Addr().String()
	return f
}

func (f *fakeUpstream) restURL() string { return f.rest.URL }
func (f *fakeUpstream) grpcURL() string { return "grpc://" + f.addr }

func (f *fakeUpstream) setFault(fl fault) { f.mu.Lock(); f.fault = fl; f.mu.Unlock() }
func (f *fakeUpstream) setReady(r bool)   { f.mu.Lock(); f.ready = r; f.mu.Unlock() }
func (f *fakeUpstream) isReady() bool     { f.mu.Lock(); defer f.mu.Unlock(); return f.ready }

// infer runs one request: the fault, then the echo.
func (f *fakeUpstream) infer(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, *injected) {
	n := f.tries.Add(1) - 1
	f.mu.Lock()
	fl := f.fault
	f.mu.Unlock()
	if fl != nil {
		if e := fl(ctx, n); e != nil {
			return nil, e
		}
	}
	if ctx.Err() != nil {
		f.cancel.Add(1)
		return nil, &injected{status: 499, code: status.FromContextError(ctx.Err()).Code(), msg: "caller left"}
	}
	if len(in) != 1 || in[0].Name != "x" || in[0].DType != tensor.FP32 {
		return nil, &injected{status: 400, code: codes.InvalidArgument, msg: "want one FP32 input x"}
	}
	x := in[0]
	rows := x.Shape[0]
	ns := make([]byte, 0, 8*rows)
	for range rows {
		ns = binary.LittleEndian.AppendUint64(ns, uint64(n))
	}
	return []*tensor.Tensor{
		{Name: "y", DType: tensor.FP32, Shape: x.Shape, Data: x.Data},
		{Name: "n", DType: tensor.Int64, Shape: tensor.Shape{rows, 1}, Data: ns},
	}, nil
}

func (f *fakeUpstream) metadataREST(w http.ResponseWriter, _ *http.Request) {
	io.WriteString(w, `{"name":"echo","versions":["1"],"platform":"fake",
		"inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],
		"outputs":[{"name":"y","datatype":"FP32","shape":[-1,4]},{"name":"n","datatype":"INT64","shape":[-1,1]}]}`)
}

func (f *fakeUpstream) inferREST(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	hlen, err := strconv.Atoi(r.Header.Get(v2client.HeaderLength))
	if err != nil || hlen > len(body) {
		http.Error(w, `{"error":"no binary header"}`, http.StatusBadRequest)
		return
	}
	var req restRequest
	if err := json.Unmarshal(body[:hlen], &req); err != nil {
		http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
		return
	}
	bin := body[hlen:]
	var in []*tensor.Tensor
	for _, t := range req.Inputs {
		dt, _ := tensor.ParseDType(t.Datatype)
		size := int(t.Parameters["binary_data_size"].(float64))
		in = append(in, &tensor.Tensor{Name: t.Name, DType: dt, Shape: t.Shape, Data: bin[:size]})
		bin = bin[size:]
	}
	outs, e := f.infer(r.Context(), in)
	if e != nil {
		w.WriteHeader(e.status)
		fmt.Fprintf(w, `{"error":%q}`, e.msg)
		return
	}
	if f.json {
		writeJSONOutputs(w, outs)
		return
	}
	var resp restResponse
	var data []byte
	for _, o := range outs {
		resp.Outputs = append(resp.Outputs, restTensor{Name: o.Name, Datatype: o.DType.String(), Shape: o.Shape,
			Parameters: map[string]any{"binary_data_size": len(o.Data)}})
		data = append(data, o.Data...)
	}
	header, _ := json.Marshal(resp)
	w.Header().Set(v2client.HeaderLength, strconv.Itoa(len(header)))
	w.Write(header)
	w.Write(data)
}

// writeJSONOutputs answers with typed JSON data, as an upstream that ignores
// binary_data_output does.
func writeJSONOutputs(w http.ResponseWriter, outs []*tensor.Tensor) {
	var resp restResponse
	for _, o := range outs {
		data, _ := v2json.AppendData(nil, o)
		resp.Outputs = append(resp.Outputs, restTensor{Name: o.Name, Datatype: o.DType.String(), Shape: o.Shape, Data: data})
	}
	json.NewEncoder(w).Encode(resp)
}

type fakeGRPC struct {
	inference.UnimplementedGRPCInferenceServiceServer
	f *fakeUpstream
}

func (g *fakeGRPC) ModelReady(_ context.Context, r *inference.ModelReadyRequest) (*inference.ModelReadyResponse, error) {
	return &inference.ModelReadyResponse{Ready: g.f.isReady()}, nil
}

func (g *fakeGRPC) ModelMetadata(_ context.Context, r *inference.ModelMetadataRequest) (*inference.ModelMetadataResponse, error) {
	if r.GetName() != "echo" {
		return nil, status.Errorf(codes.NotFound, "Request for unknown model: '%s' is not found", r.GetName())
	}
	return &inference.ModelMetadataResponse{Name: "echo",
		Inputs: []*inference.ModelMetadataResponse_TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 4}}},
		Outputs: []*inference.ModelMetadataResponse_TensorMetadata{{Name: "y", Datatype: "FP32", Shape: []int64{-1, 4}},
			{Name: "n", Datatype: "INT64", Shape: []int64{-1, 1}}}}, nil
}

func (g *fakeGRPC) ModelConfig(context.Context, *inference.ModelConfigRequest) (*inference.ModelConfigResponse, error) {
	return &inference.ModelConfigResponse{Config: &inference.ModelConfig{Name: "echo", MaxBatchSize: 8}}, nil
}

func (g *fakeGRPC) ModelInfer(ctx context.Context, r *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	var in []*tensor.Tensor
	for i, t := range r.GetInputs() {
		dt, _ := tensor.ParseDType(t.GetDatatype())
		in = append(in, &tensor.Tensor{Name: t.GetName(), DType: dt, Shape: t.GetShape(), Data: r.GetRawInputContents()[i]})
	}
	outs, e := g.f.infer(ctx, in)
	if e != nil {
		code := e.code
		if code == codes.OK {
			code = codes.Unavailable
			if e.status < 500 {
				code = codes.InvalidArgument
			}
		}
		return nil, status.Error(code, e.msg)
	}
	resp := &inference.ModelInferResponse{ModelName: "echo"}
	for _, o := range outs {
		resp.Outputs = append(resp.Outputs, &inference.ModelInferResponse_InferOutputTensor{Name: o.Name, Datatype: o.DType.String(), Shape: o.Shape})
		resp.RawOutputContents = append(resp.RawOutputContents, o.Data)
	}
	return resp, nil
}
