package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	inference "github.com/ferryml/ferry/internal/proto"
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
// -benchdur per side, and reports its figures with b.ReportMetric.
var (
	benchDur    = flag.Duration("benchdur", 2*time.Second, "how long each side runs per round in the vsBare benchmarks")
	benchRounds = flag.Int("benchrounds", 3, "rounds per vsBare benchmark; each round runs both sides, in alternating order")
	benchConc   = flag.Int("benchconc", 16, "concurrent clients (HTTP connections, gRPC streams) in the vsBare benchmarks")
	benchConns  = flag.Int("benchgrpcconns", 1, "gRPC ClientConns the concurrent streams share, per side")
)

// benchElems is the width of the [1, benchElems] FP32 input every request carries.
const benchElems = 16

// worker sends one request and reports whether it failed. Each worker goroutine gets
// its own, so a side may keep per-goroutine buffers.
type worker func(ctx context.Context) error

// side is one server under comparison: newWorker is called once per client goroutine.
type side struct {
	name      string
	newWorker func() worker
}

// measure runs conc goroutines against s for d and returns completed requests per
// second. Any failed request fails the benchmark: a fast error is not a result.
func measure(b *testing.B, s side, conc int, d time.Duration) float64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		done    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	start := time.Now()
	for range conc {
		w := s.newWorker()
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := w(ctx); err != nil {
					if ctx.Err() != nil { // cut off by the deadline, not a failure
						return
					}
					errOnce.Do(func() { first = err; cancel() })
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		b.Fatalf("%s: %v", s.name, first)
	}
	return float64(done.Load()) / elapsed.Seconds()
}

// compare alternates ferry and bare for -benchrounds rounds (ferry first in even rounds,
// bare first in odd ones, so drift within a round favours neither) and reports the mean
// rates, their ratio, and the lowest and highest per-round ratio as the spread.
func compare(b *testing.B, ferry, bare side) {
	b.Helper()
	if *benchRounds < 1 || *benchDur <= 0 || *benchConc < 1 {
		b.Fatalf("-benchrounds, -benchdur and -benchconc must be positive")
	}
	// Warm up both sides (connections, ORT's first run, pools) outside the measurement.
	measure(b, ferry, *benchConc, *benchDur/4)
	measure(b, bare, *benchConc, *benchDur/4)

	var sumFerry, sumBare float64
	minRatio, maxRatio := math.Inf(1), math.Inf(-1)
	for r := range *benchRounds {
		var f, bb float64
		if r%2 == 0 {
			f = measure(b, ferry, *benchConc, *benchDur)
			bb = measure(b, bare, *benchConc, *benchDur)
		} else {
			bb = measure(b, bare, *benchConc, *benchDur)
			f = measure(b, ferry, *benchConc, *benchDur)
		}
		b.Logf("round %d: ferry %.0f req/s, bare %.0f req/s, ratio %.3f", r+1, f, bb, f/bb)
		sumFerry += f
		sumBare += bb
		minRatio = min(minRatio, f/bb)
		maxRatio = max(maxRatio, f/bb)
	}
	n := float64(*benchRounds)
	b.ReportMetric(sumFerry/n, "ferry_req/s")
	b.ReportMetric(sumBare/n, "bare_req/s")
	b.ReportMetric(sumFerry/sumBare, "ratio")
	b.ReportMetric(minRatio, "ratio_min")
	b.ReportMetric(maxRatio, "ratio_max")
}

// benchRepo is a repository holding only identity_fp32 without a config: auto-complete
// gives max_batch_size 4 and INPUT0 FP32 dims [-1].
func benchRepo(b *testing.B) string {
	repo := b.TempDir()
	writeModel(b, repo, "identity_fp32", 1, onnxgen.Identity(onnxgen.Float, "identity_fp32"), "")
	return repo
}

func benchValues() []float32 {
	v := make([]float32, benchElems)
	for i := range v {
		v[i] = float32(i) + 0.5
	}
	return v
}

// v2Tensor, v2Request and v2Response are the V2 REST JSON messages as a plain
// encoding/json program would declare them, for FP32 data.
type v2Tensor struct {
	Name       string         `json:"name"`
	Shape      []int64        `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       []float32      `json:"data"`
}

type v2Request struct {
	ID         string         `json:"id,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Inputs     []v2Tensor     `json:"inputs"`
	Outputs    []struct {
		Name string `json:"name"`
	} `json:"outputs,omitempty"`
}

type v2Response struct {
	ModelName    string     `json:"model_name"`
	ModelVersion string     `json:"model_version,omitempty"`
	ID           string     `json:"id,omitempty"`
	Outputs      []v2Tensor `json:"outputs"`
}

// bareREST is the baseline REST server: encoding/json in, the input echoed as
// OUTPUT0 out, on its own mux.
func bareREST() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/models/{model}/infer", func(w http.ResponseWriter, r *http.Request) {
		var req v2Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"`+err.Error()+`"}`, http.StatusBadRequest)
			return
		}
		resp := v2Response{ModelName: r.PathValue("model"), ModelVersion: "1", ID: req.ID}
		for _, in := range req.Inputs {
			resp.Outputs = append(resp.Outputs, v2Tensor{Name: "OUTPUT0", Shape: in.Shape, Datatype: in.Datatype, Data: in.Data})
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(&resp); err != nil {
			return // the client went away
		}
	})
	return mux
}

// restSide posts body to url from keep-alive connections of one shared Transport.
func restSide(b *testing.B, name, url string, body []byte) side {
	tr := &http.Transport{MaxIdleConns: 2 * *benchConc, MaxIdleConnsPerHost: 2 * *benchConc, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return side{name: name, newWorker: func() worker {
		return func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
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

// checkREST sends body once and checks that OUTPUT0 echoes the input values.
func checkREST(b *testing.B, url string, body []byte, want []float32) {
	b.Helper()
	code, _, got := httpDo(b, http.MethodPost, url, "application/json", bytes.NewReader(body))
	if code != http.StatusOK {
		b.Fatalf("POST %s: %d %s", url, code, got)
	}
	var resp v2Response
	if err := json.Unmarshal(got, &resp); err != nil {
		b.Fatalf("POST %s: %v in %s", url, err, got)
	}
	if len(resp.Outputs) != 1 || !equalFloats(resp.Outputs[0].Data, want) {
		b.Fatalf("POST %s = %s, want OUTPUT0 data %v", url, got, want)
	}
}

func equalFloats(a, b []float32) bool {
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
	ts := startServer(b, benchRepo(b))
	bare := httptest.NewServer(bareREST())
	b.Cleanup(bare.Close)

	want := benchValues()
	body, err := json.Marshal(v2Request{ID: "1", Inputs: []v2Tensor{{Name: "INPUT0", Shape: []int64{1, benchElems}, Datatype: "FP32", Data: want}}})
	if err != nil {
		b.Fatal(err)
	}
	const path = "/v2/models/identity_fp32/infer"
	checkREST(b, ts.URL+path, body, want)
	checkREST(b, bare.URL+path, body, want)
	compare(b, restSide(b, "ferry", ts.URL+path, body), restSide(b, "bare", bare.URL+path, body))
}

// bareGRPC is the baseline gRPC server: ModelInfer returns the request's raw input
// contents as OUTPUT0.
type bareGRPC struct {
	inference.UnimplementedGRPCInferenceServiceServer
}

func (bareGRPC) ModelInfer(_ context.Context, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	resp := &inference.ModelInferResponse{ModelName: req.GetModelName(), ModelVersion: "1", Id: req.GetId(),
		RawOutputContents: req.GetRawInputContents()}
	for _, in := range req.GetInputs() {
		resp.Outputs = append(resp.Outputs, &inference.ModelInferResponse_InferOutputTensor{
			Name: "OUTPUT0", Datatype: in.GetDatatype(), Shape: in.GetShape()})
	}
	return resp, nil
}

// grpcSide spreads its workers over -benchgrpcconns ClientConns to addr.
func grpcSide(b *testing.B, name, addr string, req *inference.ModelInferRequest) side {
	clients := make([]inference.GRPCInferenceServiceClient, *benchConns)
	for i := range clients {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		clients[i] = inference.NewGRPCInferenceServiceClient(conn)
	}
	var next atomic.Int64
	return side{name: name, newWorker: func() worker {
		c := clients[int(next.Add(1))%len(clients)]
		return func(ctx context.Context) error {
			_, err := c.ModelInfer(ctx, req)
			return err
		}
	}}
}

// checkGRPC sends req once and checks that OUTPUT0 echoes the input bytes.
func checkGRPC(b *testing.B, name, addr string, req *inference.ModelInferRequest) {
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
	ts := startServer(b, benchRepo(b))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	bare := grpc.NewServer()
	inference.RegisterGRPCInferenceServiceServer(bare, bareGRPC{})
	served := make(chan error, 1)
	go func() { served <- bare.Serve(ln) }()
	b.Cleanup(func() {
		bare.Stop()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			b.Errorf("bare gRPC server: %v", err)
		}
	})

	raw := make([]byte, 0, 4*benchElems)
	for _, v := range benchValues() {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	req := &inference.ModelInferRequest{ModelName: "identity_fp32", Id: "1",
		Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "INPUT0", Datatype: "FP32", Shape: []int64{1, benchElems}}},
		RawInputContents: [][]byte{raw}}
	ferryAddr, bareAddr := ts.grpcLn.Addr().String(), ln.Addr().String()
	checkGRPC(b, "ferry", ferryAddr, req)
	checkGRPC(b, "bare", bareAddr, req)
	compare(b, grpcSide(b, "ferry", ferryAddr, req), grpcSide(b, "bare", bareAddr, req))
}
