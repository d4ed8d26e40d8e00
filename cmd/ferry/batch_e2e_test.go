package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/ferryml/ferry/internal/batch/batchgen"
	"github.com/ferryml/ferry/internal/lane/lanetest"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
)

// batchSetup is the example repository (examples/models, `make models`, with the
// tabular and mlp models and their configs) and the tabular model's mapping file.
func batchSetup(t testing.TB) (repo, mapping string) {
	t.Helper()
	repo, err := lanetest.ExampleModels()
	if err != nil {
		t.Fatal(err)
	}
	mapping = filepath.Join(t.TempDir(), "mapping.yaml")
	os.WriteFile(mapping, []byte("features: ["+strings.Join(batchgen.Features, ", ")+"]\n"), 0o644)
	return repo, mapping
}

// onlyTabular serves the tabular model alone.
func onlyTabular(c *serveConfig) { c.mode, c.loadModels = "explicit", []string{"tabular"} }

func genInput(t testing.TB, name string, o batchgen.Options) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := batchgen.Write(p, o); err != nil {
		t.Fatal(err)
	}
	return p
}

// batchProc is `ferry batch` in a child process (the test binary run as ferry).
type batchProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{}
	hwm    int64 // peak resident memory (VmHWM, kB), sampled from /proc while it ran
}

func startBatch(t testing.TB, args ...string) *batchProc {
	t.Helper()
	ort, err := findORT()
	if err != nil {
		t.Fatal(err)
	}
	argv, _ := json.Marshal(append([]string{"batch"}, args...))
	p := &batchProc{cmd: exec.Command(os.Args[0], "-test.run=^$"), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), runAsFerry+"="+string(argv), "FERRY_ORT_LIB="+ort)
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		p.cmd.Wait()
		close(exited)
	}()
	go func() {
		defer close(p.done)
		status := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
		for {
			if kb := vmHWM(status); kb > 0 {
				p.hwm = kb // the last reading before the process ends is its peak
			}
			select {
			case <-exited:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); p.wait() })
	return p
}

// wait waits for the process to end and returns its exit code.
func (p *batchProc) wait() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

func vmHWM(status string) int64 {
	b, err := os.ReadFile(status)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// readScores reads a job's output, id -> score, failing on a row seen twice.
func readScores(t testing.TB, path string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	add := func(id string, score float64) {
		if _, dup := out[id]; dup {
			t.Fatalf("%s: row %s twice", path, id)
		}
		out[id] = score
	}
	if filepath.Ext(path) == ".csv" {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if i == 0 {
				continue
			}
			id, s, _ := strings.Cut(line, ",")
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s line %d: %q", path, i, line)
			}
			add(id, f)
		}
		return out
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	rows := make([]parquet.Row, 512)
	for {
		n, err := r.ReadRows(rows)
		for _, row := range rows[:n] {
			add(string(row[0].ByteArray()), float64(row[1].Float()))
		}
		if err != nil {
			return out
		}
	}
}

// checkOnline compares sampled rows' scores with online inference of the same rows,
// one request each, over gRPC to a server of the same repository.
func checkOnline(t testing.TB, repo string, seed uint64, rows int, got map[string]float64) {
	t.Helper()
	ts := startServer(t, repo, onlyTabular)
	m := ts.grpc.Model("tabular", "")
	for i := 0; i < rows; i += max(rows/50, 1) {
		r := batchgen.RowAt(seed, i)
		x := []float32{float32(r.Age), float32(r.Income), float32(r.DebtRatio), float32(r.Tenure), float32(r.LatePayments), r.Utilization}
		var data []byte
		for _, f := range x {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(f))
		}
		in := &tensor.Tensor{Name: "features", DType: tensor.FP32, Shape: tensor.Shape{1, 6}, Data: data}
		resp, err := m.Infer(context.Background(), &v2client.Request{Inputs: []*tensor.Tensor{in}})
		if err != nil {
			t.Fatal(err)
		}
		want := float64(math.Float32frombits(binary.LittleEndian.Uint32(resp.Outputs[0].Data)))
		if s, ok := got["r"+strconv.Itoa(i)]; !ok || math.Abs(s-want) > 1e-5 {
			t.Fatalf("row %d: batch %v (present %v), online %v", i, s, ok, want)
		}
	}
}

// TestBatchKill9ThreeTimesResumes: a real `ferry batch` process killed with SIGKILL
// three times at random points (once perhaps while loading, twice mid-job) and run again
// to the end leaves every row exactly once, each score equal to online inference.
func TestBatchKill9ThreeTimesResumes(t *testing.T) {
	rows := 200000
	if batchRace {
		rows = 60000
	}
	repo, mapping := batchSetup(t)
	in := genInput(t, "in.parquet", batchgen.Options{Rows: rows, RowGroupRows: 8192, Seed: 11})
	out := filepath.Join(t.TempDir(), "out.parquet")
	args := []string{"--model-repository", repo, "--model", "tabular", "--input", in, "--output", out,
		"--id-column", "id", "--mapping", mapping, "--chunk-rows", "1024"}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	chunks := func() int {
		var cp struct{ Chunks int }
		b, _ := os.ReadFile(out + ".ferry-batch/checkpoint.json")
		json.Unmarshal(b, &cp)
		return cp.Chunks
	}
	for kill := range 3 {
		p := startBatch(t, args...)
		if kill == 0 {
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		} else {
			target := chunks() + 2 + rng.IntN(8)
			for chunks() < target {
				select {
				case <-p.done:
					t.Fatalf("the job ended before kill %d: %s", kill+1, p.stderr.String())
				case <-time.After(time.Duration(rng.IntN(3)) * time.Millisecond):
				}
			}
		}
		p.cmd.Process.Kill()
		p.wait()
		t.Logf("kill %d: %d chunks committed", kill+1, chunks())
	}
	p := startBatch(t, args...)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d: %s", code, p.stderr.String())
	}
	got := readScores(t, out)
	if len(got) != rows {
		t.Fatalf("%d rows, want %d", len(got), rows)
	}
	checkOnline(t, repo, 11, rows, got)
	if _, err := os.Stat(out + ".ferry-batch"); !os.IsNotExist(err) {
		t.Fatalf("work folder left: %v", err)
	}
}

// TestBatchFourShardProcesses: four `ferry batch --shard I/4` processes, running at
// once, together write exactly the rows of one unsharded run, each once: Parquet (by row
// group) and CSV (by byte range).
func TestBatchFourShardProcesses(t *testing.T) {
	rows := 40000
	if batchRace {
		rows = 12000
	}
	repo, mapping := batchSetup(t)
	for _, ext := range []string{"parquet", "csv"} {
		t.Run(ext, func(t *testing.T) {
			in := genInput(t, "in."+ext, batchgen.Options{Rows: rows, RowGroupRows: 1000, Seed: 13})
			dir := t.TempDir()
			args := func(out string, more ...string) []string {
				return append([]string{"--model-repository", repo, "--model", "tabular", "--input", in, "--output", filepath.Join(dir, out),
					"--id-column", "id", "--mapping", mapping}, more...)
			}
			procs := []*batchProc{startBatch(t, args("all."+ext)...)}
			for i := range 4 {
				procs = append(procs, startBatch(t, args("part-{shard}."+ext, "--shard", fmt.Sprintf("%d/4", i))...))
			}
			for _, p := range procs {
				if code := p.wait(); code != 0 {
					t.Fatalf("exit %d: %s", code, p.stderr.String())
				}
			}
			all := readScores(t, filepath.Join(dir, "all."+ext))
			union := map[string]float64{}
			for i := range 4 {
				part := readScores(t, filepath.Join(dir, fmt.Sprintf("part-%d.%s", i, ext)))
				if len(part) == 0 {
					t.Fatalf("shard %d is empty", i)
				}
				for id, s := range part {
					if _, dup := union[id]; dup {
						t.Fatalf("row %s in two shards", id)
					}
					union[id] = s
				}
			}
			if len(all) != rows || len(union) != rows {
				t.Fatalf("unsharded %d rows, shards %d, want %d", len(all), len(union), rows)
			}
			for id, s := range all {
				if u, ok := union[id]; !ok || math.Abs(u-s) > 1e-5 {
					t.Fatalf("row %s: unsharded %v, shards %v (%v)", id, s, u, ok)
				}
			}
		})
	}
}

// TestBatchPeakMemoryBounded: the peak resident memory (VmHWM) of a real process
// scoring a Parquet file ten times larger stays within a small margin of the smaller
// file's: rows stream in chunks, memory does not grow with the file. The collector's
// headroom (--gc-headroom, 64 MiB by default: the heap may grow that far over its live
// bytes between collections) is set small here, so that both runs collect many times
// and their peaks compare steady states; with the default, the smaller file can end
// before its heap first reaches the goal (under -race, whose shadow memory multiplies
// the headroom, 198 against 355 MiB).
func TestBatchPeakMemoryBounded(t *testing.T) {
	small, large := 60000, 600000
	if batchRace {
		small, large = 20000, 200000
	}
	repo, mapping := batchSetup(t)
	peak := func(rows int) int64 {
		in := genInput(t, "in.parquet", batchgen.Options{Rows: rows, Seed: 17})
		p := startBatch(t, "--model-repository", repo, "--model", "tabular", "--input", in, "--output", filepath.Join(t.TempDir(), "out.parquet"),
			"--id-column", "id", "--mapping", mapping, "--chunk-rows", "2048", // both runs reach the steady state of many chunks
			"--gc-headroom", "8MiB")
		if code := p.wait(); code != 0 {
			t.Fatalf("exit %d: %s", code, p.stderr.String())
		}
		return p.hwm
	}
	s, l := peak(small), peak(large)
	t.Logf("peak RSS (VmHWM): %d rows %d MiB, %d rows %d MiB", small, s>>10, large, l>>10)
	if s == 0 || l > s*13/10+32<<10 {
		t.Fatalf("peak RSS grew with the file: %d kB for %d rows, %d kB for %d", s, small, l, large)
	}
}

// TestBatchThroughServer: --server scores through a running server over gRPC with
// the same results, and a wrong column fails at start naming it.
func TestBatchThroughServer(t *testing.T) {
	repo, mapping := batchSetup(t)
	ts := startServer(t, repo, onlyTabular)
	const rows = 3000
	in := genInput(t, "in.csv", batchgen.Options{Rows: rows, Seed: 19})
	out := filepath.Join(t.TempDir(), "out.csv")
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"batch", "--server", "grpc://" + ts.grpcLn.Addr().String(), "--model", "tabular",
		"--input", in, "--output", out, "--id-column", "id", "--mapping", mapping, "--priority", "2"}, os.Getenv, &stderr, &stderr)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	got := readScores(t, out)
	if len(got) != rows || !strings.Contains(stderr.String(), "3000 rows scored, 0 rejected") {
		t.Fatalf("%d rows; %s", len(got), stderr.String())
	}
	checkOnline(t, repo, 19, rows, got)

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("features: [age, income, debt_ratio, tenure, late_payments, utilisation]\n"), 0o644)
	err = run(context.Background(), []string{"batch", "--server", ts.grpcLn.Addr().String(), "--model", "tabular",
		"--input", in, "--output", out, "--mapping", bad}, os.Getenv, &stderr, &stderr)
	if err == nil || !strings.Contains(err.Error(), `"utilisation"`) {
		t.Fatalf("wrong column: %v", err)
	}
}

// TestBatchFlagErrors: flags that cannot work fail before anything runs, saying why.
func TestBatchFlagErrors(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "m.yaml")
	os.WriteFile(badYAML, []byte("features: 3\n"), 0o644)
	base := []string{"batch", "--model", "tabular", "--input", "in.parquet", "--output", "out.parquet"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--server", "x:1", "--shard", "4/4"}, "--shard"},
		{[]string{"--shard", "0/2"}, "exactly one of --model-repository"},
		{[]string{"--server", "x:1", "--model-repository", dir}, "exactly one of --model-repository"},
		{[]string{"--server", "x:1", "--mapping", badYAML}, "--mapping"},
		{[]string{"--server", "http://x:1"}, "grpc://"},
	}
	for _, c := range cases {
		err := run(context.Background(), append(base, c.args...), os.Getenv, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %s", c.args, err, c.want)
		}
	}
}
