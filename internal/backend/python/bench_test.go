package python

import (
	"context"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// BenchmarkPythonBackend measures, alternating within one run so the ratios compare
// like with like:
//
//   - single: one request of one row through the add model (the round trip: encode,
//     pipe, decode in Python, execute(), encode, pipe, decode in Go);
//   - batch16: 16 such requests in one execute() call, as the dynamic batcher delivers
//     them; batch16/single is the gain per request;
//   - echo4MiB: a 4 MiB FP32 tensor sent back untouched (the pipes' and frames' cost,
//     no conversion in Python), as MB/s each way;
//   - decode64Ki: a 64Ki-element FP32 tensor through as_numpy() and back, with
//     NDArray (stdlib) and, where an interpreter has it, numpy.
func BenchmarkPythonBackend(b *testing.B) {
	needPython(b)
	ctx := context.Background()
	add := writeModel(b, "add", sprintf(addConfig, tensor.FP32), addModel).mustOpen(b, Options{noNumpy: true})
	echo := writeModel(b, "echo", `name: "echo"
backend: "python"
input [ { name: "IN" data_type: TYPE_INT32 dims: [ -1 ] } ]
output [ { name: "IN" data_type: TYPE_INT32 dims: [ -1 ] } ]
`, `
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.get_input_tensor_by_name(r, "IN")]) for r in requests]
`)
	const decodeSrc = `
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor("IN", pb_utils.get_input_tensor_by_name(r, "IN").as_numpy())]) for r in requests]
`
	cfg := `name: "dec"
backend: "python"
input [ { name: "IN" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "IN" data_type: TYPE_FP32 dims: [ -1 ] } ]
`
	echoIn := echo.mustOpen(b, Options{})
	decStd := writeModel(b, "dec", cfg, decodeSrc).mustOpen(b, Options{noNumpy: true})
	var decNp *Instance
	if py := numpyPython(); py != "" {
		decNp = writeModel(b, "dec", cfg, decodeSrc).mustOpen(b, Options{Interpreter: py})
	}

	one := addInputs(tensor.FP32, 1, []float64{1, 2, 3, 4}, []float64{5, 6, 7, 8})
	batch := make([][]*tensor.Tensor, 16)
	for i := range batch {
		batch[i] = one
	}
	big := tens("IN", tensor.Int32, tensor.Shape{1 << 20}, make([]byte, 4<<20))
	echoCfg := []*tensor.Tensor{big}
	vec := []*tensor.Tensor{tens("IN", tensor.FP32, tensor.Shape{1 << 16}, fp32s(make([]float32, 1<<16)...))}

	// Each part runs a slice of calls in a row, so its process is warm, as under load;
	// the parts alternate slice by slice.
	const nSingle, nBatch, nEcho, nDecode = 64, 16, 2, 4
	var tSingle, tBatch, tEcho, tStd, tNp time.Duration
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	timed := func(d *time.Duration, times int, f func()) {
		start := time.Now()
		for range times {
			f()
		}
		*d += time.Since(start)
	}
	for b.Loop() {
		timed(&tSingle, nSingle, func() { _, err := add.Execute(ctx, one, nil); must(err) })
		timed(&tBatch, nBatch, func() {
			_, errs := add.ExecuteRequests(ctx, batch, nil)
			must(errs[0])
		})
		timed(&tEcho, nEcho, func() { _, err := echoIn.Execute(ctx, echoCfg, nil); must(err) })
		timed(&tStd, nDecode, func() { _, err := decStd.Execute(ctx, vec, nil); must(err) })
		if decNp != nil {
			timed(&tNp, nDecode, func() { _, err := decNp.Execute(ctx, vec, nil); must(err) })
		}
	}
	n := float64(b.N)
	singleRate := nSingle * n / tSingle.Seconds()
	batchRate := 16 * nBatch * n / tBatch.Seconds()
	b.ReportMetric(1e6/singleRate, "single_µs/req")
	b.ReportMetric(singleRate, "single_req/s")
	b.ReportMetric(batchRate, "batch16_req/s")
	b.ReportMetric(batchRate/singleRate, "batch16/single")
	b.ReportMetric(4*nEcho*n/tEcho.Seconds(), "echo4MiB_MiB/s")
	b.ReportMetric(tStd.Seconds()/(nDecode*n)*1e3, "decode64Ki_stdlib_ms")
	if decNp != nil {
		b.ReportMetric(tNp.Seconds()/(nDecode*n)*1e3, "decode64Ki_numpy_ms")
		b.ReportMetric(tStd.Seconds()/tNp.Seconds(), "stdlib/numpy")
	}
	b.ReportMetric(0, "ns/op") // the per-part figures above are the result
}
