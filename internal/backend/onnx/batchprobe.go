package onnx

import (
	"context"
	"fmt"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// BatchProbe is what ProbeBatch measured of a model and the max_batch_size it chose.
type BatchProbe struct {
	// Sizes are the batch sizes run (1, 2, 4, ...) and RowsPerSec the rows per second
	// of each one's fastest run; empty when nothing ran.
	Sizes      []int
	RowsPerSec []float64
	// Gains[i] is the rows per second of Sizes[i] over those of Sizes[i-1], each at its
	// fastest while the two ran in turn (so under the same load); Gains[0] is 0.
	Gains []float64
	// MaxBatchSize is the choice: the largest size with enough more rows per second
	// than half its size, never below the floor (Triton's 4).
	MaxBatchSize int
	// Stop says why no larger size was run, or why nothing was ("input \"x\" has a
	// variable dimension besides the batch").
	Stop string
	// Took is the wall time of the runs. The probe's session, loaded before them, is
	// kept for the model's first instance (spare.go), so its load is no extra cost.
	Took time.Duration
}

// probeLimits bound a probe's choice and cost.
type probeLimits struct {
	floor, cap int // the smallest size chosen (Triton's default) and the largest run
	// gain is how much more rows/s a size needs than half its size to be worth it.
	gain float64
	// slowRun ends the probe after a size whose fastest run took longer: the next size
	// would take about twice as long, past what a load should spend.
	slowRun time.Duration
	// inputBytes is the most synthetic input a size may need.
	inputBytes int64
	// perSize is about how long each size repeats (at least minRuns timed runs, after
	// one untimed: the first run at a shape allocates); budget bounds the whole probe.
	perSize, budget time.Duration
	minRuns         int
}

// defaultProbe keeps a probe under about 250 ms of runs on a small model: 8 sizes of
// about 15 ms each for the mlp example, where batch 1 takes 0.08 ms.
var defaultProbe = probeLimits{
	floor: 4, cap: 128, gain: 1.1,
	slowRun: 20 * time.Millisecond, inputBytes: 64 << 20,
	perSize: 15 * time.Millisecond, budget: 250 * time.Millisecond, minRuns: 3,
}

// ProbeBatch measures the model at modelPath on zero inputs at batch sizes 1, 2, 4, ...
// up to 128, in a session opened with opts, and chooses a max_batch_size: the largest
// size that gives at least 1.1 times the rows per second of half that size, never
// below 4. It stops after two sizes in a row that do not (the curve has levelled off),
// after a run slower than 20 ms, before a batch whose inputs pass 64 MiB, and before a
// size that would take the probe past about 250 ms of runs. It runs only models whose
// inputs all have a dynamic first dimension and fixed others (a synthetic batch needs
// every other size); otherwise, or when a run fails, it keeps 4 and Stop says why. Its
// session is kept for the model's first instance (spare.go).
func (r *Runtime) ProbeBatch(modelPath string, opts SessionOptions) BatchProbe {
	return r.probeBatch(modelPath, opts, defaultProbe)
}

func (r *Runtime) probeBatch(path string, opts SessionOptions, lim probeLimits) BatchProbe {
	p := BatchProbe{MaxBatchSize: lim.floor}
	desc, err := r.describeOpen(path)
	if err != nil {
		p.Stop = err.Error()
		return p
	}
	inputs := desc.io().Inputs
	rowBytes, why := batchRowBytes(inputs)
	if why != "" {
		p.Stop = why
		return p
	}
	s, err := r.Open(path, opts)
	if err != nil {
		p.Stop = err.Error()
		return p
	}
	defer r.keepSpare(path, desc, opts, s) // for the model's first instance (spare.go)
	// One probe at a time: models loading side by side would measure each other.
	r.probeMu.Lock()
	defer r.probeMu.Unlock()
	start := time.Now()
	if err := p.measure(s, inputs, rowBytes, lim); err != nil {
		p.Stop = err.Error()
	} else {
		p.MaxBatchSize = chooseBatch(p.Sizes, p.Gains, lim)
	}
	p.Took = time.Since(start)
	return p
}

// measure runs s at batch sizes 1, 2, 4, ... into p's curve until one of lim's bounds
// stops it (p.Stop says which), or a run fails (the error).
func (p *BatchProbe) measure(s *Session, inputs []TensorInfo, rowBytes int64, lim probeLimits) error {
	deadline := time.Now().Add(lim.budget)
	var prev batchRun
	for b := 1; ; b *= 2 {
		if int64(b)*rowBytes > lim.inputBytes {
			p.Stop = fmt.Sprintf("batch %d needs %d bytes of input, over %d", b, int64(b)*rowBytes, lim.inputBytes)
			return nil
		}
		cur, err := timeBatch(s, inputs, b, &prev, lim)
		if err != nil {
			return fmt.Errorf("batch %d failed: %w", b, err)
		}
		gain := 0.0
		if n := len(p.Sizes); n > 0 {
			p.RowsPerSec[n-1] = float64(prev.rows) / prev.best.Seconds() // run again beside this size
			gain = 2 * prev.window.Seconds() / cur.window.Seconds()
		}
		p.Sizes = append(p.Sizes, b)
		p.RowsPerSec = append(p.RowsPerSec, float64(b)/cur.best.Seconds())
		p.Gains = append(p.Gains, gain)
		switch n := len(p.Gains); {
		case n > 2 && p.Gains[n-1] < lim.gain && p.Gains[n-2] < lim.gain:
			p.Stop = fmt.Sprintf("batches %d and %d each gained under %.2fx", b/2, b, lim.gain)
			return nil
		case 2*b > lim.cap:
			p.Stop = fmt.Sprintf("reached the cap of %d", lim.cap)
			return nil
		case cur.best > lim.slowRun:
			p.Stop = fmt.Sprintf("batch %d took %v, over %v", b, cur.best.Round(time.Microsecond), lim.slowRun)
			return nil
		case time.Now().Add(max(3*cur.best*time.Duration(lim.minRuns+1), lim.perSize)).After(deadline):
			// The next size costs about three times this one: its runs, the untimed
			// first, and this size's runs beside them.
			p.Stop = fmt.Sprintf("batch %d would pass the probe's %v", 2*b, lim.budget)
			return nil
		}
		prev = cur
	}
}

// chooseBatch is the largest measured size with at least lim.gain times the rows per
// second of half its size, never below lim.floor. A size that gains little does not
// end the search: ONNX Runtime may split larger batches across its threads or pick
// other kernels, so gains can resume after a flat step (the mlp example: 4 to 8 gains
// 1.03x, 8 to 16 1.25x).
func chooseBatch(sizes []int, gains []float64, lim probeLimits) int {
	chosen := 0
	for i := 1; i < len(sizes); i++ {
		if gains[i] >= lim.gain {
			chosen = sizes[i]
		}
	}
	return max(chosen, lim.floor)
}

// batchRowBytes is the input bytes of one batch row, or why the model cannot be fed a
// synthetic batch: every input must have a dynamic first dimension and fixed others.
func batchRowBytes(inputs []TensorInfo) (int64, string) {
	var total int64
	for _, in := range inputs {
		if len(in.Shape) == 0 || in.Shape[0] != -1 {
			return 0, fmt.Sprintf("input %q has no dynamic first dimension (shape %v)", in.Name, in.Shape)
		}
		n := int64(zeroElemBytes(in.DType))
		for a, d := range in.Shape[1:] {
			if d < 0 {
				return 0, fmt.Sprintf("input %q has a variable dimension %d besides the batch (shape %v), so no synthetic batch fits it", in.Name, a+1, in.Shape)
			}
			n *= d
		}
		total += n
	}
	return total, ""
}

// zeroElemBytes is the bytes of one zero element: an empty string takes its 4-byte length.
func zeroElemBytes(dt tensor.DType) int {
	if dt == tensor.Bytes {
		return 4
	}
	return dt.Size()
}

// batchRun is one batch size's zero inputs and its fastest runs: of all, and of the
// current window (timeBatch).
type batchRun struct {
	rows         int
	in           []*tensor.Tensor
	best, window time.Duration
}

// run executes the batch once and keeps the time if it is the fastest.
func (r *batchRun) run(s *Session) error {
	t := time.Now()
	if _, err := s.Execute(context.Background(), r.in, nil); err != nil {
		return err
	}
	d := max(time.Since(t), time.Nanosecond)
	if r.best == 0 || d < r.best {
		r.best = d
	}
	if r.window == 0 || d < r.window {
		r.window = d
	}
	return nil
}

// timeBatch runs s on zero inputs of b rows: once untimed (the first run at a shape
// allocates), then at least lim.minRuns times and for about lim.perSize, each run
// followed by one of prev (half the size, when it has run), and keeps the fastest run
// of each in this window (the least disturbed by whatever else the cores do).
// Alternating puts the two sizes whose rows/s are compared under the same load.
func timeBatch(s *Session, inputs []TensorInfo, b int, prev *batchRun, lim probeLimits) (batchRun, error) {
	cur := batchRun{rows: b, in: make([]*tensor.Tensor, len(inputs))}
	for i, info := range inputs {
		shape := append(tensor.Shape{int64(b)}, info.Shape[1:]...)
		n, err := shape.NumElements()
		if err != nil {
			return cur, err
		}
		cur.in[i] = &tensor.Tensor{Name: info.Name, DType: info.DType, Shape: shape, Data: make([]byte, n*int64(zeroElemBytes(info.DType)))}
	}
	if err := cur.run(s); err != nil {
		return cur, err
	}
	cur.best, cur.window, prev.window = 0, 0, 0
	for runs, start := 0, time.Now(); runs < lim.minRuns || time.Since(start) < lim.perSize; runs++ {
		if err := cur.run(s); err != nil {
			return cur, err
		}
		if prev.in == nil {
			continue
		}
		if err := prev.run(s); err != nil {
			return cur, err
		}
	}
	return cur, nil
}
