package v2http

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/ferryml/ferry/internal/core"
)

// benchBody is a JSON infer request with one FP32 input of n random values.
func benchBody(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := []byte(`{"inputs":[{"name":"x","shape":[` + strconv.Itoa(n) + `],"datatype":"FP32","data":[`)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(r.Float32()), 'g', -1, 32)
	}
	return append(b, "]}]}"...)
}

// BenchmarkDecodeInferJSON measures the hand-written decoder; compare with
// BenchmarkDecodeInferJSONStdlib, which decodes the same body with encoding/json into
// []float32 only (no tensor bytes), in the same run.
func BenchmarkDecodeInferJSON(b *testing.B) {
	body := benchBody(100_000)
	limits := core.DefaultLimits()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodeInferRequest(body, -1, limits); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeInferJSONStdlib(b *testing.B) {
	body := benchBody(100_000)
	type input struct {
		Name     string    `json:"name"`
		Shape    []int64   `json:"shape"`
		Datatype string    `json:"datatype"`
		Data     []float32 `json:"data"`
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var req struct {
			Inputs []input `json:"inputs"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeInferResponse(b *testing.B) {
	req, err := DecodeInferRequest(benchBody(100_000), -1, core.DefaultLimits())
	if err != nil {
		b.Fatal(err)
	}
	resp := &core.InferResponse{Model: "m", Outputs: req.Inputs}
	for b.Loop() {
		if _, err := encodeInferResponse(&core.InferRequest{}, resp, nil); err != nil {
			b.Fatal(err)
		}
	}
}
