package python

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

const addConfig = `name: "add"
backend: "python"
max_batch_size: 8
input [
  { name: "INPUT0" data_type: TYPE_%[1]s dims: [ 4 ] },
  { name: "INPUT1" data_type: TYPE_%[1]s dims: [ 4 ] }
]
output [
  { name: "OUTPUT0" data_type: TYPE_%[1]s dims: [ 4 ] },
  { name: "OUTPUT1" data_type: TYPE_%[1]s dims: [ 4 ] }
]
`

// addModel is Triton's add_sub example, written as its users write it.
const addModel = `
import json
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.model_config = json.loads(args["model_config"])
        out0 = pb_utils.get_output_config_by_name(self.model_config, "OUTPUT0")
        self.out0_dtype = pb_utils.triton_string_to_numpy(out0["data_type"])
        self.args = args

    def execute(self, requests):
        responses = []
        for request in requests:
            in0 = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            in1 = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            out0 = pb_utils.Tensor("OUTPUT0", (in0 + in1).astype(self.out0_dtype))
            out1 = pb_utils.Tensor("OUTPUT1", (in0 - in1).astype(self.out0_dtype))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out0, out1]))
        return responses

    def finalize(self):
        pass
`

func addInputs(dt tensor.DType, rows int, a, b []float64) []*tensor.Tensor {
	enc := func(vs []float64) []byte {
		if dt == tensor.Int32 {
			out := make([]int32, len(vs))
			for i, v := range vs {
				out[i] = int32(v)
			}
			return int32s(out...)
		}
		out := make([]float32, len(vs))
		for i, v := range vs {
			out[i] = float32(v)
		}
		return fp32s(out...)
	}
	shape := tensor.Shape{int64(rows), 4}
	return []*tensor.Tensor{tens("INPUT0", dt, shape, enc(a)), tens("INPUT1", dt, shape, enc(b))}
}

func decode(t testing.TB, x *tensor.Tensor) []float64 {
	t.Helper()
	vs, err := x.Float64s()
	if err != nil {
		t.Fatalf("output %s: %v", x.Name, err)
	}
	return vs
}

func TestAddTwoTensors(t *testing.T) {
	needPython(t)
	a := []float64{1, 2, 3, 4, -5, 6.5, 7, 2147483647}
	b := []float64{10, 20, 30, 40, 50, 0.25, -7, 1}
	for _, tc := range []struct {
		dt        tensor.DType
		sum, diff []float64
	}{
		// INT32 wraps as numpy's int32 does.
		{tensor.Int32, []float64{11, 22, 33, 44, 45, 6, 0, -2147483648}, []float64{-9, -18, -27, -36, -55, 6, 14, 2147483646}},
		{tensor.FP32, []float64{11, 22, 33, 44, 45, 6.75, 0, float64(float32(2147483648))}, []float64{-9, -18, -27, -36, -55, 6.25, 14, float64(float32(2147483646))}},
	} {
		for _, fl := range flavors(t) {
			t.Run(tc.dt.String()+"/"+fl.name, func(t *testing.T) {
				if fl.skip != "" {
					t.Skip(fl.skip)
				}
				m := writeModel(t, "add", sprintf(addConfig, tc.dt), addModel)
				in := m.mustOpen(t, fl.opts)
				out, err := in.Execute(context.Background(), addInputs(tc.dt, 2, a, b), nil)
				if err != nil {
					t.Fatalf("Execute: %v", err)
				}
				if len(out) != 2 || out[0].Name != "OUTPUT0" || out[1].Name != "OUTPUT1" {
					t.Fatalf("outputs = %v, want OUTPUT0 and OUTPUT1", out)
				}
				for i, want := range [][]float64{tc.sum, tc.diff} {
					if got := decode(t, out[i]); !equal(got, want) {
						t.Errorf("%s = %v, want %v", out[i].Name, got, want)
					}
					if out[i].DType != tc.dt || !out[i].Shape.Equal(tensor.Shape{2, 4}) {
						t.Errorf("%s is %s%v, want %s[2,4]", out[i].Name, out[i].DType, out[i].Shape, tc.dt)
					}
				}
			})
		}
	}
}

func sprintf(format string, dt tensor.DType) string {
	return strings.ReplaceAll(format, "%[1]s", dt.String())
}

func equal(a, b []float64) bool {
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

const echoConfig = `name: "echo"
backend: "python"
max_batch_size: 8
input [ { name: "IN" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [
  { name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] },
  { name: "REQUESTS" data_type: TYPE_INT32 dims: [ 1 ] }
]
parameters { key: "marker" value { string_value: "%s" } }
`

// echoModel answers each request with its input and the number of requests execute()
// received. Magic inputs: -1 raises, -2 answers a TritonError(INVALID_ARG), -3 writes
// the pid to the marker file and sleeps, -4 waits for the test's release file, -5
// returns FP64 for OUT, -6 exits the process (a crash). initialize() fails while the
// marker's .failinit file exists and waits while its .holdinit file does.
const echoModel = `
import json, os, time
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        self.marker = cfg["parameters"]["marker"]["string_value"]
        self.name = args["model_instance_name"]
        if os.path.exists(self.marker + ".failinit"):
            raise RuntimeError("told to fail")
        deadline = time.time() + 30
        while os.path.exists(self.marker + ".holdinit") and time.time() < deadline:
            time.sleep(0.005)

    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "IN").as_numpy()
            v = x.tolist()[0][0]
            if v == -1:
                raise ValueError("magic -1")
            if v == -2:
                out.append(pb_utils.InferenceResponse(error=pb_utils.TritonError("bad value -2", pb_utils.TritonError.INVALID_ARG)))
                continue
            if v == -3:
                with open(self.marker + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.rename(self.marker + ".tmp", self.marker)
                time.sleep(60)
            if v == -6:
                os._exit(70)
            if v == -4:
                open(self.marker + ".busy", "w").close()
                deadline = time.time() + 30
                while not os.path.exists(self.marker + ".release") and time.time() < deadline:
                    time.sleep(0.005)
            n = [[len(requests)]] * len(x)
            if v == -5:
                out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", pb_utils.NDArray.from_list([[1.5]], "float64"))]))
                continue
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", x), pb_utils.Tensor("REQUESTS", n)]))
        return out

    def finalize(self):
        with open(self.marker + ".finalized", "w") as f:
            f.write(self.name)
`

func openEcho(t *testing.T, opts Options) (*Instance, string) {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "marker")
	m := writeModel(t, "echo", strings.Replace(echoConfig, "%s", marker, 1), echoModel)
	return m.mustOpen(t, opts), marker
}

func one(v int32) []*tensor.Tensor {
	return []*tensor.Tensor{tens("IN", tensor.Int32, tensor.Shape{1, 1}, int32s(v))}
}

func int32At(t testing.TB, out []*tensor.Tensor, name string) int32 {
	t.Helper()
	for _, x := range out {
		if x.Name == name {
			return int32(binary.LittleEndian.Uint32(x.Data))
		}
	}
	t.Fatalf("no output %q in %v", name, out)
	return 0
}

// TestBatchIsAListOfRequests: execute() gets the batch as one list; each request gets
// its own outputs back.
func TestBatchIsAListOfRequests(t *testing.T) {
	needPython(t)
	in, _ := openEcho(t, Options{})
	reqs := [][]*tensor.Tensor{one(7), one(8), one(9)}
	outs, errs := in.ExecuteRequests(context.Background(), reqs, [][]string{nil, {"OUT"}, {"REQUESTS", "OUT"}})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	for i, want := range []int32{7, 8, 9} {
		if got := int32At(t, outs[i], "OUT"); got != want {
			t.Errorf("request %d OUT = %d, want %d", i, got, want)
		}
	}
	if got := int32At(t, outs[0], "REQUESTS"); got != 3 {
		t.Errorf("execute() saw %d requests, want 3", got)
	}
	if len(outs[1]) != 1 || outs[2][0].Name != "REQUESTS" {
		t.Errorf("requested outputs not honoured: %v / %v", outs[1], outs[2])
	}
}

// TestErrorsStayWithTheirRequest: an exception or a TritonError fails its own request;
// the others of the batch succeed, and the instance keeps serving.
func TestErrorsStayWithTheirRequest(t *testing.T) {
	needPython(t)
	in, _ := openEcho(t, Options{})
	outs, errs := in.ExecuteRequests(context.Background(), [][]*tensor.Tensor{one(1), one(-1), one(-2), one(4), one(-5)}, nil)
	for i, want := range []int32{1, 0, 0, 4} {
		if want != 0 && (errs[i] != nil || int32At(t, outs[i], "OUT") != want) {
			t.Errorf("request %d: %v, want OUT %d", i, errs[i], want)
		}
	}
	var me *ModelError
	if !errors.As(errs[1], &me) || !strings.Contains(me.Message, "ValueError: magic -1") || me.InvalidInput() {
		t.Errorf("request raising ValueError: err = %v", errs[1])
	}
	if !errors.As(errs[2], &me) || me.Message != "bad value -2" || !me.InvalidInput() {
		t.Errorf("request answered with TritonError(INVALID_ARG): err = %v", errs[2])
	}
	if errs[4] == nil || !strings.Contains(errs[4].Error(), `output "OUT" as FP64; the model config says INT32`) {
		t.Errorf("request with a mistyped output: err = %v", errs[4])
	}
	if _, err := in.Execute(context.Background(), one(-1), nil); err == nil || !strings.Contains(err.Error(), "execute() raised ValueError: magic -1 (model.py:") {
		t.Errorf("single request raising: err = %v", err)
	}
	if out, err := in.Execute(context.Background(), one(5), nil); err != nil || int32At(t, out, "OUT") != 5 {
		t.Errorf("after the errors: %v %v", out, err)
	}
}

// TestCrashFailsInFlightAndRestarts: killing the child mid-request fails that request
// with the model, pid and signal; the next request runs on a restarted process; no
// zombie is left.
func TestCrashFailsInFlightAndRestarts(t *testing.T) {
	needPython(t)
	logs := &logBuffer{}
	in, marker := openEcho(t, Options{Logger: logs.logger()})
	first := in.pid()
	errc := make(chan error, 1)
	go func() {
		_, err := in.Execute(context.Background(), one(-3), nil)
		errc <- err
	}()
	var pid int
	waitFor(t, "the model to start sleeping", func() bool {
		b, err := os.ReadFile(marker)
		pid, _ = strconv.Atoi(string(b))
		return err == nil
	})
	if pid != first {
		t.Fatalf("model runs in pid %d, instance reports %d", pid, first)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	var pe *ProcessError
	if !errors.As(err, &pe) || pe.PID != pid || pe.Status != "signal: killed" {
		t.Fatalf("in-flight request: err = %v, want a ProcessError for pid %d killed", err, pid)
	}
	for _, s := range []string{"python model 'echo'", "signal: killed", "execute()"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	out, err := in.Execute(context.Background(), one(11), nil)
	if err != nil || int32At(t, out, "OUT") != 11 {
		t.Fatalf("request after the crash: %v %v", out, err)
	}
	if second := in.pid(); second == first || second == 0 {
		t.Errorf("pid after restart = %d, before %d", second, first)
	}
	for p, state := range children(t) {
		if state == "Z" {
			t.Errorf("zombie child %d", p)
		}
		if p == first {
			t.Errorf("killed child %d still listed (%s)", p, state)
		}
	}
	if !strings.Contains(logs.String(), "python process exited; restarting it") {
		t.Errorf("the crash is not in the log:\n%s", logs)
	}
}

// TestCancelledCallKeepsTheProtocolInStep: a caller that leaves while execute() runs
// gets its error at once; the next call gets its own results, not the abandoned ones.
func TestCancelledCallKeepsTheProtocolInStep(t *testing.T) {
	needPython(t)
	in, marker := openEcho(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := in.Execute(ctx, one(-4), nil)
		errc <- err
	}()
	waitFor(t, "execute() to start", func() bool { _, err := os.Stat(marker + ".busy"); return err == nil })
	cancel()
	// execute() is still blocked on the release file, so this returns without waiting for it.
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: err = %v, want context.Canceled", err)
	}
	if err := os.WriteFile(marker+".release", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := in.Execute(context.Background(), one(12), nil)
	if err != nil || int32At(t, out, "OUT") != 12 {
		t.Fatalf("next call: %v %v", out, err)
	}
}

// TestCloseRunsFinalize: Close calls finalize() and leaves no process behind.
func TestCloseRunsFinalize(t *testing.T) {
	needPython(t)
	in, marker := openEcho(t, Options{})
	pid := in.pid()
	if err := in.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if b, err := os.ReadFile(marker + ".finalized"); err != nil || string(b) != "echo_0_0" {
		t.Errorf("finalize() marker: %q %v, want the instance name echo_0_0", b, err)
	}
	if _, ok := children(t)[pid]; ok {
		t.Errorf("child %d still exists after Close", pid)
	}
	if _, err := in.Execute(context.Background(), one(1), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Execute after Close: err = %v, want ErrClosed", err)
	}
	if err := in.Ready(); !errors.Is(err, ErrClosed) {
		t.Errorf("Ready after Close = %v", err)
	}
}

// TestCloseKillsAHangingFinalize: finalize() that does not return within the timeout
// gets the process killed, and Close says so.
func TestCloseKillsAHangingFinalize(t *testing.T) {
	needPython(t)
	m := writeModel(t, "hang", echoOnlyConfig("hang"), echoWithFinalize("time", "time.sleep(60)"))
	in := m.mustOpen(t, Options{FinalizeTimeout: 200 * time.Millisecond})
	pid := in.pid()
	start := time.Now()
	err := in.Close()
	if err == nil || !strings.Contains(err.Error(), "finalize() did not finish within 200ms") {
		t.Errorf("Close: err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %s", d)
	}
	if _, ok := children(t)[pid]; ok {
		t.Errorf("child %d still exists after Close", pid)
	}
}

func echoOnlyConfig(name string) string {
	return `name: "` + name + `"
backend: "python"
input [ { name: "IN" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "IN" data_type: TYPE_INT32 dims: [ 1 ] } ]
`
}

// TestFailedRestartMakesTheInstanceUnready: when initialize() fails on restart, the
// instance reports why, requests fail at once, and a later restart recovers.
func TestFailedRestartMakesTheInstanceUnready(t *testing.T) {
	needPython(t)
	in, marker := openEcho(t, Options{})
	if err := os.WriteFile(marker+".failinit", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(in.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the instance to report the failed restart", func() bool {
		err := in.Ready()
		return err != nil && strings.Contains(err.Error(), "initialize failed: RuntimeError: told to fail")
	})
	if _, err := in.Execute(context.Background(), one(1), nil); err == nil || !strings.Contains(err.Error(), "told to fail") {
		t.Errorf("Execute while the restart fails: err = %v", err)
	}
	if err := os.Remove(marker + ".failinit"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the instance to restart", func() bool { return in.Ready() == nil && in.pid() != 0 })
	if out, err := in.Execute(context.Background(), one(3), nil); err != nil || int32At(t, out, "OUT") != 3 {
		t.Errorf("after recovery: %v %v", out, err)
	}
}

// TestOpenErrors: each way a model can fail to start gives an error that says why.
func TestOpenErrors(t *testing.T) {
	needPython(t)
	for _, tc := range []struct {
		name, config, source string
		opts                 Options
		want                 string
	}{
		{"interpreter missing", echoOnlyConfig("m"), "", Options{Interpreter: "no-such-python-here"},
			`interpreter "no-such-python-here" not found`},
		{"syntax error", echoOnlyConfig("m"), "def broken(:\n", Options{},
			"initialize failed: SyntaxError: invalid syntax (model.py, line 1)"},
		{"no model class", echoOnlyConfig("m"), "x = 1\n", Options{},
			"model.py defines no class TritonPythonModel"},
		{"initialize raises", echoOnlyConfig("m"), "class TritonPythonModel:\n    def initialize(self, args):\n        raise KeyError('weights')\n", Options{},
			"initialize failed: KeyError: 'weights' (model.py:3 in initialize)"},
		{"interpreter exits", echoOnlyConfig("m"), "import os, sys\nsys.stderr.write('cannot go on\\n')\nsys.stderr.flush()\nos._exit(3)\n", Options{},
			"the process ended (exit status 3) before initialize() finished; its last stderr lines:\n  cannot go on"},
		{"decoupled", echoOnlyConfig("m") + "model_transaction_policy { decoupled: true }\n", "", Options{},
			"decoupled models are not supported"},
		{"conda env", echoOnlyConfig("m") + `parameters { key: "EXECUTION_ENV_PATH" value { string_value: "env.tar.gz" } }` + "\n", "", Options{},
			"conda-pack environments are not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := writeModel(t, "m", tc.config, tc.source)
			_, err := m.open(t, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: err = %v\nwant it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "python model 'm'") {
				t.Errorf("error %q does not name the model", err)
			}
		})
	}
}

// TestOutputChecks: outputs execute() returns are checked against the config.
func TestOutputChecks(t *testing.T) {
	needPython(t)
	m := writeModel(t, "chk", `name: "chk"
backend: "python"
input [ { name: "IN" data_type: TYPE_INT32 dims: [ 2 ] } ]
output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 2 ] }, { name: "AUX" data_type: TYPE_FP32 dims: [ 2 ] } ]
`, `
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            v = pb_utils.get_input_tensor_by_name(r, "IN").as_numpy().tolist()[0]
            t = {
                0: [pb_utils.Tensor("OUT", [1.5, 2.5])],
                1: [pb_utils.Tensor("OTHER", [1.5, 2.5])],
                2: [pb_utils.Tensor("OUT", [1.5, 2.5, 3.5])],
                3: [pb_utils.Tensor("OUT", [1, 2], "INT64")],
            }[v]
            out.append(pb_utils.InferenceResponse(t))
        return out
`)
	in := m.mustOpen(t, Options{})
	req := func(v int32) []*tensor.Tensor {
		return []*tensor.Tensor{tens("IN", tensor.Int32, tensor.Shape{2}, int32s(v, 0))}
	}
	out, err := in.Execute(context.Background(), req(0), []string{"OUT"})
	if err != nil || len(out) != 1 || out[0].DType != tensor.FP32 || !equal(decode(t, out[0]), []float64{1.5, 2.5}) {
		t.Fatalf("list output typed from the config: %v %v", out, err)
	}
	for _, tc := range []struct {
		v    int32
		want []string
		msg  string
	}{
		{0, []string{"AUX"}, `returned no output "AUX", which the request asked for`},
		{1, nil, `returned output "OTHER", which the model config does not list`},
		{2, nil, `returned output "OUT" with shape [3]; the model config says [2]`},
		{3, nil, `returned output "OUT" as INT64; the model config says FP32`},
	} {
		if _, err := in.Execute(context.Background(), req(tc.v), tc.want); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("case %d: err = %v, want %q", tc.v, err, tc.msg)
		}
	}
}

// TestOutputsAreLogged: stdout, stderr and pb_utils.Logger reach the log with the
// model's name and the right level.
func TestOutputsAreLogged(t *testing.T) {
	needPython(t)
	logs := &logBuffer{}
	m := writeModel(t, "chatty", echoOnlyConfig("chatty"), `
import sys
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def initialize(self, args):
        print("hello from stdout")
        sys.stderr.write("hello from stderr\n")
        pb_utils.Logger.log_error("an error line")

    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.get_input_tensor_by_name(r, "IN")]) for r in requests]
`)
	in := m.mustOpen(t, Options{Logger: logs.logger()})
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	got := logs.String()
	for _, want := range []string{
		`level=INFO msg="python stdout" model=chatty version=1 instance=chatty_0_0`,
		`line="hello from stdout"`,
		`level=WARN msg="python stderr" model=chatty`, `line="hello from stderr"`,
		`level=ERROR msg="python stderr" model=chatty`, `line="an error line"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
}

// TestInitializeArgs: initialize() gets the args Triton passes.
func TestInitializeArgs(t *testing.T) {
	needPython(t)
	m := writeModel(t, "args", `name: "args"
backend: "python"
input [ { name: "IN" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "ARGS" data_type: TYPE_STRING dims: [ 1 ] } ]
instance_group [ { count: 2 kind: KIND_CPU } ]
`, `
import json
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        self.text = "|".join([args["model_name"], args["model_version"], args["model_instance_name"],
                              args["model_instance_kind"], args["model_repository"], cfg["name"],
                              cfg["input"][0]["data_type"], str(cfg["input"][0]["dims"])])

    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor("ARGS", [self.text])]) for r in requests]
`)
	in := m.mustOpen(t, Options{})
	out, err := in.Execute(context.Background(), one(0), nil)
	if err != nil {
		t.Fatal(err)
	}
	els, err := tensor.BytesElements(out[0].Data)
	if err != nil || len(els) != 1 {
		t.Fatalf("ARGS = %v %v", out[0], err)
	}
	want := "args|1|args_0_0|CPU|" + m.dir + "|args|TYPE_INT32|[1]"
	if string(els[0]) != want {
		t.Errorf("initialize args = %q, want %q", els[0], want)
	}
}

func TestFloatHelpersAgree(t *testing.T) {
	// fp32s must encode exactly what Float64s decodes, or the tests above prove nothing.
	x := tens("x", tensor.FP32, tensor.Shape{2}, fp32s(1.5, float32(math.Inf(-1))))
	if got := decode(t, x); got[0] != 1.5 || !math.IsInf(got[1], -1) {
		t.Fatalf("decode(fp32s) = %v", got)
	}
}

// TestResidentBytesSeesTheChild: a model that holds 64 MiB shows it.
func TestResidentBytesSeesTheChild(t *testing.T) {
	needPython(t)
	small := writeModel(t, "small", echoOnlyConfig("small"), "class TritonPythonModel:\n    pass\n").mustOpen(t, Options{})
	big := writeModel(t, "big", echoOnlyConfig("big"), `
class TritonPythonModel:
    def initialize(self, args):
        self.weights = bytearray(64 << 20)
        for i in range(0, len(self.weights), 4096):
            self.weights[i] = 1  # touch every page
`).mustOpen(t, Options{})
	s, b := small.ResidentBytes(), big.ResidentBytes()
	if s <= 0 || b-s < 60<<20 {
		t.Errorf("ResidentBytes: small model %d, big model %d; want the big one 64 MiB more", s, b)
	}
}

// TestCloseNamesABrokenFinalize: a process that breaks the protocol during finalize()
// is reported as such, not as a finalize() that ran out of time.
func TestCloseNamesABrokenFinalize(t *testing.T) {
	needPython(t)
	m := writeModel(t, "garble", echoOnlyConfig("garble"), echoWithFinalize("os", `os.write(4, b"\xff" * 64)  # not a frame
        os._exit(3)`))
	in := m.mustOpen(t, Options{FinalizeTimeout: 10 * time.Second})
	start := time.Now()
	err := in.Close()
	if err == nil || !strings.Contains(err.Error(), "finalize() failed") || strings.Contains(err.Error(), "did not finish") {
		t.Errorf("Close: err = %v, want finalize() failed naming the cause", err)
	}
	t.Log(err)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %s", d)
	}
}

// echoWithFinalize is an echo model.py whose finalize() runs body (indented for the
// method), with module imported.
func echoWithFinalize(module, body string) string {
	return `
import ` + module + `
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.get_input_tensor_by_name(r, "IN")]) for r in requests]

    def finalize(self):
        ` + body + `
`
}
