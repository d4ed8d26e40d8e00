// Command drifttraffic plays the part of an application in the monitoring walkthrough
// (README, "Watch models in production"): it writes a training sample of the tabular
// example model's six features as CSV, the baseline a drift monitor compares with, and
// sends live traffic drawn from the same distribution, or from one shifted by -shift
// standard deviations, with request ids a feedback call can name later.
//
// Usage:
//
//	go run ./tools/drifttraffic -baseline 5000 > train.csv
//	go run ./tools/drifttraffic -send 2000 [-shift 1.5] [-url localhost:8000] [-model tabular]
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// features are the tabular example's inputs (standardized: mean 0, standard
// deviation 1 in the training data), named as examples/monitoring.yaml names the
// columns of its one input tensor.
var features = onnxgen.TabularFeatures

func main() {
	baseline := flag.Int("baseline", 0, "write this many training rows as CSV to stdout")
	send := flag.Int("send", 0, "send this many inference requests, one row each")
	shift := flag.Float64("shift", 0, "move every feature's mean by this many standard deviations")
	url := flag.String("url", "localhost:8000", "the server's V2 REST address")
	model := flag.String("model", "tabular", "the model to send to")
	clients := flag.Int("c", 8, "requests in flight")
	seed := flag.Uint64("seed", 1, "random seed")
	prefix := flag.String("id-prefix", "req", "request ids are PREFIX-N")
	flag.Parse()
	rng := rand.New(rand.NewPCG(*seed, 2))
	var err error
	switch {
	case *baseline > 0:
		err = writeCSV(os.Stdout, rng, *baseline)
	case *send > 0:
		err = sendRows(*url, *model, *prefix, rng, *send, *clients, *shift)
	default:
		err = fmt.Errorf("give -baseline N or -send N")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "drifttraffic:", err)
		os.Exit(1)
	}
}

func row(rng *rand.Rand, shift float64) []float64 {
	r := make([]float64, len(features))
	for j := range r {
		r[j] = rng.NormFloat64() + shift
	}
	return r
}

func writeCSV(w io.Writer, rng *rand.Rand, n int) error {
	var b []byte
	for j, f := range features {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, f...)
	}
	b = append(b, '\n')
	for range n {
		for j, v := range row(rng, 0) {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendFloat(b, v, 'g', 7, 64)
		}
		b = append(b, '\n')
	}
	_, err := w.Write(b)
	return err
}

func sendRows(url, model, prefix string, rng *rand.Rand, n, clients int, shift float64) error {
	c, err := v2client.NewREST(v2client.RESTOptions{URL: url, Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer c.Close()
	m := c.Model(model, "")
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = row(rng, shift)
	}
	var next, failed atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				req := &v2client.Request{ID: prefix + "-" + strconv.Itoa(i), Inputs: []*tensor.Tensor{{Name: "features", DType: tensor.FP32, Shape: tensor.Shape{1, int64(len(features))}, Data: fp32(rows[i])}}}
				if _, err := m.Infer(context.Background(), req); err != nil {
					failed.Add(1)
					once.Do(func() { first = err })
				}
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "sent %d requests (shift %g) in %v, %d failed\n", n, shift, time.Since(start).Round(time.Millisecond), failed.Load())
	if first != nil {
		return fmt.Errorf("first failure: %w", first)
	}
	return nil
}

func fp32(vs []float64) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(v)))
	}
	return b
}
