package drift

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/ferryml/ferry/internal/monitor/drift/stats"
)

// Report statuses.
const (
	StatusOK           = "ok"
	StatusInsufficient = "insufficient_data" // too few valid values: neither drift nor no drift
	StatusNoBaseline   = "no_baseline"
	StatusCollecting   = "collecting_reference"
	StatusError        = "error" // the method does not apply (e.g. KS on a categorical feature)
)

// Report compares one window of a model's traffic with its baseline. Start and End
// bound the window [start, end) so an alert can point at the inference log of exactly
// those requests; End is zero for the still-open window.
type Report struct {
	Model    string    `json:"model"`
	Status   string    `json:"status"`
	Baseline string    `json:"baseline,omitempty"` // the file, "upload" or "reference_window"
	Start    time.Time `json:"window_start"`
	End      time.Time `json:"window_end"`
	Closed   bool      `json:"closed"` // false: the open window
	Rows     int64     `json:"window_rows"`
	// Dropped, Shadow and Failed count since start: rows the binning queue could not
	// take, shadow copies and failed requests (both skipped).
	Dropped uint64 `json:"rows_dropped"`
	// SampledOut counts the rows left out to keep to max_rows_per_second.
	SampledOut uint64 `json:"rows_sampled_out"`
	Shadow     uint64 `json:"shadow_skipped"`
	Failed     uint64 `json:"failed_skipped"`
	// Evaluated features had enough data; ShareDrifted = Drifted/Evaluated, and the
	// window has DatasetDrift when it is ≥ DriftShare.
	Evaluated    int             `json:"evaluated"`
	Drifted      int             `json:"drifted"`
	ShareDrifted float64         `json:"share_drifted"`
	DriftShare   float64         `json:"drift_share"`
	DatasetDrift bool            `json:"dataset_drift"`
	Features     []FeatureReport `json:"features"`
}

// FeatureReport is one feature's comparison. Value is the method's p-value for a test
// (drift when < Threshold) or its distance (drift when ≥ Threshold); absent unless
// Status is ok. Statistic is the test's statistic (KS D, χ², z) when finite.
type FeatureReport struct {
	Feature   string   `json:"feature"`
	Kind      Kind     `json:"kind"`
	Status    string   `json:"status"`
	Error     string   `json:"error,omitempty"`
	Method    string   `json:"method,omitempty"`
	Value     *float64 `json:"value,omitempty"`
	Statistic *float64 `json:"statistic,omitempty"`
	Threshold float64  `json:"threshold,omitempty"`
	Drifted   bool     `json:"drifted"`
	RefN      int64    `json:"n_ref"`
	CurN      int64    `json:"n_cur"`
	// Invalid counts NaN, ±Inf and mistyped values the window dropped.
	Invalid int64 `json:"invalid"`
	// NewCategories counts current values of categories the baseline lacks (values
	// past the category cap included).
	NewCategories int64 `json:"new_categories,omitempty"`
	// Warning flags a value to read with care: a PSI whose expected value under no
	// drift, (B−1)(1/n+1/m), is over a third of the threshold (monitoring.md §1.2), so
	// a small window may cross it by chance.
	Warning string `json:"warning,omitempty"`
	// Bins says how the distance was binned: "deciles" (reference deciles, open ends),
	// "values" (one bin per reference value, out-of-range values apart) or
	// "categories"; PSI's zero bins follow Evidently's epsilon rule.
	Bins string `json:"bins,omitempty"`
}

func (m *Monitor) report(md *model, p *plan, w *window, closed bool) Report {
	r := Report{Model: md.name, Status: StatusOK, Baseline: p.source, Closed: closed, DriftShare: m.cfg.DriftShare,
		Dropped: md.dropped.Load(), SampledOut: md.sampledOut.Load(), Shadow: md.shadow.Load(), Failed: md.failed.Load(), Features: []FeatureReport{}}
	if w == nil { // no window has closed yet
		r.Status, r.Closed = StatusInsufficient, false
		return r
	}
	r.Start, r.End, r.Rows = w.start, w.end, w.rows
	for i, f := range p.features {
		fr := m.featureReport(f, w, i)
		if fr.Status == StatusOK {
			r.Evaluated++
			if fr.Drifted {
				r.Drifted++
			}
		}
		r.Features = append(r.Features, fr)
	}
	if r.Evaluated == 0 {
		r.Status = StatusInsufficient
		return r
	}
	r.ShareDrifted = float64(r.Drifted) / float64(r.Evaluated)
	r.DatasetDrift = r.ShareDrifted >= m.cfg.DriftShare
	return r
}

func (m *Monitor) featureReport(f *featurePlan, w *window, i int) FeatureReport {
	fr := FeatureReport{Feature: f.name, Kind: f.prof.Kind, Status: StatusOK, RefN: f.prof.N}
	var ref, cur []float64 // slot counts
	var dist distribution
	var ns *numState
	if f.prof.Kind == Numeric {
		s := &w.num[i]
		ns = s
		fr.CurN, fr.Invalid = s.n, s.nan+s.inf+s.bad
		ref, cur = int64s(f.prof.Counts), s.counts()
		dist = numericDist(f, s)
	} else {
		s := &w.cat[i]
		fr.CurN, fr.Invalid = s.n, 0
		dist = categoricalDist(f.prof, s)
		fr.NewCategories = dist.newCats
	}
	if fr.CurN < m.cfg.MinRows || fr.RefN < m.cfg.MinRows {
		fr.Status = StatusInsufficient
		return fr
	}
	method := stats.Method(f.cfg.Method)
	if method == "" || method == "auto" {
		method = stats.DefaultMethod(f.prof.Kind == Numeric, int(f.prof.N), f.prof.NUnique+int(min(dist.newCats, 1)))
	}
	fr.Method, fr.Threshold = string(method), stats.DefaultThreshold(method)
	if f.cfg.Threshold != nil {
		fr.Threshold = *f.cfg.Threshold
	}
	v, stat, bins, err := compute(method, f, ns, ref, cur, dist)
	if err != nil {
		fr.Status, fr.Error = StatusError, err.Error()
		return fr
	}
	if !finite(v) { // e.g. sums of values near ±1e308 overflowed
		fr.Status, fr.Error = StatusError, fmt.Sprintf("%s is %v", method, v)
		return fr
	}
	fr.Value, fr.Bins, fr.Drifted = &v, bins, method.Drifted(v, fr.Threshold)
	if method == stats.MethodPSI {
		b := float64(len(dist.p) - 1)
		if bias := b * (1/float64(fr.RefN) + 1/float64(fr.CurN)); bias > fr.Threshold/3 {
			fr.Warning = fmt.Sprintf("small sample: PSI averages %.3g under no drift with %d bins, n_ref %d and n_cur %d", bias, len(dist.p), fr.RefN, fr.CurN)
		}
	}
	if !math.IsNaN(stat) && !math.IsInf(stat, 0) {
		fr.Statistic = &stat
	}
	return fr
}

// distribution is a feature's reference and current mass on common bins, for the
// distances and χ²/Z.
type distribution struct {
	p, q    []float64
	bins    string
	newCats int64
}

func int64s(c []int64) []float64 {
	out := make([]float64, len(c))
	for i, v := range c {
		out[i] = float64(v)
	}
	return out
}

// numericDist groups a numeric feature's slots for the distances. Quantile bins are
// merged into reference deciles (cut where the reference's cumulative mass crosses
// k/10), open at both ends, as credit-risk PSI does: 100 fine bins would make
// PSI/JS/Hellinger read sampling noise as drift ((B−1)(1/n+1/m), monitoring.md §1.2).
// One-bin-per-value features keep their values, with out-of-range values apart.
func numericDist(f *featurePlan, s *numState) distribution {
	ref, cur := int64s(f.prof.Counts), s.counts()
	if f.prof.Discrete {
		return distribution{p: ref, q: cur, bins: "values"}
	}
	var total float64
	for _, v := range ref {
		total += v
	}
	d := distribution{bins: "deciles", p: make([]float64, 10), q: make([]float64, 10)}
	var cum float64
	for k := range ref {
		g := min(int(cum/total*10+1e-9), 9)
		if total == 0 {
			g = 0
		}
		cum += ref[k]
		d.p[g] += ref[k]
		d.q[g] += cur[k]
	}
	return d
}

// categoricalDist lines up the baseline's and the window's categories (the union,
// in order, then "other" when either side has one).
func categoricalDist(fp *FeatureProfile, s *catState) distribution {
	names := make([]string, 0, len(fp.Categories)+len(s.counts))
	for c := range fp.Categories {
		names = append(names, c)
	}
	var newCats int64
	for c, n := range s.counts {
		if _, ok := fp.Categories[c]; !ok {
			names = append(names, c)
			newCats += n
		}
	}
	sort.Strings(names)
	d := distribution{bins: "categories"}
	for _, c := range names {
		d.p = append(d.p, float64(fp.Categories[c]))
		d.q = append(d.q, float64(s.counts[c]))
	}
	if fp.Other > 0 || s.other > 0 {
		d.p, d.q = append(d.p, float64(fp.Other)), append(d.q, float64(s.other))
		if fp.Other == 0 {
			newCats += s.other
		}
	}
	d.newCats = newCats
	return d
}

// compute evaluates a method on binned data. KS takes D at the bin edges, and its p
// from D and the two sizes, as for continuous data; Wasserstein moves the mass of
// each slot at its centroid (the mean of the values that fell in it).
func compute(method stats.Method, f *featurePlan, s *numState, ref, cur []float64, d distribution) (v, stat float64, bins string, err error) {
	if method.Numeric() && f.prof.Kind != Numeric {
		return 0, 0, "", fmt.Errorf("%s needs a numeric feature", method)
	}
	stat = math.NaN()
	switch method {
	case stats.MethodKS:
		stat = ksD(ref, cur)
		return ksP(stat, int(sum(ref)), int(sum(cur))), stat, "quantiles", nil
	case stats.MethodWasserstein:
		v, err = normedWasserstein(f.prof, s)
		return v, stat, "quantiles", err
	case stats.MethodPSI:
		p, q := share(d.p), share(d.q)
		v, err = stats.PSI(p, q)
	case stats.MethodJS:
		v, err = stats.JensenShannon(d.p, d.q, 2)
	case stats.MethodHellinger:
		v, err = stats.Hellinger(d.p, d.q)
	case stats.MethodLInf:
		v, err = stats.LInf(d.p, d.q)
	case stats.MethodChiSquare:
		p, q := dropEmpty(d.p, d.q)
		stat, v, err = stats.ChiSquareEvidently(p, q)
	case stats.MethodZ:
		stat, v, err = zOnTop(d.p, d.q)
	default:
		err = fmt.Errorf("unknown method %q", method)
	}
	return v, stat, d.bins, err
}

// ksExactBudget bounds the lattice-path count a report may spend on one feature
// (n·m steps, about 3 ms): a 256-feature model with 10 000-row windows would
// otherwise take minutes per report. Beyond it the asymptotic p is used, which at
// such sizes is within a few percent (monitoring.md §1.10 #16).
const ksExactBudget = 1e6

func ksP(d float64, n, m int) float64 {
	if float64(n)*float64(m) <= ksExactBudget {
		return stats.KSPValue(d, n, m)
	}
	return stats.KSAsymptoticP(d, n, m)
}

func sum(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s
}

func share(x []float64) []float64 {
	t := sum(x)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v / t
	}
	return out
}

func ksD(ref, cur []float64) float64 {
	n, m := sum(ref), sum(cur)
	var a, b, d float64
	for k := range ref {
		a, b = a+ref[k], b+cur[k]
		d = math.Max(d, math.Abs(a/n-b/m))
	}
	return d
}

// dropEmpty removes bins empty on both sides (χ²'s degrees of freedom count the
// categories present).
func dropEmpty(p, q []float64) (pp, qq []float64) {
	for i := range p {
		if p[i] > 0 || q[i] > 0 {
			pp, qq = append(pp, p[i]), append(qq, q[i])
		}
	}
	return pp, qq
}

// zOnTop is Evidently's Z-test on the share of the reference's most frequent value.
func zOnTop(p, q []float64) (z, pv float64, err error) {
	top := 0
	for i := range p {
		if p[i] > p[top] {
			top = i
		}
	}
	return stats.ZTest(p[top], sum(p), q[top], sum(q))
}

// normedWasserstein is W1 between the slot centroids of the baseline and the window,
// weighted by their counts, over max(std_pop(baseline), 0.001).
func normedWasserstein(fp *FeatureProfile, s *numState) (float64, error) {
	u, uw := centroids(fp.Sums, fp.Counts)
	sums, counts := make([]float64, len(s.slots)), make([]int64, len(s.slots))
	for k, sl := range s.slots {
		sums[k], counts[k] = sl.sum, sl.n
	}
	v, vw := centroids(sums, counts)
	w, err := stats.Wasserstein(u, v, uw, vw)
	if err != nil {
		return 0, err
	}
	return w / math.Max(fp.Std, stats.StdFloor), nil
}

func centroids(sums []float64, counts []int64) (x, w []float64) {
	for k, c := range counts {
		if c > 0 {
			x, w = append(x, sums[k]/float64(c)), append(w, float64(c))
		}
	}
	return x, w
}
