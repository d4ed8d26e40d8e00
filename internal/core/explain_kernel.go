package core

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/ferryml/ferry/internal/explain"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2json"
)

// explainParallel is how many of KernelSHAP's inference requests are in flight at
// once: enough for the dynamic batcher to fill its batches from them, few enough to
// leave room for other clients' requests in the queue.
const explainParallel = 4

// explainKernel explains rows with KernelSHAP over the leased version's inference.
func (s *Server) explainKernel(ctx context.Context, l *Lease, req *InferRequest, in *inference.ModelInput, rows [][]float64, resp *ExplainResponse) error {
	feats := len(rows[0])
	bg, fromRequest, err := backgroundRows(req.Parameters, feats)
	if err != nil {
		return err
	}
	resp.Background = BackgroundRequest
	if !fromRequest {
		bg, resp.Background = s.modelBackground(l, feats)
	}
	opts := explain.KernelOptions{}
	if opts.Seed, err = uintParam(req.Parameters, "seed"); err != nil {
		return err
	}
	samples, err := uintParam(req.Parameters, "samples")
	if err != nil {
		return err
	}
	opts.Samples = int(min(samples, 1<<20))
	m := &modelFunc{s: s, l: l, req: req, in: in}
	r, err := explain.Kernel(ctx, m.call, rows, bg, opts)
	if err != nil {
		return explainError(err)
	}
	resp.Method, resp.Outputs = MethodKernelSHAP, m.columns
	resp.fill(r)
	return nil
}

// modelBackground is Options.Background's rows for the version when they fit the
// model, else a row of zeros.
func (s *Server) modelBackground(l *Lease, feats int) ([][]float64, string) {
	if s.background != nil {
		if bg := s.background(l.Model, l.Version); len(bg) > 0 {
			ok := true
			for _, r := range bg {
				ok = ok && len(r) == feats
			}
			if ok {
				return bg, BackgroundModel
			}
			s.log.Warn("explain background does not fit the model; using zeros", "model", l.Model, "version", l.Version, "features", feats)
		}
	}
	return [][]float64{make([]float64, feats)}, BackgroundZeros
}

func uintParam(p Parameters, name string) (uint64, error) {
	v, ok := p[name]
	if !ok {
		return 0, nil
	}
	n, ok := asInt(v)
	if !ok || n < 0 {
		return 0, Invalidf("parameter %q: want a non-negative integer, got %v", name, v)
	}
	return uint64(n), nil
}

// modelFunc is the model as KernelSHAP calls it: rows go out as inference requests
// to the leased version (in chunks of its max_batch_size, a few at a time), and each
// answer's numeric outputs, flattened per row, come back as one row of values.
type modelFunc struct {
	s       *Server
	l       *Lease
	req     *InferRequest
	in      *inference.ModelInput
	columns []string // the output columns, named by the first answer
	mu      sync.Mutex
}

func (m *modelFunc) call(ctx context.Context, rows [][]float64) ([][]float64, error) {
	chunk := max(int(m.l.Config.GetMaxBatchSize()), 1)
	out := make([][]float64, len(rows))
	errs := make(chan error, (len(rows)+chunk-1)/chunk)
	slots := make(chan struct{}, explainParallel)
	var wg sync.WaitGroup
	for start := 0; start < len(rows); start += chunk {
		end := min(start+chunk, len(rows))
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := m.run(ctx, rows[start:end], out[start:end]); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return out, nil
}

// run infers one chunk of rows into out.
func (m *modelFunc) run(ctx context.Context, rows, out [][]float64) error {
	t, err := m.tensor(rows)
	if err != nil {
		return err
	}
	ireq := &InferRequest{Model: m.l.Model, Version: m.l.Version, Inputs: []*tensor.Tensor{t},
		Outputs: m.req.Outputs, Parameters: Parameters{}, TraceParent: m.req.TraceParent}
	for _, k := range []string{"priority", "timeout"} {
		if v, ok := m.req.Parameters[k]; ok {
			ireq.Parameters[k] = v
		}
	}
	resp, err := m.s.Infer(ctx, ireq)
	if err != nil {
		return &callError{err}
	}
	return m.collect(resp, len(rows), out)
}

// tensor encodes rows in the model input's datatype and shape: [rows, features] for a
// batching model, the input's own dims for one that does not (one row per request).
func (m *modelFunc) tensor(rows [][]float64) (*tensor.Tensor, error) {
	dt := modelconfig.DType(m.in.GetDataType())
	feats := len(rows[0])
	shape := tensor.Shape{int64(len(rows)), int64(feats)}
	if m.l.Config.GetMaxBatchSize() == 0 {
		shape = tensor.Shape(append([]int64(nil), m.in.GetDims()...))
		for i, d := range shape {
			if d < 0 {
				shape[i] = int64(feats) // [-1] or [1, -1]: the row fills it
			}
		}
	}
	data := make([]byte, 0, len(rows)*feats*dt.Size())
	for _, r := range rows {
		for j, v := range r {
			var err error
			if data, err = appendValue(data, dt, v); err != nil {
				return nil, &InputError{Input: m.in.GetName(), Reason: fmt.Sprintf("feature %d: %v", j, err)}
			}
		}
	}
	return &tensor.Tensor{Name: m.in.GetName(), DType: dt, Shape: shape, Data: data}, nil
}

// collect flattens each row's numeric outputs into out, in output order.
func (m *modelFunc) collect(resp *InferResponse, rows int, out [][]float64) error {
	var columns []string
	for i := range out {
		out[i] = out[i][:0]
	}
	for _, t := range resp.Outputs {
		vals, err := t.Float64s()
		if err != nil {
			continue // BYTES outputs (class labels) have nothing to attribute to
		}
		if len(vals)%rows != 0 {
			return fmt.Errorf("output %q: %d values for %d rows", t.Name, len(vals), rows)
		}
		per := len(vals) / rows
		for i := range rows {
			out[i] = append(out[i], vals[i*per:(i+1)*per]...)
		}
		for k := range per {
			columns = append(columns, fmt.Sprintf("%s[%d]", t.Name, k))
		}
	}
	if len(columns) == 0 {
		return fmt.Errorf("model '%s' answered no numeric output to explain", m.l.Model)
	}
	m.mu.Lock()
	if m.columns == nil {
		m.columns = columns
	}
	m.mu.Unlock()
	return nil
}

// appendValue appends v in datatype dt. FP32 and FP64, the common case, are written
// directly; other types go through the JSON decoder's conversion, which refuses what
// the type cannot hold (a fraction or an out-of-range value for an integer input).
func appendValue(b []byte, dt tensor.DType, v float64) ([]byte, error) {
	le := binary.LittleEndian
	switch dt {
	case tensor.FP32:
		return le.AppendUint32(b, math.Float32bits(float32(v))), nil
	case tensor.FP64:
		return le.AppendUint64(b, math.Float64bits(v)), nil
	case tensor.Bool:
		if v != 0 && v != 1 {
			return nil, fmt.Errorf("%v is not 0 or 1, which the model's BOOL input needs", v)
		}
		return v2json.AppendValue(b, dt, v == 1)
	}
	return v2json.AppendValue(b, dt, json.Number(strconv.FormatFloat(v, 'f', -1, 64)))
}
