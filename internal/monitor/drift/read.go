package drift

import (
	"fmt"
	"sort"
)

// Report compares the model's last closed window with its baseline. Before the first
// window closes the status is insufficient_data; without a baseline it is no_baseline
// or collecting_reference. The report is computed once per closed window and shared:
// callers must not modify it.
func (m *Monitor) Report(model string) (Report, error) { return m.readReport(model, false) }

// ReportCurrent compares the open window, as far as it has come, with the baseline.
func (m *Monitor) ReportCurrent(model string) (Report, error) { return m.readReport(model, true) }

// Reports is Report for every watched model, by model name.
func (m *Monitor) Reports() []Report {
	names := m.names()
	out := make([]Report, 0, len(names))
	for _, name := range names {
		r, _ := m.Report(name) // the name is watched: no error
		out = append(out, r)
	}
	return out
}

func (m *Monitor) readReport(name string, current bool) (Report, error) {
	md := m.model(name)
	if md == nil {
		return Report{}, fmt.Errorf("drift: %q: %w", name, ErrUnknownModel)
	}
	md.mu.Lock()
	p := md.windowFor
	if p == nil {
		md.mu.Unlock()
		r := Report{Model: name, Status: StatusNoBaseline, Features: []FeatureReport{}}
		if pl := md.plan.Load(); pl != nil && pl.collect {
			r.Status = StatusCollecting
		}
		return r, nil
	}
	if !current && md.cache != nil && md.cacheN == md.closedN {
		r := *md.cache
		md.mu.Unlock()
		r.Dropped, r.Shadow, r.Failed = md.dropped.Load(), md.shadow.Load(), md.failed.Load()
		return r, nil
	}
	w := md.last
	if current {
		w = md.cur
	}
	if w != nil {
		w.flush(p.features)
		w = w.clone() // the statistics run without the lock, so binning goes on
	}
	n := md.closedN
	md.mu.Unlock()

	r := m.report(md, p, w, !current)
	if !current {
		md.mu.Lock()
		if md.closedN == n && md.windowFor == p {
			md.cache, md.cacheN = &r, n
		}
		md.mu.Unlock()
	}
	return r, nil
}

// Value is what an alert reads: a feature's value in the last closed window and
// whether it drifted, or with feature "" the share of drifted features and whether the
// window has dataset drift. ok is false when there is no such feature or not enough
// data.
func (m *Monitor) Value(model, feature string) (v float64, drifted, ok bool) {
	r, err := m.Report(model)
	if err != nil || r.Status != StatusOK {
		return 0, false, false
	}
	if feature == "" {
		return r.ShareDrifted, r.DatasetDrift, true
	}
	i := sort.Search(len(r.Features), func(i int) bool { return r.Features[i].Feature >= feature })
	if i == len(r.Features) || r.Features[i].Feature != feature || r.Features[i].Value == nil {
		return 0, false, false
	}
	return *r.Features[i].Value, r.Features[i].Drifted, true
}

// StateBytes estimates the memory of a model's windows (open and last closed), which
// depends on its features and their bins, not on its traffic.
func (m *Monitor) StateBytes(model string) int {
	md := m.model(model)
	if md == nil {
		return 0
	}
	md.mu.Lock()
	defer md.mu.Unlock()
	n := 0
	for _, w := range []*window{md.cur, md.last} {
		if w != nil {
			n += w.size()
		}
	}
	return n
}
