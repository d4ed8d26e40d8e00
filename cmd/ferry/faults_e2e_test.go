package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/objstore/s3test"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
	"github.com/ferryml/ferry/tools/onnxgen"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Faults the server must survive (issue 17; monitoring.md §6.2): a store that fails or
// stalls, a full cache disk, SIGTERM under load.

// s3Served starts a poll-mode server on an s3:// repository whose simple has version 1,
// with cache as its mirror folder.
func s3Served(t *testing.T, cache string) (*testServer, *s3test.Server) {
	srv := s3test.New(t, "models")
	srv.Put(t, "prod/simple/config.pbtxt", []byte(simpleConfig))
	srv.Put(t, "prod/simple/1/model.onnx", onnxgen.Simple())
	ts := startServer(t, "s3://models/prod", withS3(srv, cache), func(c *serveConfig) {
		c.mode, c.pollInterval, c.storeStall = "poll", 50*time.Millisecond, 300*time.Millisecond
	})
	if code, v, b := s3Infer(t, ts, "simple"); code != 200 || v != "1" {
		t.Fatalf("simple from s3: %d version %q %s", code, v, b)
	}
	return ts, srv
}

// A store answering 500s, then stalling, for a new version: the sync fails with the
// reason in the index, is retried at every poll, and version 1 serves throughout; once
// the store recovers, version 2 loads.
func TestS3FailingAndStallingStoreKeepsTheServedVersion(t *testing.T) {
	ts, srv := s3Served(t, t.TempDir())
	const key = "prod/simple/2/model.onnx"
	srv.Put(t, key, onnxgen.Simple())
	for _, fault := range []struct {
		name   string
		set    func(on bool)
		reason string
	}{
		{"500s", func(on bool) { srv.Fail(key, map[bool]int{true: 500}[on]) }, "500"},
		{"stalls", func(on bool) { srv.Hang(key, on) }, "simple/2/model.onnx"},
	} {
		fault.set(true)
		before := srv.Gets(key)
		s3Wait(t, fault.name+": the sync is retried and fails", func() bool { return srv.Gets(key) >= before+3 })
		if code, v, b := s3Infer(t, ts, "simple"); code != 200 || v != "1" {
			t.Errorf("%s: simple answered %d version %q %s, want version 1 still", fault.name, code, v, b)
		}
		e, _ := findEntry(repositoryIndex(t, ts.URL), "simple", "1")
		t.Logf("%s: index %+v", fault.name, e)
		if e.State != "READY" {
			t.Errorf("%s: simple version 1 is %s", fault.name, e.State)
		}
		fault.set(false)
	}
	s3Wait(t, "version 2 serves once the store recovers", func() bool {
		_, v, _ := s3Infer(t, ts, "simple")
		return v == "2"
	})
}

// The cache folder on a file system too small for a new version: the download fails
// with a clear error, version 1 keeps serving, and nothing half-written is loaded.
func TestS3CacheOnAFullDisk(t *testing.T) {
	cache := t.TempDir()
	if err := syscall.Mount("tmpfs", cache, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a 256 KiB tmpfs for the cache (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(cache, syscall.MNT_DETACH) })
	ts, srv := s3Served(t, cache)
	srv.Put(t, "prod/simple/2/model.onnx", onnxgen.MLP(1)) // 1.3 MB: does not fit
	s3Wait(t, "the index names the failed download", func() bool {
		e, _ := findEntry(repositoryIndex(t, ts.URL), "simple", "1")
		return strings.Contains(e.Reason, "no space left on device")
	})
	e, _ := findEntry(repositoryIndex(t, ts.URL), "simple", "1")
	t.Logf("index: %+v", e)
	for range 20 {
		if code, v, b := s3Infer(t, ts, "simple"); code != 200 || v != "1" {
			t.Fatalf("simple on a full cache disk: %d version %q %s, want version 1", code, v, b)
		}
	}
	if _, ok := findEntry(repositoryIndex(t, ts.URL), "simple", "2"); ok {
		t.Error("a version that never fitted the cache is listed")
	}
}

// SIGTERM to a ferry process under load: every request it accepted is answered. The
// clients stand behind a load balancer that polls readiness every 10 ms and stops sending
// once it is 503 (the drain grace, 300 ms here, is for that); what they sent before is
// answered, and the only other errors they may see are refused connections.
func TestSIGTERMUnderLoadLosesNoAdmittedRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ferry process")
	}
	p := startFerryProc(t, "--model-repository", platformRepo(t), "--drain-grace", "300ms")
	load := sendAddk(t, p.url, 16)
	go func() { // the load balancer
		for !load.halt.Load() {
			if resp, err := http.Get(p.url + "/v2/health/ready"); err != nil || resp.StatusCode != 200 {
				load.halt.Store(true)
			} else {
				resp.Body.Close()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("ferry did not exit within 30 s of SIGTERM")
	}
	as := load.end()
	_, failed := answersBy(as)
	answered := len(as) - len(failed)
	refused, lost := 0, []error{}
	for _, a := range failed {
		if errors.Is(a.err, syscall.ECONNREFUSED) {
			refused++
			continue
		}
		lost = append(lost, a.err)
	}
	t.Logf("%d answered, %d refused connections after the listener closed", answered, refused)
	if len(lost) > 0 || answered == 0 {
		t.Errorf("%d requests lost (%v), %d answered", len(lost), errors.Join(lost...), answered)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("ferry exited %d after SIGTERM, want 0", code)
	}
}

// A python model that hangs: the request's deadline fires, the hung process is killed
// after execute_hang_timeout and replaced, and the requests behind it are answered by the
// new process instead of waiting forever.
func TestPythonModelThatHangsIsReplaced(t *testing.T) {
	needPython3(t)
	repo := t.TempDir()
	writePythonModel(t, repo, "hangs", `name: "hangs"
backend: "python"
max_batch_size: 0
input [ { name: "X" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "Y" data_type: TYPE_INT32 dims: [ 1 ] } ]
parameters { key: "execute_hang_timeout" value { string_value: "300ms" } }
`, `import time
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "X").as_numpy()
            if x.tolist()[0] == 13:
                time.sleep(3600)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", x)]))
        return out
`)
	ts := startServer(t, repo)
	ask := func(ctx context.Context, v int32) error {
		x := &tensor.Tensor{Name: "X", DType: tensor.Int32, Shape: tensor.Shape{1}, Data: e2eLE([]int32{v})}
		resp, err := ts.grpc.Model("hangs", "").Infer(ctx, &v2client.Request{Inputs: []*tensor.Tensor{x}})
		if err == nil && string(resp.Output("Y").Data) != string(e2eLE([]int32{v})) {
			err = fmt.Errorf("answered %v", resp.Output("Y").Data)
		}
		return err
	}
	if err := ask(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	before := pythonChildren(t)
	short, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := ask(short, 13); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a request that hangs: %v, want DEADLINE_EXCEEDED", err)
	}
	start := time.Now()
	if err := ask(t.Context(), 2); err != nil {
		t.Fatalf("the request behind the hung one: %v", err)
	}
	t.Logf("the request behind the hung one answered after %v", time.Since(start).Round(time.Millisecond))
	after := pythonChildren(t)
	for pid := range before {
		if _, ok := after[pid]; ok {
			t.Errorf("hung child %d still there: children before %v, after %v", pid, before, after)
		}
	}
	if len(after) != 1 {
		t.Errorf("children after the replacement: %v, want one", after)
	}
}
