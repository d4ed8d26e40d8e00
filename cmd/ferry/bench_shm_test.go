package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/bench"
	"github.com/ferryml/ferry/internal/inference"
)

// benchRegions are the /dev/shm files this process's bench runs made and left.
func benchRegions(t *testing.T) []string {
	t.Helper()
	left, err := filepath.Glob(fmt.Sprintf("/dev/shm/ferry_bench_%d_*", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	return left
}

// checkReleased asserts that neither this process nor the server keeps a region.
func checkReleased(t *testing.T, ts *testServer) {
	t.Helper()
	if left := benchRegions(t); len(left) > 0 {
		t.Errorf("regions left in /dev/shm: %v", left)
	}
	code, _, body := httpDo(t, http.MethodGet, ts.URL+"/v2/systemsharedmemory/status", "", nil)
	if code != http.StatusOK || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("server's shared memory status: %d %s, want 200 []", code, body)
	}
	st, err := ts.GRPC.SystemSharedMemoryStatus(context.Background(), &inference.SystemSharedMemoryStatusRequest{})
	if err != nil || len(st.GetRegions()) != 0 {
		t.Errorf("gRPC status: %v regions, err %v; want none", st.GetRegions(), err)
	}
}

// TestBenchSharedMemory runs bench with system shared memory against a real server
// over each protocol: every request reads its input from a region and has its output
// written to one, and at the end nothing stays registered or in /dev/shm.
func TestBenchSharedMemory(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"http", []string{"-u", ts.URL}},
		{"http-binary", []string{"-u", ts.URL, "-i", "http-binary"}},
		{"grpc", []string{"--grpc", ts.grpcLn.Addr().String()}},
		{"grpc streaming", []string{"--grpc", ts.grpcLn.Addr().String(), "--streaming"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			jsonPath, csvPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv")
			// 2 x 64 FP32 in, the same out: 512 bytes fit the regions exactly.
			args := append([]string{"-m", "identity_fp32", "--shape", "INPUT0:64", "-b", "2", "--shared-memory", "system",
				"--output-shared-memory-size", "512", "--concurrency-range", "1:3:2", "--duration", "200ms", "--warmup", "50ms",
				"--metrics-url", "none", "--json", jsonPath, "--csv", csvPath}, tc.args...)
			out, err := runBench(t, args...)
			if err != nil {
				t.Fatalf("ferry bench: %v", err)
			}
			rep := readReport(t, jsonPath, csvPath)
			if rep.SharedMemory != bench.ShmSystem || !strings.Contains(out, "with system shared memory") {
				t.Errorf("report shared memory %q, table:\n%s\nwant it named", rep.SharedMemory, out)
			}
			if len(rep.Levels) != 2 {
				t.Fatalf("%d levels, want 2", len(rep.Levels))
			}
			for _, l := range rep.Levels {
				checkLevel(t, tc.name, l, 2)
			}
			checkReleased(t, ts)
		})
	}
}

// TestBenchSharedMemoryOutputTooSmall: the server says the output did not fit its
// region, and bench says which flag makes room; the regions are released all the same.
func TestBenchSharedMemoryOutputTooSmall(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	for _, proto := range [][]string{{"-u", ts.URL}, {"--grpc", ts.grpcLn.Addr().String()}} {
		_, err := runBench(t, append([]string{"-m", "identity_fp32", "--shape", "INPUT0:64", "--shared-memory", "system",
			"--output-shared-memory-size", "100", "--duration", "100ms"}, proto...)...)
		if err == nil || !strings.Contains(err.Error(), `output "OUTPUT0" needs 256 bytes`) ||
			!strings.Contains(err.Error(), "output regions hold 100 bytes each; a larger output needs --output-shared-memory-size raised") {
			t.Errorf("ferry bench %v: err = %v, want the server's word that OUTPUT0 needs 256 bytes and the flag to raise", proto, err)
		}
		checkReleased(t, ts)
	}
}

// TestBenchSharedMemoryInterrupted cancels a run, as SIGINT does, while its first
// regions are being registered and once all four clients' are: the run ends with the
// cancellation and every region is released.
func TestBenchSharedMemoryInterrupted(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	for _, regions := range []int{1, 8} { // 8: four clients' input and output
		t.Run(fmt.Sprintf("after %d regions", regions), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr bytes.Buffer
			cmd := newBenchCommand(&stdout, &stderr, func() (*onnx.Runtime, func(), error) { return testRuntime, func() {}, nil })
			cmd.SetArgs([]string{"-m", "identity_fp32", "--shape", "INPUT0:64", "--shared-memory", "system", "--grpc", ts.grpcLn.Addr().String(),
				"--concurrency", "4", "--duration", "1h", "--metrics-url", "none"})
			done := make(chan error, 1)
			go func() { done <- cmd.ExecuteContext(ctx) }()
			for deadline := time.Now().Add(30 * time.Second); len(benchRegions(t)) < regions; {
				if time.Now().After(deadline) {
					t.Fatalf("after 30s, regions: %v", benchRegions(t))
				}
				select {
				case err := <-done:
					t.Fatalf("bench ended before it was interrupted: %v\n%s", err, stderr.String())
				case <-time.After(time.Millisecond):
				}
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("interrupted bench: err = %v, want context.Canceled", err)
			}
			checkReleased(t, ts)
		})
	}
}
