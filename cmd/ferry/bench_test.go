package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/platform/gctune"
	"github.com/ferryml/ferry/tools/onnxgen"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// These benchmarks compare Ferry's requests/s with a bare server doing only the wire
// work (decode the V2 request, encode an echo response) on the same machine, in the
// same run, alternating the two so that load from elsewhere on the host hits both
// sides alike. They report ratios, never pass/fail: run them with
//
//	go test -run=NONE -bench=vsBare -benchtime=1x -count=1 ./cmd/ferry/
//
// b.N is irrelevant: each benchmark measures once, for -benchrounds rounds of
// -benchdur per side (in interleaved slices of -benchslice), and reports its figures
// with b.ReportMetric.
var (
	vsDur         = flag.Duration("benchdur", 2*time.Second, "how long each side runs per round in the vsBare benchmarks")
	vsRounds      = flag.Int("benchrounds", 3, "rounds per vsBare benchmark; each round runs both sides for -benchdur")
	vsSlice       = flag.Duration("benchslice", 250*time.Millisecond, "the sides alternate in slices this long")
	vsConc        = flag.Int("benchconc", 16, "concurrent clients (HTTP connections, gRPC streams) in the vsBare benchmarks")
	vsGRPCConns   = flag.Int("benchgrpcconns", 1, "gRPC ClientConns the concurrent streams share, per side")
	vsModelConfig = flag.String("benchmodelconfig", "", "config.pbtxt for identity_fp32 (default: none, so auto-complete gives max_batch_size 4 and dynamic batching)")
	vsOnly        = flag.String("benchonly", "", "run only this side (ferry or bare) and report its figures: for -cpuprofile of one side")
	vsGzip        = flag.Bool("benchgzip", false, "REST clients send Accept-Encoding: gzip, as Go's and Python requests' clients do by default")
)

// vsElems is the width of the [1, vsElems] FP32 input every request carries.
const vsElems = 16

// vsWorker sends one request and reports whether it failed. Each client goroutine gets
// its own, so a side may keep per-goroutine buffers.
type vsWorker func(ctx context.Context) error

// vsSide is one server under comparison: newWorker is called once per client goroutine.
type vsSide struct {
	name      string
	newWorker func() vsWorker
}

// vsTally is what one side did over some slices: requests completed, wall time, and the
// CPU time (user+sys) the whole test process used meanwhile, clients included.
type vsTally struct {
	n        int64
	wall     time.Duration
	cpu      time.Duration
	slices   int
	minSlice float64 // lowest req/s of one slice
	// allocs and allocBytes are the heap allocations of the whole process meanwhile:
	// what a side allocates a request sets how often the collector runs.
	allocs, allocBytes uint64
}

func (t vsTally) rate() float64 { return float64(t.n) / t.wall.Seconds() }

// cpuPerReq is the process's CPU time per request in µs. Unlike req/s it hardly changes
// when other work on the host takes cores away, so it is the steadier figure here.
func (t vsTally) cpuPerReq() float64 { return float64(t.cpu.Microseconds()) / float64(t.n) }

func (t *vsTally) add(u vsTally) {
	r := u.rate()
	if t.slices == 0 || r < t.minSlice {
		t.minSlice = r
	}
	t.n, t.wall, t.cpu, t.slices = t.n+u.n, t.wall+u.wall, t.cpu+u.cpu, t.slices+1
	t.allocs, t.allocBytes = t.allocs+u.allocs, t.allocBytes+u.allocBytes
}

// allocsPerReq is heap objects and bytes allocated per request.
func (t vsTally) allocsPerReq() (objects, bytes float64) {
	return float64(t.allocs) / float64(t.n), float64(t.allocBytes) / float64(t.n)
}

// vsAllocs reads the process's cumulative heap allocations (objects, bytes); unlike
// runtime.ReadMemStats it does not stop the world.
func vsAllocs() (objects, bytes uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

func vsProcessCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vsMeasure runs conc goroutines against s for d. Requests run under their own context,
// not one with d's deadline, so that a request cut short by the end of the slice is never
// mistaken for a failure; the slice ends when the requests in flight at d have finished,
// and counts them. Any failed request fails the benchmark: a fast error is not a result.
func vsMeasure(b *testing.B, s vsSide, conc int, d time.Duration) vsTally {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		stop    atomic.Bool
		done    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	workers := make([]vsWorker, conc)
	for i := range workers {
		workers[i] = s.newWorker()
	}
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	objs0, bytes0 := vsAllocs()
	cpu0, start := vsProcessCPU(b), time.Now()
	for _, w := range workers {
		wg.Go(func() {
			for !stop.Load() {
				if err := w(ctx); err != nil {
					errOnce.Do(func() { first = err; stop.Store(true); cancel() })
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	wall, cpu := time.Since(start), vsProcessCPU(b)-cpu0
	objs, bytes := vsAllocs()
	if first != nil {
		b.Fatalf("%s: %v", s.name, first)
	}
	return vsTally{n: done.Load(), wall: wall, cpu: cpu, allocs: objs - objs0, allocBytes: bytes - bytes0}
}

// vsCompare runs ferry and bare alternately in slices of -benchslice, swapping which goes
// first every slice, until each has run -benchdur per round, for -benchrounds rounds.
// Short interleaved slices matter on a shared 2-core host: load from elsewhere comes
// and goes on a scale of seconds, and must hit both sides alike. It reports the rates
// over all rounds, their ratio, the lowest and highest per-round ratio (the spread), and
// CPU µs per request for each side with their ratio (bare/ferry, so higher is better as
// for the throughput ratio). Metrics are named after the sides.
func vsCompare(b *testing.B, ferry, bare vsSide) {
	b.Helper()
	if *vsRounds < 1 || *vsDur <= 0 || *vsSlice <= 0 || *vsConc < 1 {
		b.Fatalf("-benchrounds, -benchdur, -benchslice and -benchconc must be positive")
	}
	if *vsOnly != "" {
		vsRunOnly(b, ferry, bare)
		return
	}
	// Warm up both sides (connections, ORT's first run, pools) outside the measurement.
	vsMeasure(b, ferry, *vsConc, *vsSlice)
	vsMeasure(b, bare, *vsConc, *vsSlice)

	var all [2]vsTally // ferry, bare
	minRatio, maxRatio := math.Inf(1), math.Inf(-1)
	var ratios []float64
	sides := [2]vsSide{ferry, bare}
	slice := 0
	for r := range *vsRounds {
		var round [2]vsTally
		for round[0].wall < *vsDur || round[1].wall < *vsDur {
			for k := range 2 {
				i := (slice + k) % 2
				round[i].add(vsMeasure(b, sides[i], *vsConc, *vsSlice))
			}
			slice++
		}
		f, bb := round[0], round[1]
		b.Logf("round %d: %s %6.0f req/s (%4.0f µs CPU/req, slowest slice %6.0f req/s), %s %6.0f req/s (%4.0f µs CPU/req, slowest slice %6.0f req/s): ratio %.3f, CPU ratio %.3f",
			r+1, ferry.name, f.rate(), f.cpuPerReq(), f.minSlice, bare.name, bb.rate(), bb.cpuPerReq(), bb.minSlice, f.rate()/bb.rate(), bb.cpuPerReq()/f.cpuPerReq())
		ratios = append(ratios, f.rate()/bb.rate())
		minRatio = min(minRatio, f.rate()/bb.rate())
		maxRatio = max(maxRatio, f.rate()/bb.rate())
		all[0].add(f)
		all[1].add(bb)
	}
	b.ReportMetric(all[0].rate(), ferry.name+"_req/s")
	b.ReportMetric(all[1].rate(), bare.name+"_req/s")
	b.ReportMetric(all[0].rate()/all[1].rate(), "ratio")
	// The median of the rounds' ratios too, as the other two-sided benchmarks report
	// theirs: a round in which the machine slowed during one side's slices moves the
	// whole run's ratio, not the median.
	b.ReportMetric(medianOf(ratios), "ratio_median")
	b.ReportMetric(minRatio, "ratio_min")
	b.ReportMetric(maxRatio, "ratio_max")
	b.ReportMetric(all[0].cpuPerReq(), ferry.name+"_cpu_us/req")
	b.ReportMetric(all[1].cpuPerReq(), bare.name+"_cpu_us/req")
	b.ReportMetric(all[1].cpuPerReq()/all[0].cpuPerReq(), "cpu_ratio")
	for _, t := range []struct {
		name string
		vsTally
	}{{ferry.name, all[0]}, {bare.name, all[1]}} {
		objs, bytes := t.allocsPerReq()
		b.ReportMetric(objs, t.name+"_allocs/req")
		b.ReportMetric(bytes, t.name+"_B/req")
	}
}

// vsRunOnly runs the side -benchonly names for -benchrounds × -benchdur, so that a CPU
// profile shows that side alone; no ratio is reported.
func vsRunOnly(b *testing.B, sides ...vsSide) {
	b.Helper()
	for _, s := range sides {
		if s.name != *vsOnly {
			continue
		}
		vsMeasure(b, s, *vsConc, *vsSlice) // warm-up
		t := vsMeasure(b, s, *vsConc, time.Duration(*vsRounds)*(*vsDur))
		b.ReportMetric(t.rate(), s.name+"_req/s")
		b.ReportMetric(t.cpuPerReq(), s.name+"_cpu_us/req")
		return
	}
	b.Fatalf("-benchonly %q: want ferry or bare", *vsOnly)
}

// vsRepo is a repository holding only identity_fp32, without a config unless
// -benchmodelconfig names one: auto-complete then gives max_batch_size 4, INPUT0 FP32
// dims [-1] and dynamic batching with no queue delay.
func vsRepo(b *testing.B) string {
	repo := b.TempDir()
	config := ""
	if *vsModelConfig != "" {
		c, err := os.ReadFile(*vsModelConfig)
		if err != nil {
			b.Fatal(err)
		}
		config = string(c)
	}
	writeModel(b, repo, "identity_fp32", 1, onnxgen.Identity(onnxgen.Float, "identity_fp32"), config)
	return repo
}

func vsValues() []float32 {
	v := make([]float32, vsElems)
	for i := range v {
		v[i] = float32(i) + 0.5
	}
	return v
}

// vsTensor, vsRequest and vsResponse are the V2 REST JSON messages as a plain
// encoding/json program would declare them, for FP32 data.
type vsTensor struct {
	Name       string         `json:"name"`
	Shape      []int64        `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       []float32      `json:"data"`
}

type vsRequest struct {
	ID         string         `json:"id,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Inputs     []vsTensor     `json:"inputs"`
	Outputs    []struct {
		Name string `json:"name"`
	} `json:"outputs,omitempty"`
}

type vsResponse struct {
	ModelName    string     `json:"model_name"`
	ModelVersion string     `json:"model_version,omitempty"`
	ID           string     `json:"id,omitempty"`
	Outputs      []vsTensor `json:"outputs"`
}

// bareRESTHandler is the baseline REST server: encoding/json in, the input echoed as
// OUTPUT0 out, on its own mux.
func bareRESTHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/models/{model}/infer", func(w http.ResponseWriter, r *http.Request) {
		var req vsRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"`+err.Error()+`"}`, http.StatusBadRequest)
			return
		}
		resp := vsResponse{ModelName: r.PathValue("model"), ModelVersion: "1", ID: req.ID}
		for _, in := range req.Inputs {
			resp.Outputs = append(resp.Outputs, vsTensor{Name: "OUTPUT0", Shape: in.Shape, Datatype: in.Datatype, Data: in.Data})
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(&resp); err != nil {
			return // the client went away
		}
	})
	return mux
}

// vsRESTSide posts body to url from keep-alive connections of one shared Transport.
//
// The Transport does not add Accept-Encoding: gzip (DisableCompression), so by default
// both servers answer uncompressed JSON, which is what the comparison is about. With
// -benchgzip the header is sent explicitly (and the body discarded undecoded): Ferry
// may then compress (it leaves small responses alone) while the bare server, as HTTP
// allows, ignores it.
func vsRESTSide(b *testing.B, name, url string, body []byte) vsSide {
	tr := &http.Transport{MaxIdleConns: 2 * *vsConc, MaxIdleConnsPerHost: 2 * *vsConc,
		IdleConnTimeout: time.Minute, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return vsSide{name: name, newWorker: func() vsWorker {
		return func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			if *vsGzip {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return err
		}
	}}
}

// vsCheckREST sends body once and checks that OUTPUT0 echoes the input values.
func vsCheckREST(b *testing.B, url string, body []byte, want []float32) {
	b.Helper()
	code, _, got := httpDo(b, http.MethodPost, url, "application/json", bytes.NewReader(body))
	if code != http.StatusOK {
		b.Fatalf("POST %s: %d %s", url, code, got)
	}
	var resp vsResponse
	if err := json.Unmarshal(got, &resp); err != nil {
		b.Fatalf("POST %s: %v in %s", url, err, got)
	}
	if len(resp.Outputs) != 1 || !vsEqualFloats(resp.Outputs[0].Data, want) {
		b.Fatalf("POST %s = %s, want OUTPUT0 data %v", url, got, want)
	}
}

func vsEqualFloats(a, b []float32) bool {
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

// BenchmarkRESTvsBare compares V2 REST JSON infer on identity_fp32 with a [1,16] FP32
// input against a bare net/http + encoding/json echo server. Goal: ratio ≥ 0.6.
func BenchmarkRESTvsBare(b *testing.B) {
	if testing.Short() {
		b.Skip("throughput comparison; not run with -short")
	}
	servingGC(b)
	ts := startServer(b, vsRepo(b))
	bare := httptest.NewServer(bareRESTHandler())
	b.Cleanup(bare.Close)

	want := vsValues()
	body, err := json.Marshal(vsRequest{ID: "1", Inputs: []vsTensor{{Name: "INPUT0", Shape: []int64{1, vsElems}, Datatype: "FP32", Data: want}}})
	if err != nil {
		b.Fatal(err)
	}
	const path = "/v2/models/identity_fp32/infer"
	vsCheckREST(b, ts.URL+path, body, want)
	vsCheckREST(b, bare.URL+path, body, want)
	vsCompare(b, vsRESTSide(b, "ferry", ts.URL+path, body), vsRESTSide(b, "bare", bare.URL+path, body))
	vsReportBatching(b, ts)
}

// vsReportBatching reports how many rows Ferry's executions averaged over the whole run
// (warm-up and checks included), from the statistics extension: auto-complete gives
// identity_fp32 dynamic batching, so concurrent requests may share an execution.
func vsReportBatching(b *testing.B, ts *testServer) {
	b.Helper()
	if *vsOnly == "bare" {
		return
	}
	code, _, got := httpDo(b, http.MethodGet, ts.URL+"/v2/models/identity_fp32/stats", "", nil)
	if code != http.StatusOK {
		b.Fatalf("stats: %d %s", code, got)
	}
	var stats struct {
		ModelStats []struct {
			InferenceCount uint64 `json:"inference_count"`
			ExecutionCount uint64 `json:"execution_count"`
		} `json:"model_stats"`
	}
	if err := json.Unmarshal(got, &stats); err != nil || len(stats.ModelStats) != 1 {
		b.Fatalf("stats %s: %v", got, err)
	}
	st := stats.ModelStats[0]
	if st.ExecutionCount > 0 {
		b.ReportMetric(float64(st.InferenceCount)/float64(st.ExecutionCount), "ferry_rows/exec")
	}
}

// bareGRPCServer is the baseline gRPC server: ModelInfer returns the request's raw input
// contents as OUTPUT0.
type bareGRPCServer struct {
	inference.UnimplementedGRPCInferenceServiceServer
}

func (bareGRPCServer) ModelInfer(_ context.Context, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	resp := &inference.ModelInferResponse{ModelName: req.GetModelName(), ModelVersion: "1", Id: req.GetId(),
		RawOutputContents: req.GetRawInputContents()}
	for _, in := range req.GetInputs() {
		resp.Outputs = append(resp.Outputs, &inference.ModelInferResponse_InferOutputTensor{
			Name: "OUTPUT0", Datatype: in.GetDatatype(), Shape: in.GetShape()})
	}
	return resp, nil
}

// vsGRPCSide spreads its workers over -benchgrpcconns ClientConns to addr.
func vsGRPCSide(b *testing.B, name, addr string, req *inference.ModelInferRequest) vsSide {
	clients := make([]inference.GRPCInferenceServiceClient, *vsGRPCConns)
	for i := range clients {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		clients[i] = inference.NewGRPCInferenceServiceClient(conn)
	}
	var next atomic.Int64
	return vsSide{name: name, newWorker: func() vsWorker {
		c := clients[int(next.Add(1))%len(clients)]
		return func(ctx context.Context) error {
			_, err := c.ModelInfer(ctx, req)
			return err
		}
	}}
}

// vsCheckGRPC sends req once and checks that OUTPUT0 echoes the input bytes.
func vsCheckGRPC(b *testing.B, name, addr string, req *inference.ModelInferRequest) {
	b.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := inference.NewGRPCInferenceServiceClient(conn).ModelInfer(ctx, req)
	if err != nil {
		b.Fatalf("%s ModelInfer: %v", name, err)
	}
	raw := resp.GetRawOutputContents()
	if len(resp.GetOutputs()) != 1 || len(raw) != 1 || !bytes.Equal(raw[0], req.RawInputContents[0]) {
		b.Fatalf("%s ModelInfer = %v, want OUTPUT0 raw %x", name, resp, req.RawInputContents[0])
	}
}

// BenchmarkGRPCvsBare compares gRPC ModelInfer (raw_input_contents) on identity_fp32
// with a [1,16] FP32 input against a bare grpc-go echo server. Goal: ratio ≥ 0.7.
func BenchmarkGRPCvsBare(b *testing.B) {
	if testing.Short() {
		b.Skip("throughput comparison; not run with -short")
	}
	servingGC(b)
	ts := startServer(b, vsRepo(b))
	bareAddr := treesBareGRPC(b)
	req := vsGRPCRequest()
	ferryAddr := ts.grpcLn.Addr().String()
	vsCheckGRPC(b, "ferry", ferryAddr, req)
	vsCheckGRPC(b, "bare", bareAddr, req)
	vsCompare(b, vsGRPCSide(b, "ferry", ferryAddr, req), vsGRPCSide(b, "bare", bareAddr, req))
	vsReportBatching(b, ts)
}

// vsGRPCRequest is the gRPC benchmarks' request: identity_fp32 with a [1,16] FP32
// input in raw_input_contents.
func vsGRPCRequest() *inference.ModelInferRequest {
	raw := make([]byte, 0, 4*vsElems)
	for _, v := range vsValues() {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	return &inference.ModelInferRequest{ModelName: "identity_fp32", Id: "1",
		Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "INPUT0", Datatype: "FP32", Shape: []int64{1, vsElems}}},
		RawInputContents: [][]byte{raw}}
}

// servingGC runs the garbage collector of the benchmark process as `ferry serve` runs it
// (gctune with the default --gc-headroom), for the whole benchmark: the server measured
// here lives in the test binary, which serveCommand's tuner does not reach. Both sides of
// a comparison share the process, so both get it.
func servingGC(b *testing.B) {
	h := gcHeadroom(defaultGCHeadroom, os.Getenv)
	if h == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { gctune.Run(ctx, h, time.Second); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
}
