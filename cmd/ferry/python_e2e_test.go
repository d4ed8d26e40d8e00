package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/inference"
)

// needPython3 skips a test when there is no python3 to run python-backend models.
func needPython3(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not on PATH; the python backend end-to-end tests need it: ", err)
	}
}

// writePythonModel writes repo/name/config.pbtxt and repo/name/1/model.py.
func writePythonModel(t testing.TB, repo, name, config, source string) {
	t.Helper()
	dir := filepath.Join(repo, name, "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.py"), []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, name, "config.pbtxt"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pyAddConfig is Triton's add_sub example config, for one datatype.
func pyAddConfig(name, dt string) string {
	return fmt.Sprintf(`name: "%s"
backend: "python"
max_batch_size: 8
input [
  { name: "INPUT0" data_type: TYPE_%[2]s dims: [ 4 ] },
  { name: "INPUT1" data_type: TYPE_%[2]s dims: [ 4 ] }
]
output [
  { name: "OUTPUT0" data_type: TYPE_%[2]s dims: [ 4 ] },
  { name: "OUTPUT1" data_type: TYPE_%[2]s dims: [ 4 ] }
]
`, name, dt)
}

// pyAddModel is Triton's add_sub example model.py, as its users write it.
const pyAddModel = `
import json
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.model_config = json.loads(args["model_config"])
        out0 = pb_utils.get_output_config_by_name(self.model_config, "OUTPUT0")
        self.dtype = pb_utils.triton_string_to_numpy(out0["data_type"])

    def execute(self, requests):
        responses = []
        for request in requests:
            in0 = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            in1 = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            out0 = pb_utils.Tensor("OUTPUT0", (in0 + in1).astype(self.dtype))
            out1 = pb_utils.Tensor("OUTPUT1", (in0 - in1).astype(self.dtype))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out0, out1]))
        return responses
`

// pyFaultyConfig: one INT32 in, the same out, and the marker file path for the model.
const pyFaultyConfig = `name: "faulty"
backend: "python"
input [ { name: "IN" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
parameters { key: "marker" value { string_value: "%s" } }
`

// pyFaultyModel echoes its input. -1 raises, -2 answers TritonError(INVALID_ARG), -3
// writes its pid to the marker file and sleeps (for the test to kill it), -4 exits the
// process (a crash). initialize() waits while the marker's .holdinit file exists.
const pyFaultyModel = `
import json, os, time
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.marker = json.loads(args["model_config"])["parameters"]["marker"]["string_value"]
        deadline = time.time() + 30
        while os.path.exists(self.marker + ".holdinit") and time.time() < deadline:
            time.sleep(0.005)

    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "IN")
            v = x.as_numpy().tolist()[0]
            if v == -1:
                raise ValueError("magic -1 is not allowed")
            if v == -2:
                out.append(pb_utils.InferenceResponse(error=pb_utils.TritonError("-2 is out of range", pb_utils.TritonError.INVALID_ARG)))
                continue
            if v == -4:
                os._exit(70)
            if v == -3:
                with open(self.marker + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.rename(self.marker + ".tmp", self.marker)
                time.sleep(60)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", x.as_numpy())]))
        return out
`

// pyBatchConfig: the dynamic batcher waits (up to 5 s, Triton's fixed wait) until
// max_batch_size requests of one row are queued, so 4 concurrent requests form exactly
// one batch.
const pyBatchConfig = `name: "batched"
backend: "python"
max_batch_size: 4
input [ { name: "IN" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] }, { name: "REQUESTS" data_type: TYPE_INT32 dims: [ 1 ] } ]
dynamic_batching { max_queue_delay_microseconds: 5000000 }
parameters { key: "adaptive_batching" value { string_value: "false" } }
`

// pyBatchModel answers each request with its input and how many requests execute() got.
const pyBatchModel = `
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "IN").as_numpy()
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", x), pb_utils.Tensor("REQUESTS", [[len(requests)]] * len(x))]))
        return out
`

// pythonRepo serves every python test model; marker is the faulty model's pid file.
func pythonRepo(t *testing.T) (repo, marker string) {
	repo = t.TempDir()
	marker = filepath.Join(t.TempDir(), "pid")
	writePythonModel(t, repo, "add_int32", pyAddConfig("add_int32", "INT32"), pyAddModel)
	writePythonModel(t, repo, "add_fp32", pyAddConfig("add_fp32", "FP32"), pyAddModel)
	writePythonModel(t, repo, "faulty", fmt.Sprintf(pyFaultyConfig, marker), pyFaultyModel)
	writePythonModel(t, repo, "batched", pyBatchConfig, pyBatchModel)
	return repo, marker
}

// pyInfer posts one JSON request and decodes the outputs' data by name.
func pyInfer(t *testing.T, url, model, body string) (int, map[string][]float64, string) {
	t.Helper()
	code, _, b := httpDo(t, "POST", url+"/v2/models/"+model+"/infer", "application/json", strings.NewReader(body))
	var resp struct {
		Outputs []struct {
			Name     string    `json:"name"`
			Datatype string    `json:"datatype"`
			Data     []float64 `json:"data"`
		} `json:"outputs"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatalf("%s: response %s: %v", model, b, err)
	}
	outs := map[string][]float64{}
	for _, o := range resp.Outputs {
		outs[o.Name] = o.Data
	}
	return code, outs, resp.Error
}

// oneInput is a request of one INT32 value: shape [1, 1] for a batching model, [1] else.
func oneInput(v int, batched bool) string {
	shape := "[1]"
	if batched {
		shape = "[1,1]"
	}
	return fmt.Sprintf(`{"inputs":[{"name":"IN","shape":%s,"datatype":"INT32","data":[%d]}]}`, shape, v)
}

// TestPythonAddOverRESTAndGRPC: the add_sub model adds and subtracts INT32 and FP32
// tensors over both protocols.
func TestPythonAddOverRESTAndGRPC(t *testing.T) {
	needPython3(t)
	repo, _ := pythonRepo(t)
	ts := startServer(t, repo)
	for _, tc := range []struct {
		dt              string
		a, b, sum, diff []float64
	}{
		{"INT32", []float64{1, 2, -3, 2147483647}, []float64{10, 5, 3, 1},
			[]float64{11, 7, 0, -2147483648}, []float64{-9, -3, -6, 2147483646}}, // int32 wraps, as numpy's does
		{"FP32", []float64{1, 2.5, -3, 40}, []float64{10, 0.25, 3, -2},
			[]float64{11, 2.75, 0, 38}, []float64{-9, 2.25, -6, 42}},
	} {
		model := "add_" + strings.ToLower(tc.dt)
		t.Run(tc.dt+"/REST", func(t *testing.T) {
			in := func(name string, vs []float64) string {
				d, _ := json.Marshal(vs)
				return fmt.Sprintf(`{"name":%q,"shape":[1,4],"datatype":%q,"data":%s}`, name, tc.dt, d)
			}
			body := `{"inputs":[` + in("INPUT0", tc.a) + "," + in("INPUT1", tc.b) + `]}`
			code, outs, msg := pyInfer(t, ts.URL, model, body)
			if code != 200 {
				t.Fatalf("status %d: %s", code, msg)
			}
			if !floatsEqual(outs["OUTPUT0"], tc.sum) || !floatsEqual(outs["OUTPUT1"], tc.diff) {
				t.Errorf("outputs = %v, want OUTPUT0 %v and OUTPUT1 %v", outs, tc.sum, tc.diff)
			}
		})
		t.Run(tc.dt+"/gRPC", func(t *testing.T) {
			raw := func(vs []float64) []byte {
				var out []byte
				for _, v := range vs {
					if tc.dt == "INT32" {
						out = binary.LittleEndian.AppendUint32(out, uint32(int32(v)))
					} else {
						out = binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(v)))
					}
				}
				return out
			}
			req := &inference.ModelInferRequest{ModelName: model, Inputs: []*inference.ModelInferRequest_InferInputTensor{
				{Name: "INPUT0", Datatype: tc.dt, Shape: []int64{1, 4}},
				{Name: "INPUT1", Datatype: tc.dt, Shape: []int64{1, 4}},
			}, RawInputContents: [][]byte{raw(tc.a), raw(tc.b)}}
			res, err := ts.GRPC.ModelInfer(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range [][]float64{tc.sum, tc.diff} {
				o := res.GetOutputs()[i]
				got := decodeRaw(tc.dt, res.GetRawOutputContents()[i])
				if o.GetName() != fmt.Sprintf("OUTPUT%d", i) || o.GetDatatype() != tc.dt || !floatsEqual(got, want) {
					t.Errorf("output %d = %s %s %v, want %v", i, o.GetName(), o.GetDatatype(), got, want)
				}
			}
		})
	}
}

func decodeRaw(dt string, b []byte) []float64 {
	var out []float64
	for i := 0; i+4 <= len(b); i += 4 {
		u := binary.LittleEndian.Uint32(b[i:])
		if dt == "INT32" {
			out = append(out, float64(int32(u)))
		} else {
			out = append(out, float64(math.Float32frombits(u)))
		}
	}
	return out
}

func floatsEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPythonBatchIsOneExecute: requests the dynamic batcher packs together reach one
// execute() call as a list, and each gets its own answer.
func TestPythonBatchIsOneExecute(t *testing.T) {
	needPython3(t)
	repo, _ := pythonRepo(t)
	ts := startServer(t, repo)
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			code, outs, msg := pyInfer(t, ts.URL, "batched", oneInput(100+c, true))
			if code != 200 {
				t.Errorf("client %d: %d %s", c, code, msg)
				return
			}
			if !floatsEqual(outs["OUT"], []float64{float64(100 + c)}) || !floatsEqual(outs["REQUESTS"], []float64{4}) {
				t.Errorf("client %d: outputs %v, want OUT [%d] from an execute() of 4 requests", c, outs, 100+c)
			}
		})
	}
	wg.Wait()
}

// TestPythonErrorsAndTheServerKeepsServing: an exception in execute() is a 500 naming
// it, a TritonError(INVALID_ARG) a 400, over both protocols; the model keeps serving.
func TestPythonErrorsAndTheServerKeepsServing(t *testing.T) {
	needPython3(t)
	repo, _ := pythonRepo(t)
	ts := startServer(t, repo)
	for _, tc := range []struct {
		v        int
		code     int
		grpcCode codes.Code
		msg      string
	}{
		{-1, 500, codes.Internal, "execute() raised ValueError: magic -1 is not allowed (model.py:"},
		{-2, 400, codes.InvalidArgument, "python model 'faulty' (instance faulty_0_0): -2 is out of range"},
	} {
		code, _, msg := pyInfer(t, ts.URL, "faulty", oneInput(tc.v, false))
		if code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("REST %d: %d %q, want %d with %q", tc.v, code, msg, tc.code, tc.msg)
		}
		_, err := ts.GRPC.ModelInfer(t.Context(), &inference.ModelInferRequest{ModelName: "faulty",
			Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "IN", Datatype: "INT32", Shape: []int64{1}}},
			RawInputContents: [][]byte{e2eLE([]int32{int32(tc.v)})}})
		if st := status.Convert(err); st.Code() != tc.grpcCode || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("gRPC %d: %v, want %s with %q", tc.v, err, tc.grpcCode, tc.msg)
		}
		if code, outs, msg := pyInfer(t, ts.URL, "faulty", oneInput(7, false)); code != 200 || !floatsEqual(outs["OUT"], []float64{7}) {
			t.Errorf("after %d: %d %v %s", tc.v, code, outs, msg)
		}
	}
}

// TestPythonChildKilledMidRequest: killing the model's process fails the request in
// flight with the model and signal named; the next request runs on a restarted process;
// no zombie is left, during or after the server.
func TestPythonChildKilledMidRequest(t *testing.T) {
	needPython3(t)
	repo, marker := pythonRepo(t)
	ts := startServer(t, repo)
	type reply struct {
		code int
		msg  string
	}
	done := make(chan reply, 1)
	go func() {
		code, _, msg := pyInfer(t, ts.URL, "faulty", oneInput(-3, false))
		done <- reply{code, msg}
	}()
	pid := waitForPID(t, marker)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r := <-done
	for _, want := range []string{"python model 'faulty'", fmt.Sprintf("pid %d", pid), "signal: killed", "during execute()"} {
		if r.code != 500 || !strings.Contains(r.msg, want) {
			t.Errorf("in-flight request: %d %q, want 500 mentioning %q", r.code, r.msg, want)
		}
	}
	if code, outs, msg := pyInfer(t, ts.URL, "faulty", oneInput(9, false)); code != 200 || !floatsEqual(outs["OUT"], []float64{9}) {
		t.Fatalf("request after the crash: %d %v %s", code, outs, msg)
	}
	runners := pythonChildren(t)
	if len(runners) != 4 { // one per model: add_int32, add_fp32, faulty, batched
		t.Errorf("python children while serving: %v, want 4", runners)
	}
	if state, ok := runners[pid]; ok {
		t.Errorf("killed child %d is still there (%s)", pid, state)
	}
	for p, state := range runners {
		if state == "Z" {
			t.Errorf("zombie child %d", p)
		}
	}
	ts.stop()
	if left := pythonChildren(t); len(left) > 0 {
		t.Errorf("python children after the server stopped: %v", left)
	}
}

func waitForPID(t *testing.T, marker string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(marker); err == nil {
			pid, err := strconv.Atoi(string(b))
			if err != nil {
				t.Fatalf("marker %q: %v", b, err)
			}
			return pid
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the model never started its slow request")
	return 0
}

// pythonChildren lists this process's children running the python backend's runner,
// with their /proc state letter ("Z": a zombie).
func pythonChildren(t *testing.T) map[int]string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("reading /proc: %v", err)
	}
	me := os.Getpid()
	out := map[int]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(me) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if f[0] == "Z" || strings.Contains(string(cmdline), "ferry_python_runner.py") { // a zombie has no cmdline
			out[pid] = f[0]
		}
	}
	return out
}

// TestPythonNotReadyWhileItsProcessRestarts: from a crash of a model's process until the
// new one has run initialize(), the model is not ready (ready endpoint, index) and,
// with strict readiness, neither is the server; a request that arrives meanwhile waits
// for the restart and succeeds. A second crash soon after is backed off, and a request
// then fails at once with a 503 saying when the process starts again.
func TestPythonNotReadyWhileItsProcessRestarts(t *testing.T) {
	needPython3(t)
	repo, marker := pythonRepo(t)
	ts := startServer(t, repo)
	status := func(path string) int {
		code, _, _ := httpDo(t, "GET", ts.URL+path, "", nil)
		return code
	}
	serverReady := func() int { return status("/v2/health/ready") }
	modelReady := func() int { return status("/v2/models/faulty/ready") }
	if s, m := serverReady(), modelReady(); s != 200 || m != 200 {
		t.Fatalf("before the crash: server ready %d, model ready %d", s, m)
	}
	if err := os.WriteFile(marker+".holdinit", nil, 0o644); err != nil { // the restart waits
		t.Fatal(err)
	}
	if code, _, msg := pyInfer(t, ts.URL, "faulty", oneInput(-4, false)); code != 500 || !strings.Contains(msg, "exit status 70") {
		t.Fatalf("request that crashes the process: %d %s", code, msg)
	}
	if s, m := serverReady(), modelReady(); s != 503 || m != 503 {
		t.Errorf("while the process restarts: server ready %d, model ready %d, want 503 and 503", s, m)
	}
	if code := status("/v2/models/add_int32/ready"); code != 200 {
		t.Errorf("another model while faulty restarts: ready %d", code)
	}
	for _, e := range repositoryIndex(t, ts.URL) {
		if e.Name == "faulty" && (e.State != "UNAVAILABLE" || !strings.Contains(e.Reason, "a new process is starting")) {
			t.Errorf("index while the process restarts: %+v, want UNAVAILABLE because a new process is starting", e)
		}
	}
	type reply struct {
		code int
		outs map[string][]float64
		msg  string
	}
	done := make(chan reply, 1)
	go func() {
		code, outs, msg := pyInfer(t, ts.URL, "faulty", oneInput(5, false))
		done <- reply{code, outs, msg}
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("request during the restart answered before the process was up: %+v", r)
	default:
	}
	if err := os.Remove(marker + ".holdinit"); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.code != 200 || !floatsEqual(r.outs["OUT"], []float64{5}) {
		t.Errorf("request that waited for the restart: %+v", r)
	}
	if s, m := serverReady(), modelReady(); s != 200 || m != 200 {
		t.Errorf("after the restart: server ready %d, model ready %d", s, m)
	}

	// Within 5 s of the restart: the next start waits a back-off, which requests do not.
	if code, _, msg := pyInfer(t, ts.URL, "faulty", oneInput(-4, false)); code != 500 {
		t.Fatalf("second crash: %d %s", code, msg)
	}
	if code, _, msg := pyInfer(t, ts.URL, "faulty", oneInput(6, false)); code != 503 || !strings.Contains(msg, "the next start is in") {
		t.Errorf("request during the back-off: %d %s, want 503 naming the next start", code, msg)
	}
	waitFor(t, func() bool { return modelReady() == 200 })
	if code, outs, msg := pyInfer(t, ts.URL, "faulty", oneInput(7, false)); code != 200 || !floatsEqual(outs["OUT"], []float64{7}) {
		t.Errorf("after the back-off: %d %v %s", code, outs, msg)
	}
}
