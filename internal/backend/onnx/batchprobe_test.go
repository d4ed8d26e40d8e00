package onnx

import (
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/tools/onnxgen"
)

func TestChooseBatch(t *testing.T) {
	sizes := []int{1, 2, 4, 8, 16, 32, 64, 128}
	for _, tc := range []struct {
		name  string
		gains []float64
		want  int
	}{
		// Measured by ProbeBatch on 2 cores (docs/model-repository.md, Auto-complete): the mlp example on 2 intra-op threads.
		{"gains resume after a flat step", []float64{0, 2.06, 1.83, 1.07, 1.31, 1.2, 1.12, 1.04}, 64},
		{"one thread saturates at 4", []float64{0, 1.93, 1.84, 1.04}, 4},
		{"gains to the cap", []float64{0, 2, 2, 2, 2, 2, 2, 2}, 128},
		{"a curve below the floor keeps the floor", []float64{0, 1.5, 1.05}, 4},
		{"one size keeps the floor", []float64{0}, 4},
		{"a gain of exactly 1.1x counts", []float64{0, 2, 2, 2, 1.1}, 16},
		{"a gain just under 1.1x does not", []float64{0, 2, 2, 2, 1.099}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := chooseBatch(sizes[:len(tc.gains)], tc.gains, defaultProbe); got != tc.want {
				t.Errorf("chooseBatch(%v) = %d, want %d", tc.gains, got, tc.want)
			}
		})
	}
}

func TestBatchRowBytes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inputs  []TensorInfo
		want    int64
		wantWhy string
	}{
		{"fixed dims after the batch", []TensorInfo{
			{Name: "a", DType: tensor.FP32, Shape: tensor.Shape{-1, 16}},
			{Name: "b", DType: tensor.Int64, Shape: tensor.Shape{-1, 2, 3}},
		}, 16*4 + 6*8, ""},
		{"strings count their length prefix", []TensorInfo{{Name: "s", DType: tensor.Bytes, Shape: tensor.Shape{-1, 3}}}, 12, ""},
		{"only the batch", []TensorInfo{{Name: "x", DType: tensor.FP16, Shape: tensor.Shape{-1}}}, 2, ""},
		{"a second variable dim", []TensorInfo{{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{-1, -1}}}, 0,
			`input "x" has a variable dimension 1 besides the batch`},
		{"a fixed first dim", []TensorInfo{{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{1, 4}}}, 0,
			`input "x" has no dynamic first dimension`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := batchRowBytes(tc.inputs)
			if got != tc.want || !strings.Contains(why, tc.wantWhy) || (tc.wantWhy == "") != (why == "") {
				t.Errorf("batchRowBytes = %d, %q; want %d, %q", got, why, tc.want, tc.wantWhy)
			}
		})
	}
}

// TestProbeBatchPicksALargerSizeWhereBatchingPays: simple's runs cost about the same
// at any batch size up to 128 (a few microseconds of fixed cost), so each doubling
// nearly doubles its rows per second.
func TestProbeBatchPicksALargerSizeWhereBatchingPays(t *testing.T) {
	needORT(t)
	p := rt.ProbeBatch(writeModel(t, onnxgen.Simple()), SessionOptions{IntraOpThreads: 1})
	t.Logf("simple: sizes %v rows/s %.0f gains %.2f, chose %d (%s) in %v", p.Sizes, p.RowsPerSec, p.Gains, p.MaxBatchSize, p.Stop, p.Took)
	if p.MaxBatchSize <= 4 || p.Took > time.Second {
		t.Errorf("ProbeBatch(simple) chose %d in %v, want > 4 within a second", p.MaxBatchSize, p.Took)
	}
}

// TestProbeBatchOnTheMLP: the probe measures the mlp example at every size it reaches
// and chooses by its own measurements. What it measures depends on the machine (on 2
// intra-op threads of an idle 2-core machine, rows/s grow to 32-64 rows; with other
// tests on the cores, much less), so the test checks the choice against the gains it
// saw, not against a figure.
func TestProbeBatchOnTheMLP(t *testing.T) {
	needORT(t)
	p := rt.ProbeBatch(writeModel(t, onnxgen.MLP(1)), SessionOptions{IntraOpThreads: 2})
	t.Logf("mlp: sizes %v rows/s %.0f gains %.2f, chose %d (%s) in %v", p.Sizes, p.RowsPerSec, p.Gains, p.MaxBatchSize, p.Stop, p.Took)
	if len(p.Sizes) < 4 || len(p.Gains) != len(p.Sizes) || p.Took > 2*time.Second {
		t.Fatalf("ProbeBatch(mlp) measured sizes %v (gains %v) in %v, want at least 1..8 within the budget", p.Sizes, p.Gains, p.Took)
	}
	want := 4
	for i, size := range p.Sizes {
		if p.Gains[i] >= 1.1 && size > want {
			want = size
		}
	}
	if p.MaxBatchSize != want {
		t.Errorf("ProbeBatch(mlp) chose %d; its gains %v at sizes %v say %d", p.MaxBatchSize, p.Gains, p.Sizes, want)
	}
}

func TestProbeBatchKeepsTheFloorWithoutASyntheticBatch(t *testing.T) {
	needORT(t)
	before := openSessions()
	p := rt.ProbeBatch(writeModel(t, onnxgen.Identity(onnxgen.Float, "id")), SessionOptions{IntraOpThreads: 1})
	if p.MaxBatchSize != 4 || len(p.Sizes) != 0 || !strings.Contains(p.Stop, `input "INPUT0" has a variable dimension 1 besides the batch`) {
		t.Errorf("ProbeBatch(identity [batch, n]) = %+v, want 4, nothing run, the input named", p)
	}
	if after := openSessions(); after != before {
		t.Errorf("%d sessions open after the probe, %d before: it should open none", after, before)
	}
}

// TestProbeBatchBounds: each bound ends the probe where it says.
func TestProbeBatchBounds(t *testing.T) {
	needORT(t)
	path := writeModel(t, onnxgen.Simple())
	fast := defaultProbe
	fast.perSize = time.Millisecond
	for _, tc := range []struct {
		name      string
		lim       func(probeLimits) probeLimits
		wantSizes int
		wantStop  string
	}{
		{"the cap", func(l probeLimits) probeLimits { l.cap = 8; return l }, 4, "reached the cap of 8"},
		{"a slow run", func(l probeLimits) probeLimits { l.slowRun = time.Nanosecond; return l }, 1, "batch 1 took"},
		{"the input size", func(l probeLimits) probeLimits { l.inputBytes = 4 * 128; return l }, 3, "batch 8 needs 1024 bytes of input, over 512"},
		{"the time budget", func(l probeLimits) probeLimits { l.budget = time.Nanosecond; return l }, 1, "batch 2 would pass the probe's 1ns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := rt.probeBatch(path, SessionOptions{IntraOpThreads: 1}, tc.lim(fast))
			if len(p.Sizes) != tc.wantSizes || !strings.Contains(p.Stop, tc.wantStop) {
				t.Errorf("probe ran sizes %v and stopped with %q; want %d sizes, stop %q", p.Sizes, p.Stop, tc.wantSizes, tc.wantStop)
			}
		})
	}
}

// TestProbeSessionServesTheFirstOpen: the probe's session is the next Open's with the
// same options, once; other options get a session of their own.
func TestProbeSessionServesTheFirstOpen(t *testing.T) {
	needORT(t)
	path := writeModel(t, onnxgen.Simple())
	lim := defaultProbe
	lim.cap = 2
	opts := SessionOptions{IntraOpThreads: 1}
	before := openSessions()
	rt.probeBatch(path, opts, lim)
	if n := openSessions(); n != before+1 {
		t.Fatalf("%d sessions open after the probe, want %d (its session kept)", n, before+1)
	}
	other, err := rt.Open(path, SessionOptions{IntraOpThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	first, err := rt.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := rt.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if n := openSessions(); n != before+3 {
		t.Errorf("%d sessions open, want %d: the probe's serves the first Open with its options only", n, before+3)
	}
	if first == second || first == other {
		t.Error("two Opens returned the same session")
	}
}

func openSessions() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return len(rt.sessions)
}
