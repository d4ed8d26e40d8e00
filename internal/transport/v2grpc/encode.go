package v2grpc

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/shm"
)

// encodeInfer builds the wire response. Outputs travel as raw_output_contents, as
// Triton sends them; tensor.Tensor's layout (BYTES included) is already that format,
// so the data is not copied. The request fills in an id or model the core left empty.
// An output in shared (written to shared memory, by name) carries the shared_memory_*
// parameters and an empty raw_output_contents entry: as in Triton, every output has
// an entry, since clients (tritonclient's as_numpy) find an output's by its index.
func encodeInfer(req *inference.ModelInferRequest, res *core.InferResponse, shared map[string]shm.Ref) (*inference.ModelInferResponse, error) {
	out := &inference.ModelInferResponse{
		ModelName:         res.Model,
		ModelVersion:      res.Version,
		Id:                res.ID,
		Outputs:           make([]*inference.ModelInferResponse_InferOutputTensor, len(res.Outputs)),
		RawOutputContents: make([][]byte, len(res.Outputs)),
	}
	if out.ModelName == "" {
		out.ModelName = req.GetModelName()
	}
	if out.Id == "" {
		out.Id = req.GetId()
	}
	for i, t := range res.Outputs {
		if t == nil {
			return nil, fmt.Errorf("model %q returned no tensor for output %d", out.ModelName, i)
		}
		// A backend's inconsistent tensor would reach the client as garbage; refuse it.
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("model %q output %q: %w", out.ModelName, t.Name, err)
		}
		out.Outputs[i] = &inference.ModelInferResponse_InferOutputTensor{Name: t.Name, Datatype: t.DType.String(), Shape: t.Shape}
		ref, inShm := shared[t.Name]
		if !inShm {
			out.RawOutputContents[i] = t.Data
			continue
		}
		var err error
		if out.Outputs[i].Parameters, err = encodeParams(ref.Params(len(t.Data))); err != nil {
			return nil, err
		}
		out.RawOutputContents[i] = []byte{}
	}
	var err error
	if out.Parameters, err = encodeParams(res.Parameters); err != nil {
		return nil, fmt.Errorf("model %q: %w", out.ModelName, err)
	}
	return out, nil
}

// encodeParams converts core.Parameters to InferParameters. Besides core's four types
// it accepts Go's other integer and float types, since a backend may set them.
func encodeParams(params core.Parameters) (map[string]*inference.InferParameter, error) {
	if len(params) == 0 {
		return nil, nil
	}
	out := make(map[string]*inference.InferParameter, len(params))
	for _, k := range slices.Sorted(maps.Keys(params)) {
		var p inference.InferParameter
		switch v := params[k].(type) {
		case bool:
			p.ParameterChoice = &inference.InferParameter_BoolParam{BoolParam: v}
		case string:
			p.ParameterChoice = &inference.InferParameter_StringParam{StringParam: v}
		case int64:
			p.ParameterChoice = &inference.InferParameter_Int64Param{Int64Param: v}
		case int:
			p.ParameterChoice = &inference.InferParameter_Int64Param{Int64Param: int64(v)}
		case int32:
			p.ParameterChoice = &inference.InferParameter_Int64Param{Int64Param: int64(v)}
		case uint64:
			if v <= math.MaxInt64 {
				p.ParameterChoice = &inference.InferParameter_Int64Param{Int64Param: int64(v)}
			} else {
				p.ParameterChoice = &inference.InferParameter_Uint64Param{Uint64Param: v}
			}
		case float64:
			p.ParameterChoice = &inference.InferParameter_DoubleParam{DoubleParam: v}
		case float32:
			p.ParameterChoice = &inference.InferParameter_DoubleParam{DoubleParam: float64(v)}
		default:
			return nil, fmt.Errorf("response parameter %q has unsupported type %T", k, v)
		}
		out[k] = &p
	}
	return out, nil
}

// encodeStatistics maps core's statistics to the statistics extension's message:
// durations in nanoseconds, the last inference in milliseconds since the epoch.
func encodeStatistics(stats []core.ModelStats) *inference.ModelStatisticsResponse {
	res := &inference.ModelStatisticsResponse{ModelStats: make([]*inference.ModelStatistics, len(stats))}
	for i, st := range stats {
		m := &inference.ModelStatistics{
			Name:           st.Name,
			Version:        st.Version,
			LastInference:  epochMillis(st.LastInference),
			InferenceCount: st.InferenceCount,
			ExecutionCount: st.ExecutionCount,
			InferenceStats: &inference.InferStatistics{
				Success:       duration(st.Success),
				Fail:          duration(st.Fail),
				Queue:         duration(st.Queue),
				ComputeInput:  duration(st.ComputeInput),
				ComputeInfer:  duration(st.ComputeInfer),
				ComputeOutput: duration(st.ComputeOutput),
				CacheHit:      duration(st.CacheHit),
				CacheMiss:     duration(st.CacheMiss),
			},
			BatchStats: make([]*inference.InferBatchStatistics, len(st.Batches)),
		}
		for j, b := range st.Batches {
			m.BatchStats[j] = &inference.InferBatchStatistics{
				BatchSize:     b.BatchSize,
				ComputeInput:  duration(b.ComputeInput),
				ComputeInfer:  duration(b.ComputeInfer),
				ComputeOutput: duration(b.ComputeOutput),
			}
		}
		res.ModelStats[i] = m
	}
	return res
}

func duration(d core.Duration) *inference.StatisticDuration {
	return &inference.StatisticDuration{Count: d.Count, Ns: uint64(max(d.Total, 0))}
}

// epochMillis is 0 for the zero time ("never"), as Triton reports it.
func epochMillis(t time.Time) uint64 {
	if t.IsZero() || t.UnixMilli() < 0 {
		return 0
	}
	return uint64(t.UnixMilli())
}
