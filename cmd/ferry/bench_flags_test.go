package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/bench"
)

// TestBenchPerfAnalyzerFlags runs a sweep given in perf_analyzer's flag forms and
// reads its -f file as perf_analyzer writes it.
func TestBenchPerfAnalyzerFlags(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	dir := t.TempDir()
	jsonPath, csvPath, perfPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv"), filepath.Join(dir, "perf.csv")
	_, stderr, err := runBenchOutputs(t, "-m", "simple", "-u", ts.URL, "--concurrency-range", "1:3:2", "-p", "300",
		"--warmup", "50ms", "-f", perfPath, "--json", jsonPath, "--csv", csvPath)
	if err != nil {
		t.Fatalf("ferry bench: %v", err)
	}
	rep := readReport(t, jsonPath, csvPath)
	if len(rep.Levels) != 2 || rep.Levels[0].Concurrency != 1 || rep.Levels[1].Concurrency != 3 || rep.Duration != 0.3 {
		t.Fatalf("levels %+v over %vs, want concurrency 1 and 3 over 0.3 s", rep.Levels, rep.Duration)
	}
	for _, l := range rep.Levels {
		checkLevel(t, "perf_analyzer flags", l, 1)
	}
	// Not a terminal: a plain line per window, then the level's.
	if n := strings.Count(stderr, ": window 1/1: "); n != 2 {
		t.Errorf("stderr has %d window lines, want one per level:\n%s", n, stderr)
	}
	if strings.Contains(stderr, "\r") {
		t.Errorf("stderr, not a terminal, rewrites lines:\n%q", stderr)
	}

	rows := readCSV(t, perfPath)
	wantHeader := []string{"Concurrency", "Inferences/Second", "Client Send", "Network+Server Send/Recv", "Server Queue",
		"Server Compute Input", "Server Compute Infer", "Server Compute Output", "Client Recv",
		"p50 latency", "p90 latency", "p95 latency", "p99 latency"}
	if len(rows) != 3 || !slices.Equal(rows[0], wantHeader) {
		t.Fatalf("-f file:\n%v\nwant its header\n%v\nand 2 rows", rows, wantHeader)
	}
	var last float64
	for _, row := range rows[1:] {
		ips, err := strconv.ParseFloat(row[1], 64)
		if err != nil || ips < last {
			t.Errorf("row %v: Inferences/Second %q not a number or below the row before (%v): rows go by throughput", row, row[1], last)
		}
		last = ips
		// The server's statistics time every request's inference.
		if infer, err := strconv.Atoi(row[6]); err != nil || infer <= 0 {
			t.Errorf("row %v: Server Compute Infer %q, want > 0 µs", row, row[6])
		}
	}
}

func TestBenchCountWindows(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"closed loop", []string{"--concurrency-range", "2"}},
		{"open loop", []string{"--request-rate-range", "400"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			jsonPath, csvPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv")
			args := append([]string{"-m", "mlp", "--grpc", ts.grpcLn.Addr().String(), "--measurement-mode", "count_windows",
				"--measurement-request-count", "40", "--stability-percentage", "90", "--max-trials", "5", "-p", "50",
				"--warmup", "50ms", "--json", jsonPath, "--csv", csvPath}, tc.args...)
			out, stderr, err := runBenchOutputs(t, args...)
			if err != nil {
				t.Fatalf("ferry bench: %v", err)
			}
			l := readReport(t, jsonPath, csvPath).Levels[0]
			checkLevel(t, tc.name, l, 1)
			// The reported three windows ended after 40 requests each.
			if l.Requests+l.Errors != 120 {
				t.Errorf("%d requests and %d errors in the reported windows, want 3 × 40", l.Requests, l.Errors)
			}
			if !strings.Contains(out, "40-request windows until 3 agree") {
				t.Errorf("the title does not say the windows count requests:\n%s", out)
			}
			if !regexp.MustCompile(`window 1/5 \(40/40 requests\): `).MatchString(stderr) {
				t.Errorf("stderr does not show the first window filled:\n%s", stderr)
			}
		})
	}
}

func TestBenchRejectsPerfAnalyzerForms(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"a sweep that goes down", []string{"--concurrency-range", "4:2"}, `--concurrency-range: concurrency "4:2": end 2 is below start 4`},
		{"a rate sweep that goes down", []string{"--request-rate-range", "40:20:5"}, `--request-rate-range: request rate "40:20:5": end 20 is below start 40`},
		{"both names of concurrency", []string{"--concurrency", "2", "--concurrency-range", "2"}, "--concurrency-range and --concurrency are two names of one setting; give one"},
		{"both loops, perf_analyzer's names", []string{"--concurrency-range", "2", "--request-rate-range", "5"}, "--concurrency-range and --request-rate-range exclude each other"},
		{"interval and duration", []string{"-p", "100", "--duration", "1s"}, "--measurement-interval and --duration are two names of one setting; give one"},
		{"interval of 0", []string{"-p", "0"}, "--measurement-interval 0: want milliseconds, at least 1"},
		{"unknown mode", []string{"--measurement-mode", "windows"}, `--measurement-mode "windows": want time_windows or count_windows`},
		{"a count for time windows", []string{"--measurement-request-count", "10"}, "--measurement-request-count sizes count windows: it needs --measurement-mode count_windows"},
		{"a count of 0", []string{"--measurement-mode", "count_windows", "--measurement-request-count", "0"}, "--measurement-request-count 0: must be at least 1"},
		{"cuda", []string{"--shared-memory", "cuda"}, "--shared-memory cuda: CUDA shared memory needs a GPU, and ferry serves without one; use --shared-memory system"},
		{"unknown shared memory", []string{"--shared-memory", "posix"}, `--shared-memory "posix": want none, system or cuda`},
		{"output size without shared memory", []string{"--output-shared-memory-size", "10"}, "--output-shared-memory-size sizes shared memory regions: it needs --shared-memory system"},
		{"output size of 0", []string{"--shared-memory", "system", "--output-shared-memory-size", "0"}, "--output-shared-memory-size 0: must be at least 1 byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// No server: each is refused before a connection.
			_, err := runBench(t, append([]string{"-m", "simple", "-u", "127.0.0.1:1"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ferry bench %v: err = %v, want %q", tc.args, err, tc.wantErr)
			}
		})
	}
}

// TestLiveLineOnATerminal: a terminal gets one line rewritten in place, never a new
// line; the level's line clears it first.
func TestLiveLineOnATerminal(t *testing.T) {
	var b bytes.Buffer
	ll := &liveLine{w: &b, tty: true}
	lv := bench.Level{Concurrency: 4, BatchSize: 1}
	ll.print(bench.Live{Level: lv, Window: 1, Windows: 3, Requests: 10, Elapsed: time.Second, PerSecond: 10, Mean: 2500})
	ll.print(bench.Live{Level: lv, Window: 1, Windows: 3, Requests: 20, Elapsed: 2 * time.Second, PerSecond: 10, Mean: 2500, Done: true})
	want := "\rconcurrency 4: window 1/3: 1.0s, 10 requests, 0 errors, 10.0 req/s, mean 2.500 ms\033[K" +
		"\rconcurrency 4: window 1/3: 2.0s, 20 requests, 0 errors, 10.0 req/s, mean 2.500 ms\033[K"
	if b.String() != want {
		t.Errorf("terminal output %q, want %q", b.String(), want)
	}
	b.Reset()
	perfAnalyzerFlags{tty: true}.progress(&b, serverLevelName)(lv)
	if !strings.HasPrefix(b.String(), "\r\033[Kconcurrency 4: ") || !strings.HasSuffix(b.String(), "\n") {
		t.Errorf("level line on a terminal %q, want the live line cleared first", b.String())
	}
}
