package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// BenchmarkOnDemandFirstRequest compares, for each example model, the latency of the
// first request to the model while it is unloaded (on-demand mode with a memory budget,
// so the load is also measured) with its bare load time: ONNX Runtime inspecting and
// opening the same file in this process, as many sessions with as many threads as the
// server opens for the model's config (2 by default), no server involved. The
// two alternate in each iteration, so load on the host hits both alike. It reports
//
//	first-ms      the first request, over REST, unload to response
//	bare-load-ms  Inspect + Open of each instance's session
//	overhead-ms   first-ms - bare-load-ms (goal: <= 20)
//	warm-ms       a request to the loaded model, for scale
//	resident-B    what the server measured the loaded model to hold (ferry_model_resident_bytes)
//
// Run: go test -run=NONE -bench=OnDemandFirstRequest -benchtime=20x ./cmd/ferry/ (the
// first iteration also pays, in the server only, the one-time description of the file
// that onnx.Runtime remembers afterwards: with -benchtime=1x the overhead is overstated)
func BenchmarkOnDemandFirstRequest(b *testing.B) {
	if testing.Short() {
		b.Skip("loads models for real; run without -short")
	}
	repo := b.TempDir()
	writeModel(b, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
	writeModel(b, repo, "identity_fp32", 1, onnxgen.Identity(onnxgen.Float, "identity_fp32"), "")
	writeModel(b, repo, "mlp", 1, onnxgen.MLP(1), "")
	ts := startServer(b, repo, onDemand(1<<40))

	for _, m := range []struct{ name, body string }{
		{"simple", `{"inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":` + numbers(16) +
			`},{"name":"INPUT1","shape":[1,16],"datatype":"INT32","data":` + numbers(16) + `}]}`},
		{"identity_fp32", `{"inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"FP32","data":` + numbers(16) + `}]}`},
		{"mlp", `{"inputs":[{"name":"input","shape":[1,256],"datatype":"FP32","data":` + numbers(256) + `}]}`},
	} {
		b.Run(m.name, func(b *testing.B) {
			path := filepath.Join(repo, m.name, "1", "model.onnx")
			infer := func() time.Duration {
				start := time.Now()
				code, _, body := httpDo(b, http.MethodPost, ts.URL+"/v2/models/"+m.name+"/infer", "application/json", strings.NewReader(m.body))
				if code != http.StatusOK {
					b.Fatalf("%s: status %d: %s", m.name, code, body)
				}
				return time.Since(start)
			}
			var first, bare, warm time.Duration
			instances, threads := serverInstances(b, ts, m.name)
			for b.Loop() {
				if code, _, body := httpDo(b, http.MethodPost, ts.URL+"/v2/repository/models/"+m.name+"/unload", "", nil); code != http.StatusOK {
					b.Fatalf("unload %s: status %d: %s", m.name, code, body)
				}
				first += infer()
				warm += infer()

				start := time.Now()
				_, err := testRuntime.Inspect(path)
				if err != nil {
					b.Fatal(err)
				}
				sessions := make([]*onnx.Session, instances)
				for i := range sessions {
					if sessions[i], err = testRuntime.Open(path, threads); err != nil {
						b.Fatal(err)
					}
				}
				bare += time.Since(start)
				for _, s := range sessions {
					if err := s.Close(); err != nil {
						b.Fatal(err)
					}
				}
			}
			n := float64(b.N)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / n }
			b.ReportMetric(ms(first), "first-ms")
			b.ReportMetric(ms(bare), "bare-load-ms")
			b.ReportMetric(ms(first)-ms(bare), "overhead-ms")
			b.ReportMetric(ms(warm), "warm-ms")
			b.ReportMetric(metricSum(b, ts.URL, "ferry_model_resident_bytes", `model="`+m.name+`"`), "resident-B")
		})
	}
}

// serverInstances reads from the server how many instances it gives the model and the
// ONNX Runtime threads each gets (its default, cores / instances).
func serverInstances(b *testing.B, ts *testServer, model string) (int, onnx.SessionOptions) {
	b.Helper()
	code, _, body := httpDo(b, http.MethodGet, ts.URL+"/v2/models/"+model+"/config", "", nil)
	if code != http.StatusOK {
		b.Fatalf("config %s: status %d: %s", model, code, body)
	}
	cfg, err := modelconfig.ParseJSON(body)
	if err != nil {
		b.Fatal(err)
	}
	return modelconfig.Instances(cfg), onnx.SessionOptions{IntraOpThreads: modelconfig.CoresPerInstance(cfg)}
}

// numbers is a JSON array of n small integers (valid for INT32 and FP32 inputs).
func numbers(n int) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(string(rune('0' + i%10)))
	}
	sb.WriteByte(']')
	return sb.String()
}
