package trees

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/ferryml/ferry/internal/tensor"
)

// The tensor names of every tree model, as Triton's FIL backend names them, so FIL
// clients work unchanged: one input row of features, one output row of predictions.
const (
	InputName  = "input__0"
	OutputName = "output__0"
)

// DefaultMaxBatchSize is the max_batch_size a tree model gets when its config sets
// none. A tree model's cost is the same per row whatever the batch (about 5-10 µs
// per row for 100 trees of depth 6 on one core, on rows that do not repeat), and a
// batch's fixed costs are paid off well before 256 rows, so larger batches would
// only make a request that arrives behind one wait longer: 256 rows take about
// 1-3 ms. The limit is on rows, so it also caps one request; a bulk-scoring client
// that sends more rows at once sets max_batch_size in the config.
const DefaultMaxBatchSize = 256

// ErrClosed is returned by Execute after Close.
var ErrClosed = errors.New("trees: instance closed")

// Options tune one Instance.
type Options struct {
	// Format is the expected file format; Unknown detects it from the content.
	Format Format
	// OutputMargin returns the raw margins (the sum of the trees and the base score)
	// instead of the objective's output (probabilities, exp(...), ...).
	OutputMargin bool
	// Threads splits one batch across this many goroutines (leaves hands them chunks
	// of 16 rows); 0 or 1 runs it on the calling goroutine.
	Threads int
	// OutputDType is FP32 (the default when zero) or FP64.
	OutputDType tensor.DType
}

// Instance is one execution instance of a tree model: it decodes the batch into
// float64 rows, runs leaves over the whole batch at once, and encodes the outputs.
type Instance struct {
	m    *Model
	opts Options

	mu     sync.Mutex // Executes run one at a time (the scheduler calls them so anyway)
	vals   []float64  // scratch input rows; guarded by mu
	preds  []float64  // scratch outputs; guarded by mu
	closed bool       // guarded by mu
}

// Open loads the model at path into a new Instance; instances opened on the same file
// share one copy of the model (LoadShared).
func Open(path string, opts Options) (*Instance, error) {
	m, err := LoadShared(path, opts.Format)
	if err != nil {
		return nil, err
	}
	return NewInstance(m, opts)
}

// NewInstance serves an already loaded model (a Model may back several instances).
func NewInstance(m *Model, opts Options) (*Instance, error) {
	switch opts.OutputDType {
	case tensor.Invalid:
		opts.OutputDType = tensor.FP32
	case tensor.FP32, tensor.FP64:
	default:
		return nil, fmt.Errorf("output %q: datatype %s is not supported (FP32 or FP64)", OutputName, opts.OutputDType)
	}
	if opts.Threads < 0 {
		return nil, fmt.Errorf("threads: must be ≥ 0, got %d", opts.Threads)
	}
	return &Instance{m: m, opts: opts}, nil
}

// Model is the instance's model.
func (in *Instance) Model() *Model { return in.m }

// Execute predicts every row of the input__0 batch ([rows, features], FP32 or FP64)
// and returns output__0 ([rows, outputs]).
func (in *Instance) Execute(ctx context.Context, ts []*tensor.Tensor, want []string) ([]*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, w := range want {
		if w != OutputName {
			return nil, fmt.Errorf("output %q: the model has one output, %q", w, OutputName)
		}
	}
	x, rows, err := in.input(ts)
	if err != nil {
		return nil, err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return nil, ErrClosed
	}
	in.vals = decode(x, in.vals[:0], in.m.float32Features)
	in.preds = slices.Grow(in.preds[:0], rows*in.m.outputs)[:rows*in.m.outputs]
	if err := in.predict(rows); err != nil {
		return nil, err
	}
	return []*tensor.Tensor{{Name: OutputName, DType: in.opts.OutputDType,
		Shape: tensor.Shape{int64(rows), int64(in.m.outputs)}, Data: encode(in.preds, in.opts.OutputDType)}}, nil
}

// predict runs the model, turning a panic inside leaves into an error.
func (in *Instance) predict(rows int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("trees: prediction failed: %v", r)
		}
	}()
	return in.m.Predict(in.vals, rows, in.preds, in.opts.OutputMargin, in.opts.Threads)
}

// input finds and checks input__0.
func (in *Instance) input(ts []*tensor.Tensor) (*tensor.Tensor, int, error) {
	if len(ts) != 1 || ts[0].Name != InputName {
		names := make([]string, len(ts))
		for i, t := range ts {
			names[i] = t.Name
		}
		return nil, 0, fmt.Errorf("want one input %q, got %q", InputName, names)
	}
	x := ts[0]
	if x.DType != tensor.FP32 && x.DType != tensor.FP64 {
		return nil, 0, fmt.Errorf("input %q: datatype %s is not supported (FP32 or FP64)", InputName, x.DType)
	}
	if len(x.Shape) != 2 || x.Shape[1] != int64(in.m.features) || x.Shape[0] < 0 {
		return nil, 0, fmt.Errorf("input %q: shape %v, want [rows, %d]", InputName, x.Shape, in.m.features)
	}
	rows := int(x.Shape[0])
	if want := rows * in.m.features * x.DType.Size(); len(x.Data) != want {
		return nil, 0, fmt.Errorf("input %q: %d bytes for shape %v, want %d", InputName, len(x.Data), x.Shape, want)
	}
	return x, rows, nil
}

// Close releases the instance; later Executes fail with ErrClosed.
func (in *Instance) Close() error {
	in.mu.Lock()
	in.closed = true
	in.vals, in.preds = nil, nil
	in.mu.Unlock()
	return nil
}

// decode appends the elements of x (FP32 or FP64) to dst as float64; round32 rounds
// FP64 values to float32 first, for models that split on float32 features.
func decode(x *tensor.Tensor, dst []float64, round32 bool) []float64 {
	le := binary.LittleEndian
	if x.DType == tensor.FP32 {
		n := len(x.Data) / 4
		dst = slices.Grow(dst, n)
		for i := range n {
			dst = append(dst, float64(math.Float32frombits(le.Uint32(x.Data[4*i:]))))
		}
		return dst
	}
	n := len(x.Data) / 8
	dst = slices.Grow(dst, n)
	for i := range n {
		v := math.Float64frombits(le.Uint64(x.Data[8*i:]))
		if round32 {
			v = float64(float32(v))
		}
		dst = append(dst, v)
	}
	return dst
}

// encode returns vals as a fresh little-endian FP32 or FP64 buffer (the caller keeps it).
func encode(vals []float64, dt tensor.DType) []byte {
	le := binary.LittleEndian
	if dt == tensor.FP64 {
		out := make([]byte, 8*len(vals))
		for i, v := range vals {
			le.PutUint64(out[8*i:], math.Float64bits(v))
		}
		return out
	}
	out := make([]byte, 4*len(vals))
	for i, v := range vals {
		le.PutUint32(out[4*i:], math.Float32bits(float32(v)))
	}
	return out
}
