package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dmitryikh/leaves"

	"github.com/ferryml/ferry/internal/backend/trees"
	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/tools/treegen"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var (
	treesRowsFlag   = flag.String("treesrows", "1,16,128", "rows per request in BenchmarkTreesServerVsLeaves, comma-separated")
	treesConfigFlag = flag.String("treesconfig", "", "config.pbtxt for the benchmark's tree model (default: none, so auto-complete gives max_batch_size 256 and dynamic batching)")
)

// Model size of the benchmark: a realistic production GBDT.
const (
	treesBenchTrees    = 100
	treesBenchDepth    = 6
	treesBenchFeatures = 32
	treesBenchBatches  = 64 // distinct requests per size
)

// BenchmarkTreesServerVsLeaves compares the items (rows) per second a tree model
// serves through Ferry with what the same model gives when leaves is called directly,
// on the same machine in the same run, -benchconc clients each side (16 by default),
// for each request size in -treesrows. The model (100 trees of depth 6 over 32
// features, treegen) has no config, so auto-complete gives it dynamic batching. Sides:
//
//   - leaves: -benchconc goroutines call Ensemble.PredictDense on their own rows
//     (float64, one thread each): the engine alone, no decoding, no server;
//   - grpc: -benchconc gRPC clients send ModelInfer with raw FP32 rows to the server;
//   - core: the same requests handed to the server's core in process, without the
//     wire, to separate the transport's cost from the scheduler's and the backend's;
//   - bare_grpc: the same gRPC requests to a bare grpc-go echo server (bench_test.go),
//     the most any gRPC server can do with them on this machine.
//
// The clients run in the benchmark's process, on the same cores as the server, as
// perf_analyzer on the same host would; leaves has no client to pay for.
//
// The sides alternate in slices (see vsCompare). Ratios are each side's items/s over
// leaves'. Goal (issue 4): grpc/leaves ≥ 0.8 with batching.
//
//	go test -run=NONE -bench=TreesServerVsLeaves -benchtime=1x ./cmd/ferry/
func BenchmarkTreesServerVsLeaves(b *testing.B) {
	if testing.Short() {
		b.Skip("throughput comparison; not run with -short")
	}
	servingGC(b)
	forest := treegen.Random(11, treesBenchTrees, treesBenchDepth, treesBenchFeatures)
	repo := b.TempDir()
	config := ""
	if *treesConfigFlag != "" {
		c, err := os.ReadFile(*treesConfigFlag)
		if err != nil {
			b.Fatal(err)
		}
		config = string(c)
	}
	writeTreeFile(b, repo, "gbdt", "model.json", forest.XGBoostJSON(), config)
	model, err := trees.Load(filepath.Join(repo, "gbdt", "1", "model.json"), trees.Unknown)
	if err != nil {
		b.Fatal(err)
	}
	ts := startServer(b, repo)
	bareAddr := treesBareGRPC(b)
	for _, f := range strings.Split(*treesRowsFlag, ",") {
		rows, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || rows < 1 {
			b.Fatalf("-treesrows: bad %q", f)
		}
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			pool := treesBenchPool(rows)
			treesBenchCheck(b, ts, forest, pool[0], rows)
			sides := []vsSide{treesLeavesSide(model.Leaves(), pool, rows), treesGRPCSide(b, ts.grpcLn.Addr().String(), "grpc", pool, rows),
				treesCoreSide(ts, pool, rows), treesGRPCSide(b, bareAddr, "bare_grpc", pool, rows)}
			treesCompare(b, sides, rows)
			st := modelStats(b, ts, "gbdt") // since the server started: all request sizes so far
			b.ReportMetric(float64(st.InferenceCount)/float64(max(st.ExecutionCount, 1)), "ferry_rows/exec")
		})
	}
}

// treesBenchPool is treesBenchBatches batches of rows × 32 standard normal features,
// all rows distinct. Each client cycles through them: sending one row over and over
// would let the CPU's branch predictor learn its path through the trees, which makes
// leaves alone several times faster than on real traffic.
func treesBenchPool(rows int) [][]float64 {
	r := rand.New(rand.NewPCG(3, uint64(rows)))
	pool := make([][]float64, treesBenchBatches)
	for i := range pool {
		pool[i] = make([]float64, rows*treesBenchFeatures)
		for j := range pool[i] {
			pool[i][j] = float64(float32(r.NormFloat64()))
		}
	}
	return pool
}

// treesCycle hands each worker the pool's batches in turn, from its own starting point.
type treesCycle struct{ next int }

func (c *treesCycle) pick(n int) int {
	c.next++
	return c.next % n
}

var treesCycleStart atomic.Int64

func newTreesCycle() *treesCycle { return &treesCycle{next: int(treesCycleStart.Add(7))} }

func treesRaw(vals []float64) []byte {
	raw := make([]byte, 0, 4*len(vals))
	for _, v := range vals {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(v)))
	}
	return raw
}

func treesGRPCRequest(vals []float64, rows int) *inference.ModelInferRequest {
	return &inference.ModelInferRequest{ModelName: "gbdt",
		Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: trees.InputName, Datatype: "FP32",
			Shape: []int64{int64(rows), treesBenchFeatures}}},
		RawInputContents: [][]byte{treesRaw(vals)}}
}

// treesBenchCheck makes sure the server answers what treegen's own walk gives, so the
// benchmark measures correct work.
func treesBenchCheck(b *testing.B, ts *testServer, forest *treegen.Forest, vals []float64, rows int) {
	b.Helper()
	resp, err := ts.GRPC.ModelInfer(context.Background(), treesGRPCRequest(vals, rows))
	if err != nil {
		b.Fatal(err)
	}
	out := resp.GetRawOutputContents()[0]
	for r := range rows {
		x := make([]float32, treesBenchFeatures)
		for i := range x {
			x[i] = float32(vals[r*treesBenchFeatures+i])
		}
		got := float64(math.Float32frombits(binary.LittleEndian.Uint32(out[4*r:])))
		if want := forest.Predict(x); math.Abs(got-want) > 1e-5 {
			b.Fatalf("row %d: server %v, treegen %v", r, got, want)
		}
	}
}

func treesLeavesSide(ens *leaves.Ensemble, pool [][]float64, rows int) vsSide {
	return vsSide{name: "leaves", newWorker: func() vsWorker {
		preds, c := make([]float64, rows), newTreesCycle()
		return func(context.Context) error {
			return ens.PredictDense(pool[c.pick(len(pool))], rows, treesBenchFeatures, preds, 0, 1)
		}
	}}
}

// treesGRPCSide sends from one gRPC connection that every worker shares.
func treesGRPCSide(b *testing.B, addr, name string, pool [][]float64, rows int) vsSide {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	client := inference.NewGRPCInferenceServiceClient(conn)
	reqs := make([]*inference.ModelInferRequest, len(pool))
	for i, vals := range pool {
		reqs[i] = treesGRPCRequest(vals, rows)
	}
	return vsSide{name: name, newWorker: func() vsWorker {
		c := newTreesCycle()
		return func(ctx context.Context) error {
			_, err := client.ModelInfer(ctx, reqs[c.pick(len(reqs))])
			return err
		}
	}}
}

// treesBareGRPC serves bench_test.go's bare echo server on a free port, stopped when the
// benchmark ends: the transport's ceiling for a request (it answers with the whole input).
func treesBareGRPC(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	bare := grpc.NewServer()
	inference.RegisterGRPCInferenceServiceServer(bare, bareGRPCServer{})
	served := make(chan error, 1)
	go func() { served <- bare.Serve(ln) }()
	b.Cleanup(func() {
		bare.Stop()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			b.Errorf("bare gRPC server: %v", err)
		}
	})
	return ln.Addr().String()
}

func treesCoreSide(ts *testServer, pool [][]float64, rows int) vsSide {
	raws := make([][]byte, len(pool))
	for i, vals := range pool {
		raws[i] = treesRaw(vals)
	}
	return vsSide{name: "core", newWorker: func() vsWorker {
		c := newTreesCycle()
		return func(ctx context.Context) error {
			_, err := ts.core.Infer(ctx, &core.InferRequest{Model: "gbdt", Inputs: []*tensor.Tensor{{Name: trees.InputName,
				DType: tensor.FP32, Shape: tensor.Shape{int64(rows), treesBenchFeatures}, Data: raws[c.pick(len(raws))]}}})
			return err
		}
	}}
}

// treesCompare runs the sides in interleaved slices, rotating which goes first, for
// -benchrounds rounds of -benchdur per side, and reports items/s and the ratios.
func treesCompare(b *testing.B, sides []vsSide, rows int) {
	b.Helper()
	for _, s := range sides { // warm-up: connections, pools, the first batches
		vsMeasure(b, s, *vsConc, *vsSlice)
	}
	all := make([]vsTally, len(sides))
	slice := 0
	for r := range *vsRounds {
		round := make([]vsTally, len(sides))
		for !treesDone(round) {
			for k := range sides {
				i := (slice + k) % len(sides)
				round[i].add(vsMeasure(b, sides[i], *vsConc, *vsSlice))
			}
			slice++
		}
		var line []string
		for i, s := range sides {
			line = append(line, fmt.Sprintf("%s %.0f items/s", s.name, round[i].rate()*float64(rows)))
			all[i].add(round[i])
		}
		b.Logf("round %d, %d rows/request: %s; grpc/leaves %.3f", r+1, rows, strings.Join(line, ", "), round[1].rate()/round[0].rate())
	}
	for i, s := range sides {
		b.ReportMetric(all[i].rate()*float64(rows), s.name+"_items/s")
	}
	for i, s := range sides[1:] {
		b.ReportMetric(all[i+1].rate()/all[0].rate(), s.name+"/leaves")
	}
}

func treesDone(round []vsTally) bool {
	for _, t := range round {
		if t.wall < *vsDur {
			return false
		}
	}
	return true
}
