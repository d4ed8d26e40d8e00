package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestPercentileIsNearestRank(t *testing.T) {
	lat := make([]time.Duration, 100)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Millisecond
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 90: 90 * time.Millisecond,
		99: 99 * time.Millisecond, 100: 100 * time.Millisecond, 0: time.Millisecond} {
		if got := percentile(lat, p); got != want {
			t.Errorf("percentile(1..100 ms, %v) = %v, want %v", p, got, want)
		}
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("percentile of one latency = %v, want it", got)
	}
}

func TestLevelMeasure(t *testing.T) {
	l := Level{BatchSize: 4}
	l.measure([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond, 10 * time.Millisecond}, 2*time.Second)
	want := Level{BatchSize: 4, Requests: 4, Seconds: 2, PerSecond: 2, ItemsPerSec: 8,
		P50: 2000, P90: 10000, P95: 10000, P99: 10000, Mean: 4000}
	if diff := cmp.Diff(want, l); diff != "" {
		t.Errorf("measure (-want +got):\n%s", diff)
	}
}

// goldenReports cover the three modes' columns and a stability run; the figures are made up.
var goldenReports = map[string]*Report{
	"concurrency": {Mode: ModeConcurrency, Model: "mlp", Protocol: "grpc", Duration: 5,
		Inputs: []InputReport{{Name: "input", DataType: "FP32", Shape: []int64{1, 256}}},
		Levels: []Level{
			{Concurrency: 1, BatchSize: 1, Requests: 10000, Seconds: 5, PerSecond: 2000, ItemsPerSec: 2000,
				P50: 480.2, P90: 610, P95: 700.5, P99: 1500, Mean: 499.9, ServerAvgBatch: 1},
			{Concurrency: 8, BatchSize: 1, Requests: 40000, Errors: 3, Seconds: 5, PerSecond: 8000, ItemsPerSec: 8000,
				P50: 900, P90: 1400, P95: 1700, P99: 3100.7, Mean: 1001, ServerAvgBatch: 3.456,
				FirstError:  "rpc error: code = Unavailable desc = queue full",
				ServerQueue: 300.5, ServerComputeInput: 20, ServerComputeInfer: 400.9, ServerComputeOutput: 10},
			// Slower than 8: perf_analyzer's CSV puts it before.
			{Concurrency: 16, BatchSize: 1, Requests: 35000, Seconds: 5, PerSecond: 7000, ItemsPerSec: 7000,
				P50: 2100, P90: 2400, P95: 2500, P99: 4000, Mean: 2286, ServerAvgBatch: 4,
				ServerQueue: 1800, ServerComputeInput: 20, ServerComputeInfer: 450, ServerComputeOutput: 16},
		}},
	"rate": {Mode: ModeRequestRate, Model: "simple", Version: "1", Protocol: "http-binary", Duration: 2,
		Inputs: []InputReport{{Name: "INPUT0", DataType: "INT32", Shape: []int64{4, 16}}, {Name: "INPUT1", DataType: "INT32", Shape: []int64{4, 16}}},
		Levels: []Level{{RequestRate: 500, BatchSize: 4, Requests: 1001, Late: 12, Dropped: 1, Seconds: 2, PerSecond: 500.5,
			ItemsPerSec: 2002, P50: 300, P90: 400, P95: 500, P99: 900, Mean: 350}}},
	"stability": {Mode: ModeConcurrency, Model: "accumulator", Protocol: "grpc", Duration: 5, Stability: 10, SequenceLength: 20,
		Percentile: 95, LatencyLimit: 1500,
		Inputs: []InputReport{{Name: "INPUT", DataType: "INT32", Shape: []int64{1, 1}}},
		Levels: []Level{
			{Concurrency: 4, BatchSize: 1, Requests: 30000, Seconds: 15, PerSecond: 2000, ItemsPerSec: 2000,
				P50: 480, P90: 610, P95: 700, P99: 1500, Mean: 500, ServerAvgBatch: 1.5, Windows: 4},
			{Concurrency: 8, BatchSize: 1, Requests: 45000, Seconds: 15, PerSecond: 3000, ItemsPerSec: 3000,
				P50: 900, P90: 1400, P95: 1700, P99: 3100, Mean: 1000, ServerAvgBatch: 2.5, Windows: 10, Unstable: true},
		}},
	"engine": {Mode: ModeEngine, Model: "mlp", Version: "1", Protocol: "onnxruntime 1.30.0 in process, 2 intra-op threads", Duration: 5,
		Inputs: []InputReport{{Name: "input", DataType: "FP32", Shape: []int64{1, 256}}},
		Levels: []Level{
			{Concurrency: 1, BatchSize: 1, Requests: 20000, Seconds: 5, PerSecond: 4000, ItemsPerSec: 4000, P50: 240, P90: 260, P95: 270, P99: 400, Mean: 250},
			{Concurrency: 1, BatchSize: 64, Requests: 2500, Seconds: 5, PerSecond: 500, ItemsPerSec: 32000, P50: 1900, P90: 2100, P95: 2200, P99: 2600, Mean: 2000},
		}},
}

func TestReportGolden(t *testing.T) {
	for name, rep := range goldenReports {
		for ext, write := range map[string]func(*bytes.Buffer) error{
			"txt":      func(b *bytes.Buffer) error { return rep.WriteTable(b) },
			"csv":      func(b *bytes.Buffer) error { return rep.WriteCSV(b) },
			"json":     func(b *bytes.Buffer) error { return rep.WriteJSON(b) },
			"perf.csv": func(b *bytes.Buffer) error { return rep.WritePerfAnalyzerCSV(b) },
		} {
			if ext == "perf.csv" && rep.Mode == ModeEngine {
				continue
			}
			t.Run(name+"."+ext, func(t *testing.T) {
				var b bytes.Buffer
				if err := write(&b); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join("testdata", "report_"+name+"."+ext+".golden")
				if *update {
					if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if diff := cmp.Diff(string(want), b.String()); diff != "" {
					t.Errorf("%s (-want +got):\n%s", path, diff)
				}
			})
		}
	}
}

func TestPerfAnalyzerCSVRefusesAnEngineRun(t *testing.T) {
	err := goldenReports["engine"].WritePerfAnalyzerCSV(&bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--engine") {
		t.Errorf("err = %v, want it to say the CSV is for a server run", err)
	}
}

func TestReportJSONRoundTrips(t *testing.T) {
	var b bytes.Buffer
	rep := goldenReports["concurrency"]
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*rep, back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}
