package stats

import (
	"math"
	"sort"
)

// SturgesEdges are numpy's histogram_bin_edges(x, bins="sturges") over the combined
// samples: ⌈range/width⌉ equal-width bins with width = range/(log₂(n)+1). A
// single-valued sample gets the range [v−0.5, v+0.5], as numpy does.
func SturgesEdges(ref, cur []float64) []float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range [][]float64{ref, cur} {
		for _, v := range s {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	n := len(ref) + len(cur)
	if n == 0 {
		return nil
	}
	if lo == hi {
		lo, hi = lo-0.5, hi+0.5
	}
	width := (hi - lo) / (math.Log2(float64(n)) + 1)
	bins := max(1, int(math.Ceil((hi-lo)/width)))
	edges := make([]float64, bins+1)
	for i := range edges {
		edges[i] = lo + (hi-lo)*float64(i)/float64(bins)
	}
	edges[bins] = hi
	return edges
}

// Histogram counts x into the bins [e_i, e_{i+1}), the last one closed, as
// numpy.histogram; values outside [e_0, e_last] are left out unless openEnds, which
// puts them in the first or last bin.
func Histogram(x, edges []float64, openEnds bool) []float64 {
	nb := len(edges) - 1
	counts := make([]float64, max(nb, 0))
	for _, v := range x {
		// numpy: searchsorted(edges, v, side="right") − 1; the last edge closes the last bin.
		b := sort.Search(len(edges), func(i int) bool { return edges[i] > v }) - 1
		switch {
		case v == edges[nb]:
			b = nb - 1
		case b < 0 || b >= nb:
			if !openEnds {
				continue
			}
			b = min(max(b, 0), nb-1)
		}
		counts[b]++
	}
	return counts
}

// Quantile is numpy's default (linear) quantile of sorted x at q ∈ [0,1].
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	h := q * float64(len(sorted)-1)
	lo := int(math.Floor(h))
	if lo+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

func proportions(c []float64, n int) []float64 {
	out := make([]float64, len(c))
	for i, v := range c {
		out[i] = v / float64(n)
	}
	return out
}

// PSIEvidently is Evidently's numeric PSI: Sturges bins over the combined samples when
// the reference has more than 20 unique values, else one bin per unique value of the
// union, proportions of each sample's size, then PSI with the epsilon rule.
func PSIEvidently(ref, cur []float64) (float64, error) {
	if len(ref) == 0 || len(cur) == 0 {
		return 0, ErrEmpty
	}
	if countUnique(ref) <= 20 {
		p, q := uniqueProportions(ref, cur)
		return PSI(p, q)
	}
	edges := SturgesEdges(ref, cur)
	p := proportions(Histogram(ref, edges, false), len(ref))
	q := proportions(Histogram(cur, edges, false), len(cur))
	return PSI(p, q)
}

// PSIDeciles is credit-risk PSI: ten quantile bins fixed on the reference, open at
// both ends so current values beyond the reference range land in the end bins.
func PSIDeciles(ref, cur []float64) (float64, error) {
	if len(ref) == 0 || len(cur) == 0 {
		return 0, ErrEmpty
	}
	s := append([]float64(nil), ref...)
	sort.Float64s(s)
	edges := make([]float64, 11)
	for i := range edges {
		edges[i] = Quantile(s, float64(i)/10)
	}
	p := proportions(Histogram(ref, edges, true), len(ref))
	q := proportions(Histogram(cur, edges, true), len(cur))
	return PSI(p, q)
}

func countUnique(x []float64) int {
	seen := make(map[float64]struct{}, len(x))
	for _, v := range x {
		seen[v] = struct{}{}
	}
	return len(seen)
}

func uniqueProportions(ref, cur []float64) (p, q []float64) {
	idx := map[float64]int{}
	for _, s := range [][]float64{ref, cur} {
		for _, v := range s {
			if _, ok := idx[v]; !ok {
				idx[v] = len(idx)
			}
		}
	}
	p, q = make([]float64, len(idx)), make([]float64, len(idx))
	for _, v := range ref {
		p[idx[v]] += 1 / float64(len(ref))
	}
	for _, v := range cur {
		q[idx[v]] += 1 / float64(len(cur))
	}
	return p, q
}
