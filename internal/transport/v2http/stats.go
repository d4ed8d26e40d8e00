package v2http

import (
	"net/http"

	"github.com/ferryml/ferry/internal/core"
)

// Wire shapes of Triton's statistics extension.
type (
	statsResponseJSON struct {
		ModelStats []modelStatJSON `json:"model_stats"`
	}
	modelStatJSON struct {
		Name           string             `json:"name"`
		Version        string             `json:"version"`
		LastInference  int64              `json:"last_inference"` // ms since the epoch, 0 if never
		InferenceCount uint64             `json:"inference_count"`
		ExecutionCount uint64             `json:"execution_count"`
		InferenceStats inferenceStatsJSON `json:"inference_stats"`
		BatchStats     []batchStatJSON    `json:"batch_stats"`
	}
	inferenceStatsJSON struct {
		Success       durationJSON `json:"success"`
		Fail          durationJSON `json:"fail"`
		Queue         durationJSON `json:"queue"`
		ComputeInput  durationJSON `json:"compute_input"`
		ComputeInfer  durationJSON `json:"compute_infer"`
		ComputeOutput durationJSON `json:"compute_output"`
		CacheHit      durationJSON `json:"cache_hit"`
		CacheMiss     durationJSON `json:"cache_miss"`
	}
	batchStatJSON struct {
		BatchSize     uint64       `json:"batch_size"`
		ComputeInput  durationJSON `json:"compute_input"`
		ComputeInfer  durationJSON `json:"compute_infer"`
		ComputeOutput durationJSON `json:"compute_output"`
	}
	durationJSON struct {
		Count uint64 `json:"count"`
		NS    uint64 `json:"ns"`
	}
)

// stats serves GET /v2/models[/{m}[/versions/{v}]]/stats.
func (h *Handler) stats(w http.ResponseWriter, r *http.Request) {
	var model, version string
	if r.Pattern != "GET /v2/models/stats" {
		var err error
		if model, version, err = modelPath(r); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	stats, err := h.core.ModelStatistics(r.Context(), model, version)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := statsResponseJSON{ModelStats: make([]modelStatJSON, len(stats))}
	for i, s := range stats {
		out.ModelStats[i] = modelStatToJSON(s)
	}
	h.writeJSON(w, r, http.StatusOK, out)
}

func modelStatToJSON(s core.ModelStats) modelStatJSON {
	m := modelStatJSON{
		Name:           s.Name,
		Version:        s.Version,
		InferenceCount: s.InferenceCount,
		ExecutionCount: s.ExecutionCount,
		InferenceStats: inferenceStatsJSON{
			Success:       durationToJSON(s.Success),
			Fail:          durationToJSON(s.Fail),
			Queue:         durationToJSON(s.Queue),
			ComputeInput:  durationToJSON(s.ComputeInput),
			ComputeInfer:  durationToJSON(s.ComputeInfer),
			ComputeOutput: durationToJSON(s.ComputeOutput),
			CacheHit:      durationToJSON(s.CacheHit),
			CacheMiss:     durationToJSON(s.CacheMiss),
		},
		BatchStats: make([]batchStatJSON, len(s.Batches)),
	}
	if !s.LastInference.IsZero() {
		m.LastInference = s.LastInference.UnixMilli()
	}
	for i, b := range s.Batches {
		m.BatchStats[i] = batchStatJSON{
			BatchSize:     b.BatchSize,
			ComputeInput:  durationToJSON(b.ComputeInput),
			ComputeInfer:  durationToJSON(b.ComputeInfer),
			ComputeOutput: durationToJSON(b.ComputeOutput),
		}
	}
	return m
}

func durationToJSON(d core.Duration) durationJSON {
	return durationJSON{Count: d.Count, NS: uint64(max(d.Total.Nanoseconds(), 0))}
}
