package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/tools/onnxgen"
)

const identityBody = `{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`

// TestPollReplacesVersionWithoutFailures is the acceptance test: version 2 of a
// model appears while 8 clients send requests for 5 s; no request fails and answers move
// to version 2.
func TestPollReplacesVersionWithoutFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("5 s of load")
	}
	repo := t.TempDir()
	writeModel(t, repo, "m", 1, onnxgen.Identity(onnxgen.Float, "m"), "")
	ts := startServer(t, repo, func(c *serveConfig) { c.mode = "poll"; c.pollInterval = 50 * time.Millisecond })

	var ok, failed, onV2 atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/m/infer", "application/json", strings.NewReader(identityBody))
				if code != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", code, b))
					continue
				}
				ok.Add(1)
				var r struct {
					Version string `json:"model_version"`
				}
				if err := json.Unmarshal(b, &r); err == nil && r.Version == "2" {
					onV2.Add(1)
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond) // load on version 1 first
	// Write version 2 beside the model and rename it in, as a deploy would, so polling
	// never sees a half-written file.
	tmp := filepath.Join(repo, "m", ".incoming")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "model.onnx"), onnxgen.Identity(onnxgen.Float, "m"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(repo, "m", "2")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("requests: %d ok, %d failed, %d answered by version 2", ok.Load(), failed.Load(), onV2.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed during the version switch; first: %v", failed.Load(), firstErr.Load())
	}
	if onV2.Load() == 0 {
		t.Fatal("no response came from version 2")
	}
	code, _, b := httpDo(t, "POST", ts.URL+"/v2/repository/index", "application/json", nil)
	if code != 200 || !strings.Contains(string(b), `"version":"2","state":"READY"`) || strings.Contains(string(b), `"version":"1"`) {
		t.Fatalf("index after switch: %d %s", code, b)
	}
}

// TestBrokenModelsAreReportedAndOthersServe: a corrupt model.onnx, a config with a syntax
// error and a config with an unknown field each leave their model UNAVAILABLE with the
// reason in the index, while the good model serves.
func TestBrokenModelsAreReportedAndOthersServe(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
	writeModel(t, repo, "corrupt", 1, []byte("this is not an onnx file"), "")
	writeModel(t, repo, "syntax", 1, onnxgen.Simple(), "name: \"syntax\"\nmax_batch_size: 8\ninput [ { name: \"INPUT0\" \n")
	writeModel(t, repo, "unknownfield", 1, onnxgen.Simple(), "name: \"unknownfield\"\nmax_batch_sise: 8\n")
	ts := startServer(t, repo)

	index := repositoryIndex(t, ts.URL)
	want := map[string]string{ // model -> text its reason must contain
		"corrupt":      "model.onnx",
		"syntax":       "config.pbtxt",
		"unknownfield": "max_batch_sise",
	}
	for _, e := range index {
		switch {
		case e.Name == "simple":
			if e.State != "READY" {
				t.Errorf("simple: state %s (%s), want READY", e.State, e.Reason)
			}
		case want[e.Name] != "":
			if e.State != "UNAVAILABLE" || !strings.Contains(e.Reason, want[e.Name]) {
				t.Errorf("%s: state %s reason %q, want UNAVAILABLE naming %q", e.Name, e.State, e.Reason, want[e.Name])
			}
			delete(want, e.Name)
		}
	}
	if len(want) != 0 {
		t.Errorf("index lacks %v: %+v", want, index)
	}
	for _, m := range []string{"corrupt", "syntax", "unknownfield"} {
		code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/"+m+"/infer", "application/json", strings.NewReader(identityBody))
		if code != 503 || !strings.Contains(string(b), "not ready") {
			t.Errorf("infer %s: %d %s, want 503 not ready", m, code, b)
		}
	}
	code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/simple/infer", "application/json", strings.NewReader(simpleBody(1)))
	if code != 200 {
		t.Fatalf("simple after broken models: %d %s", code, b)
	}
}

// simpleBody is a JSON request for simple with the given batch size.
func simpleBody(batch int) string {
	var in0, in1 bytes.Buffer
	for i := range batch * 16 {
		if i > 0 {
			in0.WriteByte(',')
			in1.WriteByte(',')
		}
		fmt.Fprint(&in0, i)
		in1.WriteString("1")
	}
	return fmt.Sprintf(`{"inputs":[{"name":"INPUT0","shape":[%d,16],"datatype":"INT32","data":[%s]},`+
		`{"name":"INPUT1","shape":[%d,16],"datatype":"INT32","data":[%s]}]}`, batch, in0.String(), batch, in1.String())
}
