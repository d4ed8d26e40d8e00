package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/bench"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// runBench runs `ferry bench args...` with the tests' ONNX Runtime and returns stdout.
func runBench(t *testing.T, args ...string) (string, error) {
	t.Helper()
	stdout, _, err := runBenchOutputs(t, args...)
	return stdout, err
}

// runBenchOutputs runs `ferry bench args...` and returns stdout and stderr.
func runBenchOutputs(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stderr bytes.Buffer
	stdout, err := runBenchContext(t, context.Background(), &stderr, args...)
	return stdout, stderr.String(), err
}

// runBenchContext runs `ferry bench args...` until ctx ends, its progress and errors
// to stderr, and returns stdout.
func runBenchContext(t *testing.T, ctx context.Context, stderr io.Writer, args ...string) (string, error) {
	t.Helper()
	var stdout, both bytes.Buffer
	errs := io.MultiWriter(stderr, &both)
	cmd := newBenchCommand(&stdout, errs, func() (*onnx.Runtime, func(), error) {
		return testRuntime, func() {}, nil // TestMain owns the process's one runtime
	})
	cmd.SetArgs(args)
	cmd.SetOut(errs)
	cmd.SetErr(errs)
	err := cmd.ExecuteContext(ctx)
	if testing.Verbose() {
		t.Logf("ferry bench %s\n%s%s", strings.Join(args, " "), both.String(), stdout.String())
	}
	return stdout.String(), err
}

// TestBenchInterrupted: Ctrl-C during a sweep reports the levels measured whole, as
// perf_analyzer does, and says the run was cut short; before any level ends there is
// nothing to report, and the error says so (it was "context canceled").
func TestBenchInterrupted(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	args := []string{"-m", "mlp", "-u", ts.URL, "--concurrency", "1:2:x2", "--duration", "300ms", "--warmup", "100ms"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The first level's summary: it is over, the second is starting.
	stderr := &cancelOn{pattern: regexp.MustCompile(`concurrency 1: [0-9.]+ req/s`), cancel: cancel}
	out, err := runBenchContext(t, ctx, stderr, args...)
	if err == nil || !strings.Contains(err.Error(), "interrupted: 1 level(s) measured") {
		t.Fatalf("interrupted after the first level: error %v, want it to say one level was measured", err)
	}
	if !regexp.MustCompile(`(?m)^ +1 +[0-9.]+ `).MatchString(out) || regexp.MustCompile(`(?m)^ +2 +[0-9.]+ `).MatchString(out) {
		t.Errorf("interrupted after the first level: stdout\n%s\nwant the table with concurrency 1's row only", out)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = runBenchContext(t, ctx, io.Discard, "-m", "mlp", "-u", ts.URL, "--duration", "10s")
	if err == nil || !strings.Contains(err.Error(), "interrupted before a level was measured whole, nothing to report") {
		t.Errorf("interrupted in the first level: error %v, want it to say nothing was measured", err)
	}
}

// cancelOn calls cancel once what is written to it matches pattern.
type cancelOn struct {
	pattern *regexp.Regexp
	cancel  func()
	mu      sync.Mutex
	seen    strings.Builder
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen.Write(p)
	if c.pattern.MatchString(c.seen.String()) {
		c.cancel()
	}
	return len(p), nil
}

// readReport parses the --json and --csv files of a run and checks they agree.
func readReport(t *testing.T, jsonPath, csvPath string) *bench.Report {
	t.Helper()
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("--json file: %v", err)
	}
	rows := readCSV(t, csvPath)
	if len(rows) != len(rep.Levels)+1 {
		t.Errorf("--csv has %d rows, want a header and %d levels", len(rows), len(rep.Levels))
	}
	return &rep
}

// readCSV reads a CSV file's rows.
func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}

// checkLevel asserts what every healthy level shows, whatever the machine's speed.
func checkLevel(t *testing.T, what string, l bench.Level, batch int) {
	t.Helper()
	if l.Requests == 0 || l.PerSecond <= 0 {
		t.Errorf("%s: %d requests, %.1f req/s; want some", what, l.Requests, l.PerSecond)
	}
	if l.Errors != 0 {
		t.Errorf("%s: %d errors, first: %s", what, l.Errors, l.FirstError)
	}
	if l.ItemsPerSec != l.PerSecond*float64(batch) {
		t.Errorf("%s: %.1f items/s, want %.1f req/s × batch %d", what, l.ItemsPerSec, l.PerSecond, batch)
	}
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P95 && l.P95 <= l.P99) {
		t.Errorf("%s: percentiles out of order: p50 %v p90 %v p95 %v p99 %v µs", what, l.P50, l.P90, l.P95, l.P99)
	}
}

func TestBenchEachProtocol(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	grpcAddr := ts.grpcLn.Addr().String()
	for _, tc := range []struct {
		name  string
		args  []string
		batch int
	}{
		{"http json", []string{"-m", "mlp", "-u", ts.URL, "-i", "http"}, 1},
		{"http binary", []string{"-m", "simple", "-u", strings.TrimPrefix(ts.URL, "http://"), "-i", "http-binary", "-b", "4"}, 4},
		{"grpc", []string{"-m", "mlp", "--grpc", grpcAddr, "-b", "2", "--metrics-url", ts.URL + "/metrics"}, 2},
		{"grpc streaming on 2 connections", []string{"-m", "mlp", "--grpc", grpcAddr, "--streaming", "--grpc-conns", "2", "-b", "2",
			"--metrics-url", ts.URL + "/metrics"}, 2},
		{"grpc with -u, as perf_analyzer", []string{"-m", "identity_int8", "-i", "grpc", "-u", grpcAddr, "--shape", "INPUT0:3", "--input-data", "zero"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			jsonPath, csvPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv")
			args := append(tc.args, "--duration", "300ms", "--warmup", "100ms", "--concurrency", "1:2:x2",
				"--json", jsonPath, "--csv", csvPath)
			out, err := runBench(t, args...)
			if err != nil {
				t.Fatalf("ferry bench: %v", err)
			}
			rep := readReport(t, jsonPath, csvPath)
			if len(rep.Levels) != 2 || rep.Levels[0].Concurrency != 1 || rep.Levels[1].Concurrency != 2 {
				t.Fatalf("levels %+v, want concurrency 1 and 2", rep.Levels)
			}
			for _, l := range rep.Levels {
				checkLevel(t, tc.name, l, tc.batch)
				// A request's rows run together; dynamic batching (which auto-complete turns
				// on for the models without a config) may add other requests' rows.
				if l.ServerAvgBatch < float64(tc.batch) {
					t.Errorf("%s: server average batch %v, want at least %d", tc.name, l.ServerAvgBatch, tc.batch)
				}
				// The perf_analyzer-style case names only the gRPC address, so the server's
				// /metrics is unknown there.
				if wantServerCPU := !strings.Contains(tc.name, "perf_analyzer"); (l.ServerCPUPerRequest > 0) != wantServerCPU || l.ClientCPUPerRequest <= 0 {
					t.Errorf("%s: CPU per request: server %v µs, client %v µs; want both measured (server only with a known /metrics)",
						tc.name, l.ServerCPUPerRequest, l.ClientCPUPerRequest)
				}
			}
			if !regexp.MustCompile(`concurrency +req/s +items/s`).MatchString(out) {
				t.Errorf("stdout has no table:\n%s", out)
			}
		})
	}
}

func TestBenchRequestRate(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	dir := t.TempDir()
	jsonPath, csvPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv")
	_, err := runBench(t, "-m", "mlp", "--grpc", ts.grpcLn.Addr().String(), "--request-rate", "200",
		"--duration", "500ms", "--warmup", "100ms", "--json", jsonPath, "--csv", csvPath)
	if err != nil {
		t.Fatalf("ferry bench: %v", err)
	}
	rep := readReport(t, jsonPath, csvPath)
	if rep.Mode != bench.ModeRequestRate || len(rep.Levels) != 1 {
		t.Fatalf("report mode %s with %d levels, want one request_rate level", rep.Mode, len(rep.Levels))
	}
	l := rep.Levels[0]
	checkLevel(t, "request rate 200", l, 1)
	if l.Dropped != 0 {
		t.Errorf("%d requests dropped at 200/s", l.Dropped)
	}
	if rep.Distribution != bench.Poisson {
		t.Errorf("distribution %q, want the default, poisson", rep.Distribution)
	}
}

// TestBenchRequestIntervals: a file of 5 ms gaps is a 200/s open loop, reported as such.
func TestBenchRequestIntervals(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	dir := t.TempDir()
	gaps := filepath.Join(dir, "gaps.txt")
	if err := os.WriteFile(gaps, []byte("5000\n5000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	jsonPath, csvPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv")
	out, err := runBench(t, "-m", "mlp", "--grpc", ts.grpcLn.Addr().String(), "--request-intervals", gaps,
		"--duration", "500ms", "--warmup", "100ms", "--json", jsonPath, "--csv", csvPath)
	if err != nil {
		t.Fatalf("ferry bench: %v", err)
	}
	rep := readReport(t, jsonPath, csvPath)
	if rep.Mode != bench.ModeRequestRate || rep.Distribution != bench.Intervals || len(rep.Levels) != 1 || rep.Levels[0].RequestRate != 200 {
		t.Fatalf("report mode %s, distribution %q, levels %+v; want one intervals level at 200/s", rep.Mode, rep.Distribution, rep.Levels)
	}
	checkLevel(t, "intervals", rep.Levels[0], 1)
	if !strings.Contains(out, "arrivals at the given intervals") {
		t.Errorf("the table's title does not name the schedule:\n%s", out)
	}
}

// TestBenchGRPCCompression: ferry bench sends gzip and deflate as perf_analyzer's
// --grpc-compression-algorithm does, and the server serves them.
func TestBenchGRPCCompression(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	for _, algo := range []string{"gzip", "deflate", "none"} {
		dir := t.TempDir()
		jsonPath, csvPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv")
		if _, err := runBench(t, "-m", "simple", "--grpc", ts.grpcLn.Addr().String(), "--grpc-compression-algorithm", algo,
			"--duration", "200ms", "--warmup", "0s", "--json", jsonPath, "--csv", csvPath); err != nil {
			t.Fatalf("ferry bench --grpc-compression-algorithm %s: %v", algo, err)
		}
		checkLevel(t, algo, readReport(t, jsonPath, csvPath).Levels[0], 1)
	}
}

// TestBenchConstantRate: a --request-rate sweep gives a level per rate, and
// --request-distribution reaches the run: the report and the table say how the arrivals
// were spaced (the pace itself: TestRunOpenLoopConstantPace).
func TestBenchConstantRate(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	dir := t.TempDir()
	jsonPath, csvPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv")
	out, err := runBench(t, "-m", "mlp", "--grpc", ts.grpcLn.Addr().String(), "--request-rate", "100:200:100",
		"--request-distribution", "constant", "--duration", "500ms", "--warmup", "100ms", "--json", jsonPath, "--csv", csvPath)
	if err != nil {
		t.Fatalf("ferry bench: %v", err)
	}
	rep := readReport(t, jsonPath, csvPath)
	if rep.Mode != bench.ModeRequestRate || rep.Distribution != bench.Constant || len(rep.Levels) != 2 {
		t.Fatalf("report mode %s, distribution %q, %d levels; want two constant request_rate levels", rep.Mode, rep.Distribution, len(rep.Levels))
	}
	for i, want := range []float64{100, 200} {
		l := rep.Levels[i]
		if l.RequestRate != want {
			t.Errorf("level %d at %v/s, want %v", i, l.RequestRate, want)
		}
		checkLevel(t, fmt.Sprintf("constant rate %v", want), l, 1)
	}
	if !strings.Contains(out, "constant arrivals") {
		t.Errorf("the table's title does not name the distribution:\n%s", out)
	}
}

func TestBenchRejects(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no model", []string{"-u", ts.URL}, "--model (-m) is required, or --engine MODEL_DIR"},
		{"unknown model", []string{"-m", "nope", "-u", ts.URL}, "model metadata: HTTP 404: Request for unknown model: 'nope' is not found"},
		{"batch beyond max_batch_size", []string{"-m", "simple", "-u", ts.URL, "-b", "9"}, `batch size 9: model "simple" takes at most 8 (max_batch_size)`},
		{"shape of an unknown input", []string{"-m", "simple", "-u", ts.URL, "--shape", "X:1"}, `--shape X: model "simple" has no input "X"`},
		{"both loops", []string{"-m", "simple", "--concurrency", "2", "--request-rate", "5"}, "--concurrency and --request-rate exclude each other"},
		{"intervals and a rate", []string{"-m", "simple", "--request-intervals", "x.txt", "--request-rate", "5"}, "--request-intervals replaces --concurrency, --request-rate and --request-distribution"},
		{"missing intervals file", []string{"-m", "simple", "-u", ts.URL, "--request-intervals", "/nonexistent.txt"}, "--request-intervals: open /nonexistent.txt: no such file or directory"},
		{"bad compression", []string{"-m", "simple", "--grpc", ts.grpcLn.Addr().String(), "--grpc-compression-algorithm", "br"}, `compression "br": want none, gzip or deflate`},
		{"binary search without a threshold", []string{"-m", "simple", "-u", ts.URL, "--concurrency", "1:4", "--binary-search"}, "a binary search needs a latency limit to search for"},
		{"bad header", []string{"-m", "simple", "-u", ts.URL, "-H", "no colon"}, `--header: header "no colon": want Name:value`},
		{"bad rate", []string{"-m", "simple", "--request-rate", "0"}, `--request-rate: request rate "0": start "0" is not a positive number`},
		{"distribution without a rate", []string{"-m", "simple", "--request-distribution", "constant"}, "--request-distribution spaces the arrivals of --request-rate, which is not set"},
		{"unknown distribution", []string{"-m", "simple", "-u", ts.URL, "--request-rate", "5", "--request-distribution", "bursty"}, `request distribution "bursty": want poisson or constant`},
		{"bad sweep", []string{"-m", "simple", "--concurrency", "8:1"}, `--concurrency: concurrency "8:1": end 1 is below start 8`},
		{"bad protocol", []string{"-m", "simple", "-i", "udp"}, `--protocol "udp": want http, http-binary or grpc`},
		{"sequence id 0", []string{"-m", "accumulator", "-u", ts.URL, "--sequence-id-range", "0:5"}, `--sequence-id-range: sequence id range "0:5": want start[:end] with 1 <= start < end`},
		{"empty sequences", []string{"-m", "accumulator", "-u", ts.URL, "--sequence-length", "0"}, "--sequence-length 0, --num-of-sequences 4: both must be at least 1"},
		{"odd percentile", []string{"-m", "simple", "-u", ts.URL, "--percentile", "97"}, "percentile 97: want 50, 90, 95 or 99 (or 0, the mean)"},
		{"missing data file", []string{"-m", "simple", "--input-data", "/nonexistent.json"}, "--input-data: want random, zero or a JSON file: open /nonexistent.json: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runBench(t, append(tc.args, "--duration", "100ms")...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ferry bench %v: err = %v, want %q", tc.args, err, tc.wantErr)
			}
		})
	}
}

// TestBenchSequenceModel benchmarks stateful accumulators, whose every request must
// carry a sequence id and come in order after its sequence's start: any slip is an
// error from the server. acc_direct_bench has 16 slots and keeps an idle sequence for a
// minute; the second level has twice as many clients as the first, so had the first
// left its sequences open when it stopped, they would hold every slot and the second
// level would measure nothing.
func TestBenchSequenceModel(t *testing.T) {
	repo := seqRepo(t)
	writeModel(t, repo, "acc_direct_bench", 1, onnxgen.Accumulator(), seqIO+`sequence_batching {
  max_sequence_idle_microseconds: 60000000 direct { }`+seqState+"\n}\n")
	ts := startServer(t, repo)
	grpcAddr := ts.grpcLn.Addr().String()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"grpc", []string{"-m", "acc_direct_bench", "--grpc", grpcAddr, "--concurrency", "16:32:+16"}},
		{"grpc streaming", []string{"-m", "acc_direct_bench", "--grpc", grpcAddr, "--streaming", "--concurrency", "16:32:+16"}},
		{"http json", []string{"-m", "acc_direct_bench", "-u", ts.URL, "-i", "http", "--concurrency", "16:32:+16"}},
		{"http binary, open loop, oldest", []string{"-m", "acc_oldest", "-u", ts.URL, "-i", "http-binary", "--request-rate", "400", "--num-of-sequences", "3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			jsonPath, csvPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv")
			args := append([]string{"--sequence-length", "4", "--duration", "300ms", "--warmup", "100ms",
				"--json", jsonPath, "--csv", csvPath}, tc.args...)
			if _, err := runBench(t, args...); err != nil {
				t.Fatalf("ferry bench: %v", err)
			}
			rep := readReport(t, jsonPath, csvPath)
			if rep.SequenceLength != 4 {
				t.Errorf("report: sequence length %d, want 4", rep.SequenceLength)
			}
			for _, l := range rep.Levels {
				checkLevel(t, fmt.Sprintf("%s, level %+v", tc.name, l), l, 1)
			}
		})
	}
}

// TestBenchStability measures in windows until three agree, as perf_analyzer does; the
// wide tolerance keeps a busy test machine from making it flaky, and either way the last
// three windows are reported.
func TestBenchStability(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	dir := t.TempDir()
	jsonPath, csvPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv")
	out, err := runBench(t, "-m", "simple", "--grpc", ts.grpcLn.Addr().String(), "--metrics-url", ts.URL+"/metrics",
		"--concurrency", "2", "--duration", "100ms", "--warmup", "50ms", "--stability-percentage", "60", "--max-trials", "4",
		"--json", jsonPath, "--csv", csvPath)
	if err != nil {
		t.Fatalf("ferry bench: %v", err)
	}
	rep := readReport(t, jsonPath, csvPath)
	l := rep.Levels[0]
	checkLevel(t, "stability", l, 1)
	if rep.Stability != 60 || l.Windows < 3 || l.Windows > 4 || l.Seconds != 0.3 {
		t.Errorf("stability %v, %d windows, %vs reported; want 60, 3 or 4 windows, the last three (0.3 s)", rep.Stability, l.Windows, l.Seconds)
	}
	if !strings.Contains(out, "0.1s windows until 3 agree within ±60%") {
		t.Errorf("the table's title does not say how it measured:\n%s", out)
	}
}

func TestBenchInputDataFile(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	dir := t.TempDir()
	data := filepath.Join(dir, "data.json")
	ints := func(v int) []int { return []int{v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v} }
	file, _ := json.Marshal(map[string]any{"data": []any{
		map[string]any{"INPUT0": ints(1), "INPUT1": ints(2)},
		map[string]any{"INPUT0": ints(3), "INPUT1": ints(4)},
	}})
	if err := os.WriteFile(data, file, 0o644); err != nil {
		t.Fatal(err)
	}
	jsonPath, csvPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv")
	if _, err := runBench(t, "-m", "simple", "-u", ts.URL, "-b", "2", "--input-data", data, "--duration", "200ms",
		"--warmup", "0s", "--json", jsonPath, "--csv", csvPath); err != nil {
		t.Fatalf("ferry bench: %v", err)
	}
	checkLevel(t, "file data", readReport(t, jsonPath, csvPath).Levels[0], 2)
}

func TestBenchEngine(t *testing.T) {
	withConfig := filepath.Join(t.TempDir(), "mlp")
	writeModel(t, filepath.Dir(withConfig), "mlp", 1, onnxgen.MLP(1), `name: "mlp"
platform: "onnxruntime_onnx"
max_batch_size: 4
input [ { name: "input" data_type: TYPE_FP32 dims: [ 256 ] } ]
output [ { name: "output" data_type: TYPE_FP32 dims: [ 10 ] } ]
`)
	writeModel(t, filepath.Dir(withConfig), "mlp", 3, onnxgen.MLP(3), "")
	bare := filepath.Join(t.TempDir(), "mlp")
	writeModel(t, filepath.Dir(bare), "mlp", 1, onnxgen.MLP(1), "")
	for _, tc := range []struct {
		name     string
		args     []string
		batches  []int
		sessions int
	}{
		// Neither config names an instance group: serve runs 2 instances, and so does --engine.
		{"config max_batch_size bounds the sweep", []string{"--engine", withConfig}, []int{1, 2, 4}, 2},
		{"without a config, --max-batch", []string{"--engine", bare, "--max-batch", "2", "-x", "1"}, []int{1, 2}, 2},
		{"--engine-instances", []string{"--engine", bare, "--max-batch", "1", "--engine-instances", "3"}, []int{1}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			jsonPath, csvPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv")
			out, err := runBench(t, append(tc.args, "--duration", "200ms", "--warmup", "50ms", "--json", jsonPath, "--csv", csvPath)...)
			if err != nil {
				t.Fatalf("ferry bench: %v", err)
			}
			rep := readReport(t, jsonPath, csvPath)
			if rep.Mode != bench.ModeEngine || len(rep.Levels) != len(tc.batches) {
				t.Fatalf("report mode %s with %d levels, want engine with batches %v", rep.Mode, len(rep.Levels), tc.batches)
			}
			for i, l := range rep.Levels {
				if l.BatchSize != tc.batches[i] {
					t.Errorf("level %d: batch %d, want %d", i, l.BatchSize, tc.batches[i])
				}
				checkLevel(t, "engine", l, l.BatchSize)
				if l.Concurrency != tc.sessions {
					t.Errorf("level %d: %d sessions side by side, want %d", i, l.Concurrency, tc.sessions)
				}
			}
			if !regexp.MustCompile(`batch +runs/s +items/s`).MatchString(out) {
				t.Errorf("stdout has no engine table:\n%s", out)
			}
		})
	}
}

// TestBenchEngineOpensSessionsAsServeDoes: --engine reads the model's ONNX Runtime
// options as serve does, so an option serve refuses stops the engine too, named.
func TestBenchEngineOpensSessionsAsServeDoes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mlp")
	writeModel(t, filepath.Dir(dir), "mlp", 1, onnxgen.MLP(1), `name: "mlp"
max_batch_size: 2
parameters { key: "execution_mode" value: { string_value: "fast" } }
`)
	_, err := runBench(t, "--engine", dir, "--duration", "100ms", "--warmup", "0s")
	if err == nil || !strings.Contains(err.Error(), `parameters["execution_mode"]: must be 0 (sequential) or 1 (parallel), got "fast"`) {
		t.Errorf("ferry bench --engine with a bad execution_mode: %v, want the parameter named", err)
	}
}

func TestBenchEngineVersion(t *testing.T) {
	root := t.TempDir()
	writeModel(t, root, "m", 2, onnxgen.MLP(1), "")
	writeModel(t, root, "m", 10, onnxgen.MLP(1), "")
	if err := os.MkdirAll(filepath.Join(root, "m", "11"), 0o755); err != nil { // no model.onnx: skipped
		t.Fatal(err)
	}
	if v, err := engineVersion(filepath.Join(root, "m"), ""); err != nil || v != "10" {
		t.Errorf("engineVersion = %q, %v; want the highest with a model, 10", v, err)
	}
	if _, err := engineVersion(t.TempDir(), ""); err == nil {
		t.Error("engineVersion found a version in an empty folder")
	}
}

func TestBenchIsRegistered(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"bench", "--help"}, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "--concurrency") {
		t.Errorf("ferry bench --help does not list --concurrency:\n%s", stdout.String())
	}
}
