package drift

import (
	"math"
	"time"
)

// window is one model's binned traffic over a span of rows or time: fixed-size state
// per baseline feature, reset and reused, never grown by traffic.
type window struct {
	start, end time.Time // [start, end); end is zero while open
	rows       int64
	num        []numState // by feature index; nil entries for categorical features
	cat        []catState
}

// numState bins a numeric feature on its baseline's edges.
type numState struct {
	slots []slotState // as FeatureProfile.Counts/Sums, interleaved: one cache line per value
	// stage holds values not binned yet. A row of a wide model touches every feature,
	// and the lookup tables of 256 features do not fit in L2; binning a feature's
	// staged values together keeps its tables hot (~3x faster at 256 features).
	stage    []float64
	n        int64
	sum, sq  float64
	min, max float64
	nan, inf int64 // dropped from the distribution, reported as data quality
	bad      int64 // BYTES values of a numeric feature, dropped
}

type slotState struct {
	n   int64
	sum float64
}

// counts are the slot counts as float64 for the statistics.
func (s *numState) counts() []float64 {
	out := make([]float64, len(s.slots))
	for i, sl := range s.slots {
		out[i] = float64(sl.n)
	}
	return out
}

// catState counts a categorical feature's values, at most MaxCategories of them.
type catState struct {
	counts map[string]int64
	other  int64 // values of categories past the cap
	n      int64
}

func newWindow(fs []*featurePlan, start time.Time) *window {
	w := &window{start: start, num: make([]numState, len(fs)), cat: make([]catState, len(fs))}
	for i, f := range fs {
		if f.prof.Kind == Numeric {
			k := len(f.prof.Counts)
			w.num[i] = numState{slots: make([]slotState, k), stage: make([]float64, 0, stageLen)}
		} else {
			w.cat[i] = catState{counts: make(map[string]int64)}
		}
	}
	w.reset(start)
	return w
}

func (w *window) reset(start time.Time) {
	w.start, w.end, w.rows = start, time.Time{}, 0
	for i := range w.num {
		s := &w.num[i]
		clear(s.slots)
		s.stage = s.stage[:0]
		s.n, s.sum, s.sq, s.nan, s.inf, s.bad = 0, 0, 0, 0, 0, 0
		s.min, s.max = math.Inf(1), math.Inf(-1)
	}
	for i := range w.cat {
		clear(w.cat[i].counts)
		w.cat[i].other, w.cat[i].n = 0, 0
	}
}

// stageLen is how many values a feature stages before they are binned.
const stageLen = 32

// push stages v, binning the stage when it is full.
func (s *numState) push(b *binner, v float64) {
	s.stage = append(s.stage, v)
	if len(s.stage) == cap(s.stage) {
		s.flush(b)
	}
}

func (s *numState) flush(b *binner) {
	for _, v := range s.stage {
		s.add(b, v)
	}
	s.stage = s.stage[:0]
}

// flush bins every staged value; before a window is read or closed.
func (w *window) flush(fs []*featurePlan) {
	for i, f := range fs {
		if f.bin != nil {
			w.num[i].flush(f.bin)
		}
	}
}

func (s *numState) add(b *binner, v float64) {
	switch {
	case math.IsNaN(v):
		s.nan++
		return
	case math.IsInf(v, 0):
		s.inf++
		return
	}
	k := b.slot(v)
	s.slots[k].n++
	s.slots[k].sum += v
	s.n++
	s.sum += v
	s.sq += v * v
	if v < s.min { // not math.Min: v is finite, and this is the hot loop
		s.min = v
	}
	if v > s.max {
		s.max = v
	}
}

// add counts a category; key is only copied when it is a new category under the cap.
func (s *catState) add(key []byte) {
	s.n++
	if c, ok := s.counts[string(key)]; ok {
		s.counts[string(key)] = c + 1
		return
	}
	if len(s.counts) >= MaxCategories {
		s.other++
		return
	}
	s.counts[string(key)] = 1
}

// clone copies w so a report can be computed without holding the model's lock.
func (w *window) clone() *window {
	c := &window{start: w.start, end: w.end, rows: w.rows, num: make([]numState, len(w.num)), cat: make([]catState, len(w.cat))}
	for i, s := range w.num {
		c.num[i] = s
		c.num[i].slots = append([]slotState(nil), s.slots...)
		c.num[i].stage = nil // flushed before cloning
	}
	for i, s := range w.cat {
		c.cat[i] = s
		if s.counts != nil {
			c.cat[i].counts = make(map[string]int64, len(s.counts))
			for k, v := range s.counts {
				c.cat[i].counts[k] = v
			}
		}
	}
	return c
}

// size estimates the bytes w holds, for the constant-memory test and the report.
func (w *window) size() int {
	n := 0
	for _, s := range w.num {
		n += 16*len(s.slots) + 8*cap(s.stage) + 120
	}
	for _, s := range w.cat {
		n += 32
		for k := range s.counts {
			n += len(k) + 16 + 8 // key bytes, string header, count
		}
	}
	return n
}
