package main

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/monitor/drift"
	"github.com/ferryml/ferry/internal/tensor"
)

// TestDriftSourceNamesItsMetrics: alert rules read drift_share, dataset_drift and
// drift:FEATURE from the drift monitor's last window, and nothing else from it.
func TestDriftSourceNamesItsMetrics(t *testing.T) {
	m, err := drift.New(drift.Config{Window: drift.WindowConfig{Count: 500}, MaxRowsPerSecond: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	rng := rand.New(rand.NewPCG(1, 2))
	var csv strings.Builder
	csv.WriteString("x[0],x[1]\n")
	for range 2000 {
		csv.WriteString(strings.Join([]string{ftoa(rng.NormFloat64()), ftoa(rng.NormFloat64())}, ",") + "\n")
	}
	p, err := drift.ProfileFromCSV(strings.NewReader(csv.String()), drift.ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetBaseline("m", p); err != nil {
		t.Fatal(err)
	}
	src := driftSource{m}
	if _, ok := src.Value("m", "drift_share"); ok {
		t.Fatal("a value before any window closed")
	}
	for range 500 { // x[0] moved by 3 deviations, x[1] as in the baseline
		x := &tensor.Tensor{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{1, 2}}
		x.Data = binary.LittleEndian.AppendUint32(x.Data, math.Float32bits(float32(rng.NormFloat64()+3)))
		x.Data = binary.LittleEndian.AppendUint32(x.Data, math.Float32bits(float32(rng.NormFloat64())))
		m.Finished(&core.Record{Model: "m", Inputs: []*tensor.Tensor{x}, Items: 1})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := src.Value("m", "drift_share"); ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for metric, want := range map[string]float64{"drift_share": 0.5, "dataset_drift": 1} {
		if v, ok := src.Value("m", metric); !ok || v != want {
			t.Errorf("%s = %v (ok %v), want %v", metric, v, ok, want)
		}
	}
	if v, ok := src.Value("m", "drift:x[0]"); !ok || v < 0.1 {
		t.Errorf("drift:x[0] = %v (ok %v), want its distance, past 0.1", v, ok)
	}
	for _, metric := range []string{"drift:", "drift:nope", "accuracy", "error_rate"} {
		if v, ok := src.Value("m", metric); ok {
			t.Errorf("%s = %v: the drift source answered what is not its own", metric, v)
		}
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', 8, 64) }
