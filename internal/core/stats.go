package core

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/scheduler"
)

// statsTable holds the statistics extension's numbers per model version. The metrics
// collector reads the same table, so /stats and /metrics always agree.
type statsTable struct {
	mu sync.Mutex
	m  map[[2]string]*ModelStats
}

func newStatsTable() *statsTable { return &statsTable{m: map[[2]string]*ModelStats{}} }

func (st *statsTable) record(model, version string, ok bool, items int, t scheduler.Timing, total time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	k := [2]string{model, version}
	ms := st.m[k]
	if ms == nil {
		ms = &ModelStats{Name: model, Version: version}
		st.m[k] = ms
	}
	if !ok {
		add(&ms.Fail, total)
		return
	}
	add(&ms.Success, total)
	add(&ms.Queue, t.Queue)
	add(&ms.ComputeInput, t.Input)
	add(&ms.ComputeInfer, t.Infer)
	add(&ms.ComputeOutput, t.Output)
	ms.InferenceCount += uint64(items)
	ms.LastInference = time.Now()
	if !t.Leader {
		return // the batch's leader request counts the execution and its batch statistics
	}
	ms.ExecutionCount++
	bs := batchStats(ms, uint64(t.Batch))
	add(&bs.ComputeInput, t.Input)
	add(&bs.ComputeInfer, t.Infer)
	add(&bs.ComputeOutput, t.Output)
}

func add(d *Duration, v time.Duration) {
	d.Count++
	d.Total += v
}

func batchStats(ms *ModelStats, size uint64) *BatchStats {
	for i := range ms.Batches {
		if ms.Batches[i].BatchSize == size {
			return &ms.Batches[i]
		}
	}
	ms.Batches = append(ms.Batches, BatchStats{BatchSize: size})
	sort.Slice(ms.Batches, func(i, j int) bool { return ms.Batches[i].BatchSize < ms.Batches[j].BatchSize })
	for i := range ms.Batches {
		if ms.Batches[i].BatchSize == size {
			return &ms.Batches[i]
		}
	}
	return nil
}

// snapshot copies the stats of one model ("" = all), optionally one version.
func (st *statsTable) snapshot(model, version string) []ModelStats {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []ModelStats
	for k, ms := range st.m {
		if (model != "" && k[0] != model) || (version != "" && k[1] != version) {
			continue
		}
		c := *ms
		c.Batches = append([]BatchStats(nil), ms.Batches...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// ModelStatistics answers the statistics extension. model "" means every model; a known
// model that has served nothing yet gets zero statistics for its ready versions.
func (s *Server) ModelStatistics(ctx context.Context, model, version string) ([]ModelStats, error) {
	if model == "" {
		return s.allStats(), nil
	}
	version, err := s.resolveVersion(model, version)
	if err != nil {
		return nil, err
	}
	l, err := s.acquire(ctx, model, version)
	if err != nil {
		return nil, err
	}
	l.Release()
	out := s.stats.snapshot(model, version)
	have := map[string]bool{}
	for _, ms := range out {
		have[ms.Version] = true
	}
	versions := s.repo.Versions(model)
	if version != "" {
		versions = []string{version}
	}
	for _, v := range versions {
		if !have[v] {
			out = append(out, ModelStats{Name: model, Version: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// StatsSnapshot returns the statistics of every model version that has served a request.
func (s *Server) StatsSnapshot() []ModelStats { return s.stats.snapshot("", "") }

// allStats covers every ready version of every model, with zeros for those that have not
// served yet, as the statistics extension's "all models" answer does.
func (s *Server) allStats() []ModelStats {
	out := s.stats.snapshot("", "")
	have := map[[2]string]bool{}
	for _, ms := range out {
		have[[2]string{ms.Name, ms.Version}] = true
	}
	for _, e := range s.repo.Index(true) {
		if !have[[2]string{e.Name, e.Version}] {
			out = append(out, ModelStats{Name: e.Name, Version: e.Version})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out
}
