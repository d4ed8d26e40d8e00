package repository

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// warmupDir is the folder of model_warmup input_data_file files. Triton reads it in the
// model folder; Ferry looks in the version folder first, so a version can bring its own.
const warmupDir = "warmup"

// maxWarmupBytes bounds one warmup input, so a config with absurd dims fails the load
// with a clear error instead of exhausting memory.
const maxWarmupBytes = 1 << 30

// warmUp runs each model_warmup sample through the version's new scheduler before the
// version reports READY, as Triton does. A sample runs count times (at least once) per
// instance. Runs are submitted one after another: the scheduler hands idle instances out
// in FIFO order, so consecutive runs go round every instance, and the dynamic batcher
// never merges two warmup requests into a batch the sample did not ask for. Warmup does
// not go through core, so the statistics never count it.
func (r *Repository) warmUp(ctx context.Context, name, ver, vdir string, cfg *inference.ModelConfig,
	s *scheduler.Scheduler, instances int) error {
	samples := cfg.GetModelWarmup()
	if len(samples) == 0 {
		return nil
	}
	start, runs := time.Now(), 0
	stateful := cfg.GetSequenceBatching() != nil
	for i, w := range samples {
		req, err := warmupRequest(cfg, w, i, vdir)
		n := max(int(w.GetCount()), 1) * max(instances, 1)
		if stateful {
			n *= int(w.GetBatchSize()) // a sequence request has one row: batch_size requests instead
		}
		for ; err == nil && n > 0; n-- {
			if stateful {
				// A whole sequence per run, so its state starts fresh and is released.
				// No client sequence exists before READY, so small IDs are free.
				req.Sequence = &scheduler.Sequence{ID: uint64(runs + 1), Start: true, End: true}
			}
			if _, err = s.Submit(ctx, req); err == nil {
				runs++
			}
		}
		if err != nil {
			return fmt.Errorf("warmup sample %q (model_warmup[%d]): %w", w.GetName(), i, err)
		}
	}
	r.log.Info("model version warmed up", "model", name, "version", ver, "samples", len(samples), "runs", runs,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// warmupRequest builds a sample's request: each input's data for one item, repeated
// batch_size times along a leading batch dimension when the model batches (once for a
// stateful model, whose requests have one row). Sample inputs that name a sequence
// control or state tensor are skipped: the sequence batcher fills those in.
func warmupRequest(cfg *inference.ModelConfig, w *inference.ModelWarmup, index int, vdir string) (*scheduler.Request, error) {
	model := map[string]*inference.ModelInput{}
	for _, in := range cfg.GetInput() {
		model[in.GetName()] = in
	}
	filled := map[string]bool{}
	for _, c := range cfg.GetSequenceBatching().GetControlInput() {
		filled[c.GetName()] = true
	}
	for _, st := range cfg.GetSequenceBatching().GetState() {
		filled[st.GetInputName()] = true
	}
	rows := int(w.GetBatchSize())
	if cfg.GetSequenceBatching() != nil {
		rows = 1
	}
	for _, in := range cfg.GetInput() {
		if _, ok := w.GetInputs()[in.GetName()]; !ok && !in.GetOptional() {
			return nil, fmt.Errorf("input %q: the model needs it and the sample does not give it", in.GetName())
		}
	}
	// Seeded per sample, so random_data is the same at every load.
	rng := rand.New(rand.NewPCG(uint64(index), 0x9e3779b97f4a7c15))
	names := make([]string, 0, len(w.GetInputs()))
	for name := range w.GetInputs() {
		names = append(names, name)
	}
	slices.Sort(names)
	req := &scheduler.Request{}
	for _, name := range names {
		in := w.GetInputs()[name]
		mi, ok := model[name]
		if !ok && filled[name] {
			continue
		}
		if !ok {
			return nil, fmt.Errorf("input %q: model '%s' has no such input", name, cfg.GetName())
		}
		dt := modelconfig.DType(in.GetDataType())
		if want := modelconfig.DType(mi.GetDataType()); dt != want {
			return nil, fmt.Errorf("input %q: data_type %s does not match the model's %s", name, in.GetDataType(), mi.GetDataType())
		}
		item, err := warmupItem(name, in, dt, vdir, rng)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		t := &tensor.Tensor{Name: name, DType: dt, Shape: tensor.Shape(slices.Clone(in.GetDims())), Data: item}
		if cfg.GetMaxBatchSize() > 0 {
			n := rows
			if int64(len(item))*int64(n) > maxWarmupBytes {
				return nil, fmt.Errorf("input %q: batch_size %d of %d-byte items is over the %d-byte warmup limit", name, n, len(item), maxWarmupBytes)
			}
			t.Shape = append(tensor.Shape{int64(n)}, t.Shape...)
			t.Data = bytes.Repeat(item, n)
		}
		req.Inputs = append(req.Inputs, t)
	}
	return req, nil
}

// warmupItem is one item's data for a warmup input: zeros, random values, or the bytes of
// a file (raw little-endian, row-major; for BYTES, 4-byte length-prefixed elements).
func warmupItem(name string, in *inference.ModelWarmup_Input, dt tensor.DType, vdir string, rng *rand.Rand) ([]byte, error) {
	if !dt.Valid() {
		return nil, fmt.Errorf("data_type %s is not a tensor type", in.GetDataType())
	}
	n, err := tensor.Shape(in.GetDims()).NumElements()
	if err != nil {
		return nil, fmt.Errorf("dims %v: %w", in.GetDims(), err)
	}
	size := int64(dt.Size())
	if dt == tensor.Bytes {
		size = 4 // an empty string is its 4-byte length prefix
	}
	if n > maxWarmupBytes/size {
		return nil, fmt.Errorf("dims %v: %d elements is over the %d-byte warmup limit", in.GetDims(), n, maxWarmupBytes)
	}
	switch src := in.GetInputDataType().(type) {
	case *inference.ModelWarmup_Input_ZeroData:
		return make([]byte, n*size), nil // zeros; for BYTES, n empty strings
	case *inference.ModelWarmup_Input_RandomData:
		return randomData(dt, int(n), rng), nil
	case *inference.ModelWarmup_Input_InputDataFile:
		return fileData(src.InputDataFile, dt, n, n*size, vdir)
	}
	return nil, errors.New("set zero_data, random_data or input_data_file")
}

// randomData fills n elements with well-formed values: booleans 0 or 1, floats in [0,
// 1) (random bits could be NaN and take slow paths), integers from all their bits. BYTES
// elements are empty strings, as Triton sends for random string data.
func randomData(dt tensor.DType, n int, rng *rand.Rand) []byte {
	if dt == tensor.Bytes {
		return make([]byte, 4*n)
	}
	le := binary.LittleEndian
	b := make([]byte, n*dt.Size())
	var word [8]byte
	for i := range n {
		switch dt {
		case tensor.Bool:
			b[i] = byte(rng.IntN(2))
		case tensor.FP16: // sign 0, exponent -1: [0.5, 1)
			le.PutUint16(b[2*i:], 0x3800|uint16(rng.IntN(0x400)))
		case tensor.BF16:
			le.PutUint16(b[2*i:], 0x3f00|uint16(rng.IntN(0x80)))
		case tensor.FP32:
			le.PutUint32(b[4*i:], math.Float32bits(rng.Float32()))
		case tensor.FP64:
			le.PutUint64(b[8*i:], math.Float64bits(rng.Float64()))
		default:
			le.PutUint64(word[:], rng.Uint64())
			copy(b[dt.Size()*i:], word[:dt.Size()])
		}
	}
	return b
}

// fileData reads a sample's input_data_file from the version's warmup folder, else the
// model's (Triton's place). As in Triton, a file longer than one item is used from its
// start; a BYTES file is the whole item and must hold exactly n elements.
func fileData(rel string, dt tensor.DType, n, need int64, vdir string) ([]byte, error) {
	if !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("input_data_file %q must be a relative path inside the warmup folder", rel)
	}
	var data []byte
	var err error
	tried := []string{filepath.Join(vdir, warmupDir, rel), filepath.Join(filepath.Dir(vdir), warmupDir, rel)}
	for _, p := range tried {
		if data, err = readLimited(p); !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("input_data_file %q: found neither %s nor %s", rel, tried[0], tried[1])
	case err != nil:
		return nil, fmt.Errorf("input_data_file %q: %w", rel, err)
	}
	if dt == tensor.Bytes {
		got, err := tensor.CountBytesElements(data)
		if err != nil {
			return nil, fmt.Errorf("input_data_file %q: %w", rel, err)
		}
		if got != n {
			return nil, fmt.Errorf("input_data_file %q holds %d BYTES elements; dims need %d", rel, got, n)
		}
		return data, nil
	}
	if int64(len(data)) < need {
		return nil, fmt.Errorf("input_data_file %q has %d bytes; dims need %d (%d elements of %s)", rel, len(data), need, n, dt)
	}
	return data[:need], nil
}

func readLimited(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxWarmupBytes {
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte warmup limit", path, st.Size(), maxWarmupBytes)
	}
	return os.ReadFile(path)
}

// warmupObserver hides warmup executions from the scheduler's metrics until the version
// is ready, so metrics count warmup no more than the statistics do. Queue depth passes
// through: it goes up and back down within each warmup request.
type warmupObserver struct {
	scheduler.Observer
	warming atomic.Bool
}

func (o *warmupObserver) Executed(rows int) {
	if !o.warming.Load() {
		o.Observer.Executed(rows)
	}
}

func (o *warmupObserver) Dropped(reason string) {
	if !o.warming.Load() {
		o.Observer.Dropped(reason)
	}
}

func (o *warmupObserver) Batched(waited time.Duration, reason string) {
	if !o.warming.Load() {
		o.Observer.Batched(waited, reason)
	}
}

// muteWarmup wraps the scheduler's observer while a config with warmup samples warms up;
// call the returned function once the warmup is done.
func muteWarmup(opts *scheduler.Options, cfg *inference.ModelConfig) (unmute func()) {
	if opts.Observer == nil || len(cfg.GetModelWarmup()) == 0 {
		return func() {}
	}
	o := &warmupObserver{Observer: opts.Observer}
	o.warming.Store(true)
	opts.Observer = o
	return func() { o.warming.Store(false) }
}
