package main

// End-to-end tests of the system shared memory extension: a real Ferry (real ONNX
// Runtime, real sockets) and real POSIX shared memory objects the test makes under
// /dev/shm, which the test writes and reads as a client would (through the file; the
// server's MAP_SHARED mapping sees the same pages). Helpers are prefixed shm.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/tools/onnxgen"
)

var shmSeq atomic.Int64

// shmObject is a POSIX shared memory object made by the test, removed when it ends.
type shmObject struct {
	key  string // the shm_open key, "/ferry-e2e-..."
	path string // /dev/shm/...
}

func newShmObject(t testing.TB, size int) shmObject {
	t.Helper()
	name := fmt.Sprintf("ferry-e2e-%d-%d", os.Getpid(), shmSeq.Add(1))
	o := shmObject{key: "/" + name, path: "/dev/shm/" + name}
	if err := os.WriteFile(o.path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(o.path) })
	return o
}

func (o shmObject) write(t testing.TB, offset int, b []byte) {
	t.Helper()
	f, err := os.OpenFile(o.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, int64(offset)); err != nil {
		t.Fatal(err)
	}
}

func (o shmObject) read(t testing.TB, offset, n int) []byte {
	t.Helper()
	f, err := os.Open(o.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, int64(offset)); err != nil {
		t.Fatal(err)
	}
	return b
}

// shmMapped reports whether this process (the server runs in it) maps the object.
func shmMapped(t testing.TB, o shmObject) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(o.path))
}

// shmRepo holds identity_fp32, identity_bytes and simple.
func shmRepo(t testing.TB) string {
	t.Helper()
	repo := t.TempDir()
	writeModel(t, repo, "identity_fp32", 1, onnxgen.Identity(onnxgen.Float, "identity_fp32"), "")
	writeModel(t, repo, "identity_bytes", 1, onnxgen.Identity(onnxgen.String, "identity_bytes"), "")
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
	return repo
}

// shmFloats is n FP32 values (i*0.5-7) in the V2 layout.
func shmFloats(n int) []byte {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i)*0.5 - 7
	}
	return restLE(v)
}

func shmRegisterREST(t *testing.T, ts *testServer, name, key string, offset, size int) (int, []byte) {
	t.Helper()
	code, _, b := restCall(t, ts, "POST", "/v2/systemsharedmemory/region/"+name+"/register",
		fmt.Sprintf(`{"key":%q,"offset":%d,"byte_size":%d}`, key, offset, size))
	return code, b
}

// shmParams is the JSON parameters object of a tensor in shared memory.
func shmParams(region string, offset, size int) string {
	return fmt.Sprintf(`{"shared_memory_region":%q,"shared_memory_offset":%d,"shared_memory_byte_size":%d}`, region, offset, size)
}

func shmIdentityJSON(n int, in, out string) string {
	return fmt.Sprintf(`{"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,%d],"parameters":%s}],"outputs":[{"name":"OUTPUT0","parameters":%s}]}`, n, in, out)
}

func TestSharedMemoryREST(t *testing.T) {
	ts := startServer(t, shmRepo(t))
	in, out := newShmObject(t, 3*4096), newShmObject(t, 8192)
	const n = 1000 // 4000 bytes
	data := shmFloats(n)
	in.write(t, 5000, data) // not page-aligned: the server maps from the page start
	if code, b := shmRegisterREST(t, ts, "in", in.key, 4096, 8192); code != 200 {
		t.Fatalf("register in: %d %s", code, b)
	}
	if code, b := shmRegisterREST(t, ts, "out", strings.TrimPrefix(out.key, "/"), 0, 8192); code != 200 {
		t.Fatalf("register out (key without '/'): %d %s", code, b)
	}

	t.Run("status lists the regions as Triton does", func(t *testing.T) {
		code, _, b := restCall(t, ts, "GET", "/v2/systemsharedmemory/status", "")
		want := fmt.Sprintf(`[{"name":"in","key":%q,"offset":4096,"byte_size":8192},{"name":"out","key":%q,"offset":0,"byte_size":8192}]`, in.key, strings.TrimPrefix(out.key, "/"))
		if code != 200 || string(b) != want {
			t.Errorf("status: %d %s\nwant %s", code, b, want)
		}
		code, _, b = restCall(t, ts, "GET", "/v2/systemsharedmemory/region/in/status", "")
		if want := fmt.Sprintf(`[{"name":"in","key":%q,"offset":4096,"byte_size":8192}]`, in.key); code != 200 || string(b) != want {
			t.Errorf("status of in: %d %s, want %s", code, b, want)
		}
		code, _, b = restCall(t, ts, "GET", "/v2/systemsharedmemory/region/nope/status", "")
		restWantError(t, "status of an unknown region", code, b, 404, `"nope"`)
	})

	t.Run("JSON request, input and output in shared memory", func(t *testing.T) {
		code, h, b := restCall(t, ts, "POST", "/v2/models/identity_fp32/infer", shmIdentityJSON(n, shmParams("in", 904, 4*n), shmParams("out", 100, 8000)))
		if code != 200 {
			t.Fatalf("infer: %d %s", code, b)
		}
		want := fmt.Sprintf(`{"model_name":"identity_fp32","model_version":"1","outputs":[{"name":"OUTPUT0","datatype":"FP32","shape":[1,%d],"parameters":{"shared_memory_region":"out","shared_memory_offset":100,"shared_memory_byte_size":%d}}]}`, n, 4*n)
		if string(b) != want || h.Get("Inference-Header-Content-Length") != "" {
			t.Errorf("response %s (Inference-Header-Content-Length %q)\nwant %s", b, h.Get("Inference-Header-Content-Length"), want)
		}
		if got := out.read(t, 100, 4*n); !bytes.Equal(got, data) {
			t.Errorf("output region holds other bytes than the input (first %x, want %x)", got[:8], data[:8])
		}
	})

	t.Run("binary extension and shared memory in one request", func(t *testing.T) {
		a, bb := restSimpleRows(1)
		in.write(t, 4096, restLE(bb))
		hdr := `{"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,16],"parameters":{"binary_data_size":64}},` +
			`{"name":"INPUT1","datatype":"INT32","shape":[1,16],"parameters":` + shmParams("in", 0, 64) + `}],` +
			`"outputs":[{"name":"OUTPUT0","parameters":{"binary_data":true}},{"name":"OUTPUT1","parameters":` + shmParams("out", 4096, 64) + `}]}`
		body, hl := restBinaryBody(hdr, restLE(a))
		code, h, b := restCall(t, ts, "POST", "/v2/models/simple/infer", body, "Inference-Header-Content-Length", hl)
		if code != 200 {
			t.Fatalf("infer: %d %s", code, b)
		}
		head, raws := restSplitBinary(t, "mixed", h, b)
		if !strings.Contains(string(head), `"shared_memory_region":"out"`) {
			t.Errorf("header %s does not place OUTPUT1 in shared memory", head)
		}
		sum, diff := make([]int32, 16), make([]int32, 16)
		for i := range 16 {
			sum[i], diff[i] = a[i]+bb[i], a[i]-bb[i]
		}
		if !bytes.Equal(raws["OUTPUT0"], restLE(sum)) {
			t.Errorf("OUTPUT0 (binary) = %x, want %x", raws["OUTPUT0"], restLE(sum))
		}
		if got := out.read(t, 4096, 64); !bytes.Equal(got, restLE(diff)) {
			t.Errorf("OUTPUT1 (shared memory) = %x, want %x", got, restLE(diff))
		}
	})

	t.Run("BYTES through shared memory", func(t *testing.T) {
		strs := restBytes("zero", "", "two, and more")
		in.write(t, 4096, strs)
		body := `{"inputs":[{"name":"INPUT0","datatype":"BYTES","shape":[1,3],"parameters":` + shmParams("in", 0, len(strs)) + `}],` +
			`"outputs":[{"name":"OUTPUT0","parameters":` + shmParams("out", 0, 200) + `}]}`
		code, _, b := restCall(t, ts, "POST", "/v2/models/identity_bytes/infer", body)
		if code != 200 {
			t.Fatalf("infer: %d %s", code, b)
		}
		// the BYTES size is what was written: the client needs it to read the elements
		if !strings.Contains(string(b), fmt.Sprintf(`"shared_memory_byte_size":%d`, len(strs))) {
			t.Errorf("response %s does not give the written size %d", b, len(strs))
		}
		if got := out.read(t, 0, len(strs)); !bytes.Equal(got, strs) {
			t.Errorf("output region = %q, want %q", got, strs)
		}
	})

	t.Run("bad requests are 400 naming what is wrong", func(t *testing.T) {
		infer := func(body string) (int, []byte) {
			code, _, b := restCall(t, ts, "POST", "/v2/models/identity_fp32/infer", body)
			return code, b
		}
		code, b := infer(shmIdentityJSON(n, shmParams("in", 0, 4*n), shmParams("out", 0, 4*n-1)))
		restWantError(t, "output region too small", code, b, 400, `output "OUTPUT0"`, "needs 4000 bytes", "shared_memory_byte_size is 3999")
		code, b = infer(shmIdentityJSON(n, shmParams("in", 0, 4*n), shmParams("out", 8000, 4*n)))
		restWantError(t, "output past the region", code, b, 400, `output "OUTPUT0"`, "offset 8000 + byte size 4000 is past the end of the region (8192 bytes)")
		code, b = infer(shmIdentityJSON(n, shmParams("in", 8192, 4*n), shmParams("out", 0, 4*n)))
		restWantError(t, "input offset past the end", code, b, 400, `input "INPUT0"`, `"in"`, "past the end of the region")
		code, b = infer(shmIdentityJSON(n, shmParams("gone", 0, 4*n), shmParams("out", 0, 4*n)))
		restWantError(t, "unregistered region", code, b, 400, `input "INPUT0"`, `shared memory region "gone" is not registered`)
		code, b = infer(shmIdentityJSON(n, shmParams("in", 0, 4*n-4), shmParams("out", 0, 4*n)))
		restWantError(t, "size not the shape's", code, b, 400, `input "INPUT0"`, "shared_memory_byte_size 3996 does not match shape [1,1000] of FP32")
		for _, key := range []string{"../x", "a/b", "/dev/shm/x", ".."} {
			code, b := shmRegisterREST(t, ts, "bad", key, 0, 8)
			restWantError(t, "register key "+key, code, b, 400, fmt.Sprintf("%q", key))
		}
		code, b = shmRegisterREST(t, ts, "in", in.key, 0, 8)
		restWantError(t, "duplicate register", code, b, 400, `"in" is already registered`)
		code, b = shmRegisterREST(t, ts, "big", in.key, 0, 3*4096+1)
		restWantError(t, "region past the object", code, b, 400, "past the end")
		code, b = shmRegisterREST(t, ts, "missing", "/ferry-e2e-no-such-object", 0, 8)
		restWantError(t, "missing object", code, b, 400, "no such shared memory object")
		code, _, b = restCall(t, ts, "POST", "/v2/systemsharedmemory/region/x/register", `{"key":"k","offset":0}`)
		restWantError(t, "register without byte_size", code, b, 400, `"byte_size"`)
		restStillServes(t, ts)
	})

	t.Run("CUDA shared memory lists none and refuses to register", func(t *testing.T) {
		code, _, b := restCall(t, ts, "GET", "/v2/cudasharedmemory/status", "")
		if code != 200 || string(b) != "[]" {
			t.Errorf("cuda status: %d %s, want 200 []", code, b)
		}
		code, _, b = restCall(t, ts, "POST", "/v2/cudasharedmemory/region/c/register", `{"raw_handle":{"b64":""},"device_id":0,"byte_size":8}`)
		restWantError(t, "cuda register", code, b, 400, "CUDA shared memory is not supported on this server (no GPU)")
		for _, p := range []string{"/v2/cudasharedmemory/unregister", "/v2/cudasharedmemory/region/c/unregister"} {
			if code, _, b := restCall(t, ts, "POST", p, ""); code != 200 {
				t.Errorf("%s: %d %s, want 200", p, code, b)
			}
		}
	})

	t.Run("unregister unmaps", func(t *testing.T) {
		if !shmMapped(t, in) {
			t.Fatal("the registered object is not mapped")
		}
		if code, _, b := restCall(t, ts, "POST", "/v2/systemsharedmemory/region/in/unregister", ""); code != 200 {
			t.Fatalf("unregister in: %d %s", code, b)
		}
		if shmMapped(t, in) {
			t.Error("still mapped after unregister")
		}
		if code, _, b := restCall(t, ts, "POST", "/v2/systemsharedmemory/unregister", ""); code != 200 {
			t.Fatalf("unregister all: %d %s", code, b)
		}
		if code, _, b := restCall(t, ts, "GET", "/v2/systemsharedmemory/status", ""); code != 200 || string(b) != "[]" {
			t.Errorf("status after unregistering all: %d %s, want []", code, b)
		}
		if shmMapped(t, out) {
			t.Error("out still mapped after unregistering all")
		}
	})
}

// shmGRPCParams are the shared_memory_* parameters of a gRPC tensor.
func shmGRPCParams(region string, offset, size int64) map[string]*inference.InferParameter {
	return map[string]*inference.InferParameter{
		"shared_memory_region":    {ParameterChoice: &inference.InferParameter_StringParam{StringParam: region}},
		"shared_memory_offset":    {ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: offset}},
		"shared_memory_byte_size": {ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: size}},
	}
}

func shmIdentityGRPC(n int64, in, out map[string]*inference.InferParameter) *inference.ModelInferRequest {
	return &inference.ModelInferRequest{ModelName: "identity_fp32",
		Inputs:  []*inference.ModelInferRequest_InferInputTensor{{Name: "INPUT0", Datatype: "FP32", Shape: []int64{1, n}, Parameters: in}},
		Outputs: []*inference.ModelInferRequest_InferRequestedOutputTensor{{Name: "OUTPUT0", Parameters: out}}}
}

func TestSharedMemoryGRPC(t *testing.T) {
	ts := startServer(t, shmRepo(t))
	ctx := t.Context()
	obj := newShmObject(t, 16384)
	const n = 512
	data := shmFloats(n)
	obj.write(t, 0, data)
	if _, err := ts.GRPC.SystemSharedMemoryRegister(ctx, &inference.SystemSharedMemoryRegisterRequest{Name: "io", Key: obj.key, ByteSize: 16384}); err != nil {
		t.Fatal(err)
	}

	st, err := ts.GRPC.SystemSharedMemoryStatus(ctx, &inference.SystemSharedMemoryStatusRequest{})
	if r := st.GetRegions()["io"]; err != nil || len(st.GetRegions()) != 1 || r.GetKey() != obj.key || r.GetByteSize() != 16384 || r.GetName() != "io" {
		t.Errorf("status = %v, %v", st, err)
	}
	_, err = ts.GRPC.SystemSharedMemoryStatus(ctx, &inference.SystemSharedMemoryStatusRequest{Name: "nope"})
	e2eWantStatus(t, "status of an unknown region", err, codes.NotFound, `"nope"`)

	res, err := ts.GRPC.ModelInfer(ctx, shmIdentityGRPC(n, shmGRPCParams("io", 0, 4*n), shmGRPCParams("io", 8192, 8192)))
	if err != nil {
		t.Fatalf("infer: %v", err)
	}
	o := res.GetOutputs()[0]
	p := o.GetParameters()
	if o.GetName() != "OUTPUT0" || o.GetDatatype() != "FP32" || fmt.Sprint(o.GetShape()) != fmt.Sprint([]int64{1, n}) ||
		p["shared_memory_region"].GetStringParam() != "io" || p["shared_memory_offset"].GetInt64Param() != 8192 || p["shared_memory_byte_size"].GetInt64Param() != 4*n {
		t.Errorf("output = %v", o)
	}
	// tritonclient finds an output's raw contents by its index: one entry per output.
	if len(res.GetRawOutputContents()) != 1 || len(res.GetRawOutputContents()[0]) != 0 {
		t.Errorf("raw_output_contents = %d entries (first %d bytes), want one empty entry", len(res.GetRawOutputContents()), len(res.GetRawOutputContents()[0]))
	}
	if got := obj.read(t, 8192, 4*n); !bytes.Equal(got, data) {
		t.Error("the output region does not hold the input's bytes")
	}

	// raw_input_contents carries the inputs not in shared memory, in order (Triton's rule)
	a, b := e2eSimpleInputs(1)
	obj.write(t, 4096, e2eLE(b))
	mixed := &inference.ModelInferRequest{ModelName: "simple",
		Inputs: []*inference.ModelInferRequest_InferInputTensor{
			{Name: "INPUT0", Datatype: "INT32", Shape: []int64{1, 16}},
			{Name: "INPUT1", Datatype: "INT32", Shape: []int64{1, 16}, Parameters: shmGRPCParams("io", 4096, 64)}},
		Outputs:          []*inference.ModelInferRequest_InferRequestedOutputTensor{{Name: "OUTPUT0", Parameters: shmGRPCParams("io", 12288, 64)}, {Name: "OUTPUT1"}},
		RawInputContents: [][]byte{e2eLE(a)}}
	res, err = ts.GRPC.ModelInfer(ctx, mixed)
	if err != nil {
		t.Fatalf("mixed infer: %v", err)
	}
	sum, diff := make([]int32, 16), make([]int32, 16)
	for i := range 16 {
		sum[i], diff[i] = a[i]+b[i], a[i]-b[i]
	}
	if raw := res.GetRawOutputContents(); len(raw) != 2 || len(raw[0]) != 0 || !bytes.Equal(raw[1], e2eLE(diff)) {
		t.Errorf("mixed raw_output_contents = %x, want [empty, OUTPUT1]", raw)
	}
	if got := obj.read(t, 12288, 64); !bytes.Equal(got, e2eLE(sum)) {
		t.Errorf("OUTPUT0 in shared memory = %x, want %x", got, e2eLE(sum))
	}

	_, err = ts.GRPC.ModelInfer(ctx, shmIdentityGRPC(n, shmGRPCParams("io", 0, 4*n), shmGRPCParams("io", 0, 100)))
	e2eWantStatus(t, "output region too small", err, codes.InvalidArgument, `output "OUTPUT0"`, "needs 2048 bytes", "shared_memory_byte_size is 100")
	_, err = ts.GRPC.ModelInfer(ctx, shmIdentityGRPC(n, shmGRPCParams("io", 16384, 4*n), nil))
	e2eWantStatus(t, "input offset past the end", err, codes.InvalidArgument, `input "INPUT0"`, "past the end")
	_, err = ts.GRPC.ModelInfer(ctx, shmIdentityGRPC(n, shmGRPCParams("gone", 0, 4*n), nil))
	e2eWantStatus(t, "unregistered region", err, codes.InvalidArgument, `"gone" is not registered`)
	_, err = ts.GRPC.SystemSharedMemoryRegister(ctx, &inference.SystemSharedMemoryRegisterRequest{Name: "io", Key: obj.key, ByteSize: 8})
	e2eWantStatus(t, "duplicate register", err, codes.AlreadyExists, `"io" is already registered`)
	for _, key := range []string{"../x", "a/b"} {
		_, err = ts.GRPC.SystemSharedMemoryRegister(ctx, &inference.SystemSharedMemoryRegisterRequest{Name: "bad", Key: key, ByteSize: 8})
		e2eWantStatus(t, "register key "+key, err, codes.InvalidArgument, fmt.Sprintf("%q", key), "must not contain '/'")
	}

	cst, err := ts.GRPC.CudaSharedMemoryStatus(ctx, &inference.CudaSharedMemoryStatusRequest{})
	if err != nil || len(cst.GetRegions()) != 0 {
		t.Errorf("cuda status = %v, %v; want no regions", cst, err)
	}
	_, err = ts.GRPC.CudaSharedMemoryRegister(ctx, &inference.CudaSharedMemoryRegisterRequest{Name: "c", ByteSize: 8})
	e2eWantStatus(t, "cuda register", err, codes.InvalidArgument, "CUDA shared memory is not supported on this server (no GPU)")
	if _, err := ts.GRPC.CudaSharedMemoryUnregister(ctx, &inference.CudaSharedMemoryUnregisterRequest{}); err != nil {
		t.Errorf("cuda unregister: %v", err)
	}
	e2eStillServes(t, ts)

	if _, err := ts.GRPC.SystemSharedMemoryUnregister(ctx, &inference.SystemSharedMemoryUnregisterRequest{Name: "io"}); err != nil {
		t.Fatal(err)
	}
	if shmMapped(t, obj) {
		t.Error("still mapped after unregister")
	}
}

// A client may shrink the object while it is registered: the pages past the new end
// then fault. The request fails cleanly and the server goes on.
func TestSharedMemoryTruncatedObject(t *testing.T) {
	ts := startServer(t, shmRepo(t))
	obj := newShmObject(t, 3*4096)
	if code, b := shmRegisterREST(t, ts, "r", obj.key, 0, 3*4096); code != 200 {
		t.Fatalf("register: %d %s", code, b)
	}
	if err := os.Truncate(obj.path, 0); err != nil {
		t.Fatal(err)
	}
	code, _, b := restCall(t, ts, "POST", "/v2/models/identity_fp32/infer", shmIdentityJSON(1024, shmParams("r", 0, 4096), `{}`))
	restWantError(t, "input from a truncated object", code, b, 400, `input "INPUT0"`, "memory fault", "truncated")
	code, _, b = restCall(t, ts, "POST", "/v2/models/identity_fp32/infer",
		`{"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}],"outputs":[{"name":"OUTPUT0","parameters":`+shmParams("r", 8192, 16)+`}]}`)
	restWantError(t, "output into a truncated object", code, b, 400, `output "OUTPUT0"`, "memory fault")
	restStillServes(t, ts)
	_, err := ts.GRPC.ModelInfer(t.Context(), shmIdentityGRPC(1024, shmGRPCParams("r", 0, 4096), nil))
	e2eWantStatus(t, "gRPC input from a truncated object", err, codes.InvalidArgument, "memory fault")
	e2eStillServes(t, ts)
}

// When the server stops, the regions clients left registered are unmapped.
func TestSharedMemoryUnmappedAtExit(t *testing.T) {
	ts := startServer(t, shmRepo(t))
	obj := newShmObject(t, 4096)
	if code, b := shmRegisterREST(t, ts, "r", obj.key, 0, 4096); code != 200 {
		t.Fatalf("register: %d %s", code, b)
	}
	if !shmMapped(t, obj) {
		t.Fatal("not mapped after register")
	}
	ts.stop()
	if shmMapped(t, obj) {
		t.Error("still mapped after the server stopped")
	}
}

// 32 clients use a region over REST and gRPC while it is unregistered and registered
// again, over and over: every request succeeds with the right bytes or fails with a
// clean 400 / INVALID_ARGUMENT, and the server still serves afterwards.
func TestSharedMemoryUnregisterWhileInUse(t *testing.T) {
	ts := startServer(t, shmRepo(t))
	const clients, n = 32, 16384 // 64 KiB per tensor
	in, out := newShmObject(t, 4*n), newShmObject(t, clients*4*n)
	data := shmFloats(n)
	in.write(t, 0, data)
	sizes := map[string]int{"in": 4 * n, "out": clients * 4 * n}
	keys := map[string]string{"in": in.key, "out": out.key}
	reg := func(name string) {
		shmRegisterREST(t, ts, name, keys[name], 0, sizes[name]) // may race a duplicate: fine
	}
	reg("in")
	reg("out")

	stop := time.Now().Add(10 * time.Second)
	if testing.Short() {
		stop = time.Now().Add(2 * time.Second)
	}
	f, err := os.Open(out.path) // the clients' view of their output slots
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ok, failed atomic.Int64
	var bad sync.Map // unexpected answers, by client
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for time.Now().Before(stop) {
				err := shmOneRequest(t, ts, c, n, c%2 == 0)
				switch {
				case err == nil:
					got := make([]byte, 4*n)
					if _, err := f.ReadAt(got, int64(c*4*n)); err != nil || !bytes.Equal(got, data) {
						bad.Store(c, fmt.Sprintf("a successful request left other bytes in its output slot (%v)", err))
						return
					}
					ok.Add(1)
				case strings.Contains(err.Error(), "is not registered"):
					failed.Add(1)
				default:
					bad.Store(c, err.Error())
					return
				}
			}
		})
	}
	for time.Now().Before(stop) {
		for _, name := range []string{"in", "out"} {
			restCall(t, ts, "POST", "/v2/systemsharedmemory/region/"+name+"/unregister", "")
			time.Sleep(time.Millisecond)
			reg(name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	bad.Range(func(k, v any) bool {
		t.Errorf("client %v: %v", k, v)
		return true
	})
	t.Logf("%d requests succeeded, %d failed cleanly while their region was unregistered", ok.Load(), failed.Load())
	if ok.Load() == 0 {
		t.Error("no request succeeded")
	}
	restStillServes(t, ts)
	e2eStillServes(t, ts)
}

// shmOneRequest sends client c's identity request (input from "in", output to its slot
// of "out") over REST or gRPC and returns its error, nil on success. It runs on the
// clients' goroutines, so it reports instead of failing the test.
func shmOneRequest(t *testing.T, ts *testServer, c, n int, rest bool) error {
	if rest {
		resp, err := http.Post(ts.URL+"/v2/models/identity_fp32/infer", "application/json",
			strings.NewReader(shmIdentityJSON(n, shmParams("in", 0, 4*n), shmParams("out", c*4*n, 4*n))))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode == 200 {
			return nil
		}
		if resp.StatusCode != 400 {
			return fmt.Errorf("status %d: %s", resp.StatusCode, body.Error)
		}
		return fmt.Errorf("%s", body.Error)
	}
	_, err := ts.GRPC.ModelInfer(t.Context(), shmIdentityGRPC(int64(n), shmGRPCParams("in", 0, int64(4*n)), shmGRPCParams("out", int64(c*4*n), int64(4*n))))
	if err != nil && status.Code(err) != codes.InvalidArgument {
		return fmt.Errorf("code %v: %v", status.Code(err), err)
	}
	return err
}
