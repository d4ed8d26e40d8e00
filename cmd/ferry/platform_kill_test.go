package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/mgmtclient"
	"github.com/ferryml/ferry/internal/rollout"
	"github.com/ferryml/ferry/internal/v2client"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// ferryProc is `ferry serve` in a child process (the test binary run as ferry), so that
// a test can kill it the hard way.
type ferryProc struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{} // closed when the process has exited
}

// startFerryProc starts ferry serve with args on free ports and waits until it is ready.
func startFerryProc(t *testing.T, args ...string) *ferryProc {
	t.Helper()
	ort, err := findORT()
	if err != nil {
		t.Fatal(err)
	}
	argv, _ := json.Marshal(append([]string{"serve", "--http-port", "0", "--grpc-port", "0", "--log-format", "json"}, args...))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), runAsFerry+"="+string(argv), "FERRY_ORT_LIB="+ort)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &ferryProc{cmd: cmd, done: make(chan struct{})}
	t.Cleanup(func() { p.kill() })
	ready := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		url := ""
		for sc.Scan() {
			var line struct{ Msg, HTTP string }
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			switch line.Msg {
			case "listening":
				url = "http://" + line.HTTP
			case "ready":
				ready <- url
			}
		}
		cmd.Wait()
	}()
	select {
	case p.url = <-ready:
	case <-p.done:
		t.Fatal("ferry exited before it was ready")
	case <-time.After(60 * time.Second):
		t.Fatal("ferry not ready after 60s")
	}
	return p
}

// kill is kill -9, then waits for the process to be gone.
func (p *ferryProc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// sendAddk has clients send addk requests naming no version to the server at url, over
// REST (a child process's gRPC address is not known here).
func sendAddk(t *testing.T, url string, clients int) *clientLoad {
	c, err := v2client.NewREST(v2client.RESTOptions{URL: url, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	m := c.Model("addk", "")
	return sendTrafficVia(clients, func(int) v2model { return m })
}

// A server killed with SIGKILL mid-rollout comes back with the rollout where it was:
// the candidate's weight no higher than it had reached, then the rollout goes on to its
// end from the stored state.
func TestPlatformRolloutSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ferry processes")
	}
	repo, data := platformRepo(t), t.TempDir()
	args := []string{"--model-repository", repo, "--data-dir", data}
	first := startFerryProc(t, args...)
	load := sendAddk(t, first.url, 4)
	api, err := mgmtclient.New(first.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := api.StartRollout(ctx, canary("2", 2*time.Second, 20, 60, 100)); err != nil {
		t.Fatal(err)
	}
	reached := 0
	deadline := time.Now().Add(30 * time.Second)
	for reached < 60 {
		if time.Now().After(deadline) {
			t.Fatalf("the rollout did not reach 60%% in 30s (at %d)", reached)
		}
		d, err := api.Rollout(ctx, "addk")
		if err != nil {
			t.Fatal(err)
		}
		reached = d.Weights["2"]
		time.Sleep(20 * time.Millisecond)
	}
	first.kill()
	load.end()

	second := startFerryProc(t, args...)
	api, _ = mgmtclient.New(second.url, nil)
	d, err := api.Rollout(ctx, "addk")
	if err != nil {
		t.Fatal(err)
	}
	if d.Weights["2"] > reached || d.State.Terminal() {
		t.Fatalf("after kill -9 the rollout is %s with %v, want it resumed at no more than %d%%", d.State, d.Weights, reached)
	}
	load = sendAddk(t, second.url, 4)
	deadline = time.Now().Add(60 * time.Second)
	for !d.State.Terminal() {
		if time.Now().After(deadline) {
			t.Fatalf("the resumed rollout is still %s after 60s", d.State)
		}
		time.Sleep(50 * time.Millisecond)
		if d, err = api.Rollout(ctx, "addk"); err != nil {
			t.Fatal(err)
		}
	}
	if _, failed := answersBy(load.end()); len(failed) > 0 || d.State != rollout.Succeeded || d.Weights["2"] != 100 {
		t.Errorf("resumed rollout ended %s (%s) with %v, %d failed requests; want Succeeded with 2 at 100, none failed", d.State, d.Reason, d.Weights, len(failed))
	}
	restarted := false
	for _, c := range d.History {
		restarted = restarted || c.Event == rollout.Restart
	}
	if !restarted {
		t.Errorf("history has no Restart event: %+v", d.History)
	}
	second.kill()
}

// kill -9 while a model loads and unloads and versions are being pushed: the restarted
// server is consistent — every version folder is registered, every registered version's
// folder holds what was registered (it loads and serves through an alias), and the model
// that was loading loads again.
func TestKill9DuringLoadsUnloadsAndPushes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ferry processes")
	}
	repo, data := platformRepo(t), t.TempDir()
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
	args := []string{"--model-repository", repo, "--data-dir", data, "--model-control-mode", "explicit", "--load-model", "addk"}
	first := startFerryProc(t, args...)
	api, err := mgmtclient.New(first.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var loads, pushes atomic.Int64
	wg.Go(func() { // load and unload simple, again and again
		for ctx.Err() == nil {
			for _, op := range []string{"load", "unload"} {
				req, _ := http.NewRequestWithContext(ctx, "POST", first.url+"/v2/repository/models/simple/"+op, nil)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
					loads.Add(1)
				}
			}
		}
	})
	model := addkModel(7)
	wg.Go(func() { // push versions of addk
		for ctx.Err() == nil {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			tw.WriteHeader(&tar.Header{Name: "model.onnx", Mode: 0o644, Size: int64(len(model))})
			tw.Write(model)
			tw.Close()
			if _, err := api.PushVersion(ctx, "addk", mgmtapi.VersionMeta{}, &b); err == nil {
				pushes.Add(1)
			}
		}
	})
	time.Sleep(time.Second)
	first.kill()
	stop()
	wg.Wait()
	t.Logf("killed after %d loads/unloads and %d pushes", loads.Load(), pushes.Load())

	second := startFerryProc(t, args...)
	api, _ = mgmtclient.New(second.url, nil)
	ctx = context.Background()
	versions, err := api.Versions(ctx, "addk")
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, v := range versions {
		registered[strconv.FormatInt(v.Version, 10)] = true
	}
	ents, _ := os.ReadDir(filepath.Join(repo, "addk"))
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil && !registered[e.Name()] {
			t.Errorf("version folder addk/%s is not registered after the restart", e.Name())
		}
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("addk/%s: a half-placed push left behind after the restart", e.Name())
		}
	}
	for _, v := range versions {
		if v.Version < 7 {
			continue // the repository's own versions (6 does not load on purpose)
		}
		if _, err := api.SetAlias(ctx, "addk", "check", v.Version); err != nil {
			t.Errorf("pushed version %d does not load after the restart: %v", v.Version, err)
		}
	}
	resp, err := http.Post(second.url+"/v2/repository/models/simple/load", "application/json", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("loading simple after the restart: %v %v", resp, err)
	}
	resp.Body.Close()
	if code, _, b := httpDo(t, "POST", second.url+"/v2/models/simple/infer", "application/json", strings.NewReader(simpleBody(1))); code != 200 {
		t.Errorf("simple after the restart: %d %s", code, b)
	}
	second.kill()
}
