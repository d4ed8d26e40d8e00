package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// onDemand serves in on-demand mode with a memory budget (0: none).
func onDemand(budget int64) serverOption {
	return func(c *serveConfig) {
		c.mode = "on-demand"
		c.onDemand.budget = byteSize(budget)
	}
}

// lookupRows and lookupWidth shape the lookup models: a table of 65,536 rows of 4 FP32
// (1 MiB of weights, which ONNX Runtime keeps resident), read with Gather, so a request
// is small and the weights cannot be folded away at load.
const lookupRows, lookupWidth = 1 << 16, 4

// lookupValue is what model seed answers for row r, column c: table plus its bias.
func lookupValue(seed, r, c int) float32 { return float32(r%1000+c) + float32(seed*8) }

// lookupMarker is the bias of the template model, patched per model; no table value
// has these bits.
var lookupMarker = [lookupWidth]float32{1.25e-30, 2.5e-30, 3.75e-30, 5e-30}

// lookupTemplate is the serialized lookup model with the marker bias: INT64 input INPUT0
// [batch, 1] picks rows of the table, plus the bias: OUTPUT0 [batch, 1, 4]. Encoding
// the table is the slow part, so it is done once.
var lookupTemplate = sync.OnceValue(func() []byte {
	w := make([]float32, lookupRows*lookupWidth)
	for r := range lookupRows {
		for c := range lookupWidth {
			w[r*lookupWidth+c] = float32(r%1000 + c)
		}
	}
	return onnxgen.NewModel("lookup").
		Input("INPUT0", onnxgen.Int64, onnxgen.Sym("batch"), onnxgen.Fixed(1)).
		InitializerFloat32("table", []int64{lookupRows, lookupWidth}, w).
		InitializerFloat32("bias", []int64{lookupWidth}, lookupMarker[:]).
		Node("Gather", []string{"table", "INPUT0"}, []string{"rows"}).
		Node("Add", []string{"rows", "bias"}, []string{"OUTPUT0"}).
		Output("OUTPUT0", onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Fixed(1), onnxgen.Fixed(lookupWidth)).
		Bytes()
})

// lookupModel is the lookup model of seed: the template with its bias.
func lookupModel(seed int) []byte {
	marker, _ := binary.Append(nil, binary.LittleEndian, lookupMarker)
	bias := make([]float32, lookupWidth)
	for c := range bias {
		bias[c] = float32(seed * 8)
	}
	patch, _ := binary.Append(nil, binary.LittleEndian, bias)
	out := bytes.Clone(lookupTemplate())
	i := bytes.Index(out, marker)
	if i < 0 {
		panic("lookup template: bias marker not found")
	}
	copy(out[i:], patch)
	return out
}

// lookupRepo writes n lookup models, m000, m001, ..., without configs.
func lookupRepo(t testing.TB, n int) string {
	t.Helper()
	repo := t.TempDir()
	const writers = 4 // the writes, not the CPU, take the time
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += writers {
				dir := filepath.Join(repo, lookupName(i), "1")
				if errs[w] = os.MkdirAll(dir, 0o755); errs[w] == nil {
					errs[w] = os.WriteFile(filepath.Join(dir, "model.onnx"), lookupModel(i), 0o644)
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return repo
}

func lookupName(i int) string { return fmt.Sprintf("m%03d", i) }

// lookup asks model i for row r over REST and checks the answer.
func lookup(ctx context.Context, c *http.Client, url string, i, r int) error {
	body := fmt.Sprintf(`{"inputs":[{"name":"INPUT0","shape":[1,1],"datatype":"INT64","data":[%d]}]}`, r)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v2/models/"+lookupName(i)+"/infer", strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Outputs []struct{ Data []float32 } `json:"outputs"`
		Error   string                     `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("%s row %d: status %d, body: %v", lookupName(i), r, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || len(out.Outputs) != 1 || len(out.Outputs[0].Data) != lookupWidth {
		return fmt.Errorf("%s row %d: status %d, %+v", lookupName(i), r, resp.StatusCode, out)
	}
	for c, v := range out.Outputs[0].Data {
		if want := lookupValue(i, r, c); v != want {
			return fmt.Errorf("%s row %d col %d = %v, want %v", lookupName(i), r, c, v, want)
		}
	}
	return nil
}

// metricSum adds up the samples of a /metrics family whose labels contain every
// fragment (e.g. `reason="evicted"`).
func metricSum(t testing.TB, url, family string, fragments ...string) float64 {
	t.Helper()
	var sum float64
	for _, v := range metricValues(t, url, family, fragments...) {
		sum += v
	}
	return sum
}

// metricValues lists the samples of a /metrics family whose labels contain every
// fragment.
func metricValues(t testing.TB, url, family string, fragments ...string) []float64 {
	t.Helper()
	_, _, body := httpDo(t, http.MethodGet, url+"/metrics", "", nil)
	var vs []float64
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, family+"{") && !strings.HasPrefix(line, family+" ") {
			continue
		}
		for _, f := range fragments {
			if !strings.Contains(line, f) {
				continue next
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		vs = append(vs, v)
	}
	return vs
}

// lookupResident measures what one lookup model holds, as the server measures it: the
// largest of a few loads after the first (which also pays the process's one-time costs).
func lookupResident(t testing.TB) int64 {
	t.Helper()
	ts := startServer(t, lookupRepo(t, 5), onDemand(1<<40))
	var most, last int64
	for i := range 5 {
		if err := lookup(context.Background(), http.DefaultClient, ts.URL, i, 1); err != nil {
			t.Fatal(err)
		}
		now := ts.repo.ResidentBytes()
		if i > 0 {
			most = max(most, now-last)
		}
		last = now
	}
	ts.stop()
	return most
}

// The acceptance test of on-demand loading: 200 models, a budget that fits 20, random
// traffic across all of them from 16 clients for 20 s. No request fails, the accounted
// memory never exceeds the budget (sampled every 2 ms), models are evicted, and a model
// with a request in flight is never evicted although it is the least recently used.
func TestOnDemandManyModelsUnderBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("on-demand acceptance test: 20 s of traffic (run without -short)")
	}
	const models, fit, clients = 200, 20, 16
	traffic := 20 * time.Second
	one := lookupResident(t)
	budget := fit * one
	t.Logf("one lookup model measures %d bytes; budget %d bytes (%d models)", one, budget, fit)

	repo := lookupRepo(t, models)
	// pinned has one request in flight for 10 s: its batcher waits for 8 rows or 10 s
	// (Triton's fixed wait).
	writeModel(t, repo, "pinned", 1, lookupModel(1000), `name: "pinned"
max_batch_size: 8
dynamic_batching { max_queue_delay_microseconds: 10000000 }
parameters { key: "adaptive_batching" value { string_value: "false" } }
`)
	ts := startServer(t, repo, onDemand(budget))

	var peak atomic.Int64
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			if b := ts.repo.ResidentBytes(); b > peak.Load() {
				peak.Store(b)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	})

	pinnedStart := time.Now()
	pinnedDone := make(chan error, 1)
	go func() {
		body := `{"inputs":[{"name":"INPUT0","shape":[1,1],"datatype":"INT64","data":[7]}]}`
		code, _, b := httpDo(t, http.MethodPost, ts.URL+"/v2/models/pinned/infer", "application/json", strings.NewReader(body))
		if code != http.StatusOK {
			pinnedDone <- fmt.Errorf("pinned: status %d: %s", code, b)
			return
		}
		pinnedDone <- nil
	}()
	// The request cannot finish before its 10 s queue delay has passed: every check of
	// the index until then happens while the request holds its lease (or, once loaded and
	// before it leases, waits for it). From the first check that sees pinned READY, every
	// later one must too.
	pinnedChecks, pinnedMisses := 0, 0
	var checking sync.WaitGroup
	checking.Go(func() {
		for time.Since(pinnedStart) < 9500*time.Millisecond {
			for _, e := range ts.repo.Index(false) {
				switch {
				case e.Name != "pinned":
				case e.State == "READY":
					pinnedChecks++
				case pinnedChecks > 0:
					pinnedMisses++
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	load := drive(clients, traffic, func(c *http.Client, rng *rand.Rand) error {
		return lookup(context.Background(), c, ts.URL, rng.IntN(models), rng.IntN(lookupRows))
	})
	checking.Wait()
	close(stopSampling)
	sampling.Wait()
	if err := <-pinnedDone; err != nil {
		t.Error(err)
	}

	evicted := metricSum(t, ts.URL, "ferry_model_unloads_total", `reason="evicted"`)
	loads := metricSum(t, ts.URL, "ferry_model_loads_total")
	t.Logf("%d requests in %s (%d failed), %v loads, %v evictions, peak accounted %d of %d bytes",
		load.ok, traffic, load.failed, loads, evicted, peak.Load(), budget)
	if load.failed > 0 {
		t.Errorf("%d of %d requests failed; first: %v", load.failed, load.failed+load.ok, load.firstErr)
	}
	if load.ok == 0 {
		t.Error("no request succeeded")
	}
	if p := peak.Load(); p > budget {
		t.Errorf("accounted resident memory reached %d bytes, over the %d-byte budget", p, budget)
	}
	if evicted < models-fit {
		t.Errorf("%v evictions counted (ferry_model_unloads_total{reason=\"evicted\"}); with %d models and room for %d, want at least %d",
			evicted, models, fit, models-fit)
	}
	if pinnedMisses > 0 || pinnedChecks == 0 {
		t.Errorf("pinned, with a request in flight, was READY in %d checks and not READY in %d; want never unloaded", pinnedChecks, pinnedMisses)
	}
	if got := metricSum(t, ts.URL, "ferry_models_resident_bytes"); got <= 0 || got > float64(budget) {
		t.Errorf("ferry_models_resident_bytes = %v, want within (0, %d]", got, budget)
	}
}

func TestOnDemandFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		mode    string
		want    onDemandConfig
		wantErr string
	}{
		{"defaults", nil, "on-demand", onDemandConfig{loadTimeout: 30 * time.Second}, ""},
		{"all set", []string{"--memory-budget", "512MiB", "--model-idle-unload", "5m", "--model-load-timeout", "2s"}, "on-demand",
			onDemandConfig{loadTimeout: 2 * time.Second, budget: 512 << 20, idleUnload: 5 * time.Minute}, ""},
		{"budget in explicit mode", []string{"--memory-budget", "1GiB"}, "explicit", onDemandConfig{}, "--memory-budget needs --model-control-mode on-demand"},
		{"idle unload in none mode", []string{"--model-idle-unload", "1m"}, "none", onDemandConfig{}, "--model-idle-unload needs --model-control-mode on-demand"},
		{"negative idle unload", []string{"--model-idle-unload", "-1s"}, "on-demand", onDemandConfig{}, "--model-idle-unload: must be >= 0, got -1s"},
		{"bad size", []string{"--memory-budget", "lots"}, "on-demand", onDemandConfig{}, `size "lots": want a number of bytes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c onDemandConfig
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.addFlags(fs)
			err := fs.Parse(tc.args)
			if err == nil {
				err = errors.Join(c.validate(tc.mode)...)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("flags %q in mode %s: err = %v, want %q", tc.args, tc.mode, err, tc.wantErr)
				}
				return
			}
			if err != nil || c != tc.want {
				t.Fatalf("flags %q: got %+v, %v; want %+v", tc.args, c, err, tc.want)
			}
		})
	}
}

// In on-demand mode the server is ready with nothing loaded; the index lists every model
// as unloaded; any request that needs a model (inference, metadata) loads it; a model
// that fails to load fails its requests with the reason and does not take the server
// out of readiness; loads, unloads and measured memory show in the metrics.
func TestOnDemandServesEveryModelOfTheRepository(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
	writeModel(t, repo, "mlp", 1, onnxgen.MLP(1), "")
	writeModel(t, repo, "corrupt", 1, []byte("this is not an onnx file"), "")
	ts := startServer(t, repo, onDemand(1<<30))

	index := func() map[string]string {
		t.Helper()
		_, _, b := httpDo(t, http.MethodPost, ts.URL+"/v2/repository/index", "application/json", nil)
		var entries []struct{ Name, State, Reason string }
		if err := json.Unmarshal(b, &entries); err != nil {
			t.Fatalf("index %s: %v", b, err)
		}
		out := map[string]string{}
		for _, e := range entries {
			out[e.Name] = strings.TrimSpace(e.State + " " + e.Reason)
		}
		return out
	}
	if code, _, _ := httpDo(t, http.MethodGet, ts.URL+"/v2/health/ready", "", nil); code != http.StatusOK {
		t.Errorf("ready with nothing loaded: %d, want 200", code)
	}
	for name, st := range index() {
		if st != "UNAVAILABLE unloaded" {
			t.Errorf("index before any request: %s is %q, want UNAVAILABLE unloaded", name, st)
		}
	}

	body := `{"inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":` + numbers(16) +
		`},{"name":"INPUT1","shape":[1,16],"datatype":"INT32","data":` + numbers(16) + `}]}`
	if code, _, b := httpDo(t, http.MethodPost, ts.URL+"/v2/models/simple/infer", "application/json", strings.NewReader(body)); code != http.StatusOK {
		t.Fatalf("first infer on simple: %d %s", code, b)
	}
	md, err := ts.GRPC.ModelMetadata(context.Background(), &inference.ModelMetadataRequest{Name: "mlp"})
	if err != nil || len(md.GetInputs()) != 1 {
		t.Fatalf("gRPC metadata of the unloaded mlp: %v, %v; want it loaded and described", md, err)
	}
	for range 2 {
		code, _, b := httpDo(t, http.MethodPost, ts.URL+"/v2/models/corrupt/infer", "application/json", strings.NewReader(body))
		if code != http.StatusServiceUnavailable || !strings.Contains(string(b), "corrupt") {
			t.Errorf("infer on a model that cannot load: %d %s; want 503 naming the model and why", code, b)
		}
	}
	st := index()
	if st["simple"] != "READY" || st["mlp"] != "READY" || !strings.HasPrefix(st["corrupt"], "UNAVAILABLE") || st["corrupt"] == "UNAVAILABLE unloaded" {
		t.Errorf("index after requests: %v; want simple and mlp READY, corrupt UNAVAILABLE with its reason", st)
	}
	if code, _, _ := httpDo(t, http.MethodGet, ts.URL+"/v2/health/ready", "", nil); code != http.StatusOK {
		t.Errorf("ready with a model that failed to load on demand: %d, want 200", code)
	}
	if n := metricSum(t, ts.URL, "ferry_model_load_failures_total", `model="corrupt"`); n != 1 {
		t.Errorf("corrupt load failures = %v, want 1: a model whose files did not change is not retried per request", n)
	}

	if code, _, b := httpDo(t, http.MethodPost, ts.URL+"/v2/repository/models/simple/unload", "", nil); code != http.StatusOK {
		t.Fatalf("unload simple: %d %s", code, b)
	}
	for _, tc := range []struct {
		family    string
		fragments []string
		want      func(float64) bool
		wantText  string
	}{
		{"ferry_model_loads_total", []string{`model="simple"`}, func(v float64) bool { return v == 1 }, "1"},
		{"ferry_model_unloads_total", []string{`model="simple"`, `reason="api"`}, func(v float64) bool { return v == 1 }, "1"},
		{"ferry_model_resident_bytes", []string{`model="mlp"`}, func(v float64) bool { return v >= 5<<20 }, ">= 5 MiB (its weights)"},
		{"ferry_model_resident_bytes", []string{`model="simple"`}, func(v float64) bool { return v == 0 }, "absent once unloaded"},
		{"ferry_models_resident_bytes", nil, func(v float64) bool { return v >= 5<<20 }, ">= 5 MiB"},
		{"ferry_model_load_duration_seconds_count", []string{`model="mlp"`}, func(v float64) bool { return v == 1 }, "1"},
	} {
		if got := metricSum(t, ts.URL, tc.family, tc.fragments...); !tc.want(got) {
			t.Errorf("%s%v = %v, want %s", tc.family, tc.fragments, got, tc.wantText)
		}
	}
}

// TestOnDemandReadinessProbeDoesNotLoad: a readiness probe of an unloaded model answers
// "not ready" and leaves it unloaded; the first inference loads it, then it is ready.
func TestOnDemandReadinessProbeDoesNotLoad(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
	ts := startServer(t, repo, onDemand(0))
	if code, _, b := httpDo(t, "GET", ts.URL+"/v2/models/simple/ready", "", nil); code != 503 {
		t.Fatalf("ready of an unloaded model = %d %s, want 503", code, b)
	}
	if _, _, b := httpDo(t, "POST", ts.URL+"/v2/repository/index", "", nil); !strings.Contains(string(b), `"reason":"unloaded"`) {
		t.Fatalf("the readiness probe loaded the model: index %s", b)
	}
	if code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/simple/infer", "application/json", strings.NewReader(simpleBody(1))); code != 200 {
		t.Fatalf("first infer = %d %s", code, b)
	}
	if code, _, b := httpDo(t, "GET", ts.URL+"/v2/models/simple/ready", "", nil); code != 200 {
		t.Fatalf("ready after loading = %d %s, want 200", code, b)
	}
}

// TestOnDemandRefreshUnderLoad: while 8 clients keep asking for a model, its file keeps
// changing, so every refresh unloads it and the next request loads it again; no request
// fails, and the model really was replaced several times.
func TestOnDemandRefreshUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("2 s of traffic; not run with -short")
	}
	repo := t.TempDir()
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
	ts := startServer(t, repo, onDemand(0), func(c *serveConfig) { c.pollInterval = 50 * time.Millisecond })
	model := filepath.Join(repo, "simple", "1", "model.onnx")

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				res, err := ts.GRPC.ModelInfer(t.Context(), e2eSimpleRequest("", 1, true))
				if err == nil && len(res.GetRawOutputContents()) == 2 {
					ok.Add(1)
					continue
				}
				failed.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprint(err))
			}
		})
	}
	touches := 0
	for tick := time.NewTicker(150 * time.Millisecond); ctx.Err() == nil; <-tick.C {
		now := time.Now()
		if err := os.Chtimes(model, now, now); err != nil {
			t.Fatal(err)
		}
		touches++
	}
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Errorf("%d requests ok, %d failed (first: %v); want none failed", ok.Load(), failed.Load(), firstErr.Load())
	}
	loads := metricSum(t, ts.URL, "ferry_model_loads_total", `model="simple"`)
	if loads < 3 {
		t.Errorf("simple loaded %v times while its file changed %d times, want at least 3", loads, touches)
	}
	t.Logf("%d requests, %d file changes, %v loads", ok.Load(), touches, loads)
}
