package repository

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// initialStateDir holds the files of initial_state data_file. Like warmup data, Ferry
// looks in the version folder first, then in the model folder.
const initialStateDir = "initial_state"

// sequencing translates a complete config's sequence_batching for the scheduler (nil
// without it), reading initial state files from the version folder vdir.
func sequencing(cfg *inference.ModelConfig, vdir string) (*scheduler.Sequencing, error) {
	sb := cfg.GetSequenceBatching()
	if sb == nil {
		return nil, nil
	}
	if sb.GetIterativeSequence() {
		return nil, errors.New("sequence_batching.iterative_sequence: not supported by this server")
	}
	us := func(n uint64) time.Duration { return time.Duration(min(n, math.MaxInt64/1000)) * time.Microsecond }
	seq := &scheduler.Sequencing{IdleTimeout: us(sb.GetMaxSequenceIdleMicroseconds())}
	if o := sb.GetOldest(); o != nil {
		seq.Strategy = scheduler.StrategyOldest
		seq.MaxQueueDelay = us(o.GetMaxQueueDelayMicroseconds())
		seq.MaxCandidates = int(o.GetMaxCandidateSequences())
		for _, n := range o.GetPreferredBatchSize() {
			seq.PreferredBatchSizes = append(seq.PreferredBatchSizes, int(n))
		}
	} else if d := sb.GetDirect(); d != nil {
		seq.MaxQueueDelay = us(d.GetMaxQueueDelayMicroseconds())
		seq.MinSlotUtilization = float64(d.GetMinimumSlotUtilization())
	}
	var errs []error
	for i, ci := range sb.GetControlInput() {
		c, err := control(ci)
		if err != nil {
			errs = append(errs, fmt.Errorf("sequence_batching.control_input[%d]: %w", i, err))
			continue
		}
		seq.Controls = append(seq.Controls, c)
	}
	for i, st := range sb.GetState() {
		s, err := state(st, vdir)
		if err != nil {
			errs = append(errs, fmt.Errorf("sequence_batching.state[%d]: %w", i, err))
			continue
		}
		seq.States = append(seq.States, s)
	}
	return seq, errors.Join(errs...)
}

var controlKinds = map[inference.ModelSequenceBatching_Control_Kind]scheduler.ControlKind{
	inference.ModelSequenceBatching_Control_CONTROL_SEQUENCE_START:  scheduler.ControlStart,
	inference.ModelSequenceBatching_Control_CONTROL_SEQUENCE_END:    scheduler.ControlEnd,
	inference.ModelSequenceBatching_Control_CONTROL_SEQUENCE_READY:  scheduler.ControlReady,
	inference.ModelSequenceBatching_Control_CONTROL_SEQUENCE_CORRID: scheduler.ControlCorrID,
}

// control converts one control input; validation has checked the false/true pairs.
func control(ci *inference.ModelSequenceBatching_ControlInput) (scheduler.Control, error) {
	if n := len(ci.GetControl()); n != 1 {
		return scheduler.Control{}, fmt.Errorf("input %q: one control per control input is supported, got %d", ci.GetName(), n)
	}
	c := ci.GetControl()[0]
	out := scheduler.Control{Kind: controlKinds[c.GetKind()], Input: ci.GetName()}
	le := binary.LittleEndian
	switch {
	case out.Kind == scheduler.ControlCorrID:
		out.DType = modelconfig.DType(c.GetDataType())
	case len(c.GetInt32FalseTrue()) == 2:
		v := c.GetInt32FalseTrue()
		out.DType, out.False, out.True = tensor.Int32, le.AppendUint32(nil, uint32(v[0])), le.AppendUint32(nil, uint32(v[1]))
	case len(c.GetFp32FalseTrue()) == 2:
		v := c.GetFp32FalseTrue()
		out.DType = tensor.FP32
		out.False, out.True = le.AppendUint32(nil, math.Float32bits(v[0])), le.AppendUint32(nil, math.Float32bits(v[1]))
	case len(c.GetBoolFalseTrue()) == 2:
		v := c.GetBoolFalseTrue()
		out.DType, out.False, out.True = tensor.Bool, []byte{b2i(v[0])}, []byte{b2i(v[1])}
	default:
		return scheduler.Control{}, fmt.Errorf("input %q: %v needs a [false, true] pair", ci.GetName(), c.GetKind())
	}
	return out, nil
}

func b2i(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// state converts one implicit state and loads its initial value.
func state(st *inference.ModelSequenceBatching_State, vdir string) (scheduler.State, error) {
	out := scheduler.State{Input: st.GetInputName(), Output: st.GetOutputName(),
		DType: modelconfig.DType(st.GetDataType()), Dims: tensor.Shape(st.GetDims()).Clone()}
	for _, d := range out.Dims {
		if d < 1 {
			return out, fmt.Errorf("dims %v: a state needs fixed dims (growable state is not supported)", out.Dims)
		}
	}
	inits := st.GetInitialState()
	switch {
	case len(inits) == 0:
		return out, nil // zeros
	case len(inits) > 1:
		return out, fmt.Errorf("initial_state: one is supported, got %d", len(inits))
	}
	is := inits[0]
	if modelconfig.DType(is.GetDataType()) != out.DType || !tensor.Shape(is.GetDims()).Equal(out.Dims) {
		return out, fmt.Errorf("initial_state %q: %v%v differs from the state's %v%v", is.GetName(),
			is.GetDataType(), is.GetDims(), st.GetDataType(), st.GetDims())
	}
	file := is.GetDataFile()
	if file == "" {
		return out, nil // zero_data
	}
	data, err := initialStateFile(file, vdir)
	if err != nil {
		return out, fmt.Errorf("initial_state %q: %w", is.GetName(), err)
	}
	t := tensor.Tensor{Name: out.Input, DType: out.DType, Shape: out.Dims, Data: data}
	if err := t.Validate(); err != nil {
		return out, fmt.Errorf("initial_state %q: data_file %q: %w", is.GetName(), file, err)
	}
	out.Initial = data
	return out, nil
}

// initialStateFile reads an initial state file from the version folder's initial_state
// directory, or else the model folder's.
func initialStateFile(rel, vdir string) ([]byte, error) {
	if !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("data_file %q must be a relative path inside %s/", rel, initialStateDir)
	}
	var err error
	for _, dir := range []string{vdir, filepath.Dir(vdir)} {
		var data []byte
		if data, err = os.ReadFile(filepath.Join(dir, initialStateDir, rel)); err == nil {
			return data, nil
		}
	}
	return nil, fmt.Errorf("data_file: %w", err)
}
